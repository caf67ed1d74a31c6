"""`python -m analyses.scan_snap SUB [--quick] [--out DIR] [options]`; `all` runs every sub-command."""

from __future__ import annotations

import argparse
from pathlib import Path

from analyses.scan_snap import SUBCOMMANDS, run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analyses.scan_snap", description=__doc__)
    parser.add_argument("sub", choices=SUBCOMMANDS + ("trajectory", "all"))
    parser.add_argument("--quick", action="store_true", help="tiny settings, fast enough for tests")
    parser.add_argument("--out", default=None, help="output folder (default runs/scan_snap/<sub>; for all: OUT/<sub>)")
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument("--num-last", type=int, nargs="+", default=None, help="figure6")
    parser.add_argument("--eta-z", type=float, nargs="+", default=None, help="figure6")
    parser.add_argument("--ratio", type=float, nargs="+", default=None, help="figure6")
    parser.add_argument("--seeds", type=int, default=None, help="figure6, theory, transformer, joma")
    parser.add_argument("--init", choices=("zero", "default"), default="default", help="figure6")
    args = parser.parse_args(argv)
    subs = SUBCOMMANDS if args.sub == "all" else (args.sub,)
    for sub in subs:
        kwargs = {"quick": args.quick, "iters": args.iters}
        if args.out is not None:
            kwargs["out"] = Path(args.out) / sub if args.sub == "all" else args.out
        if sub == "figure6":
            kwargs.update(num_last=args.num_last, eta_z=args.eta_z, ratio=args.ratio, seeds=args.seeds, init=args.init)
        elif sub in ("theory", "transformer", "joma") and args.seeds is not None:
            kwargs["seeds"] = args.seeds
        result = run(sub, **kwargs)
        verdict = "" if result.supported is None else f" (claim {'supported' if result.supported else 'NOT supported'})"
        print(f"{sub}: wrote {result.out}{verdict}")


if __name__ == "__main__":
    main()
