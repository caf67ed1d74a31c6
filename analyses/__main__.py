"""`python -m analyses list | run NAME [--quick] [--seeds N] [--out DIR] [--set FIELD=VALUE] | all [--quick]`.

NAME is a study ("claims.post_ln" or "post_ln"), a group ("claims") or a prefix ("papers.scan_snap"). Running more
than one study also writes an index: runs/GROUP/report.md for a group (the claims lab's verdict table), runs/report.md
for `all`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analyses import registry
from probe.study import add_arguments, cpu_seconds, parse_overrides, run, write_index

RUNS = Path("runs")


def list_studies() -> None:
    for name, study in registry.studies().items():
        print(f"{name}: {study.title}")
        for c in study.claims:
            print(f"    {c.id}: {c.statement} [{c.source}] -- predicts {c.prediction}")


def target_dir(name: str, prefix: str, root: Path | None) -> Path:
    """runs/GROUP/NAME by default; under `root` (--out), the part of the name after `prefix`."""
    if root is None:
        return RUNS / name.replace(".", "/")
    rest = f".{name}.".split(f".{prefix}.", 1)[-1].strip(".") if prefix else name
    return root / rest.replace(".", "/") if rest else root


def group_index(group: str) -> Any:
    """A group's own index module (analyses/GROUP/_index.py: `members(names)`, `write(out, done)`), else None."""
    if not (registry.ROOT / group / "_index.py").is_file():
        return None
    return importlib.import_module(f"analyses.{group}._index")


def run_many(names: Sequence[str], quick: bool, seeds: int | None, dirs: Sequence[Path],
             overrides: dict) -> list[tuple[str, Path]]:
    done = []
    for name, target in zip(names, dirs):
        study = registry.load(name)
        print(f"== {name}: {study.title}", flush=True)
        start, cpu = time.perf_counter(), cpu_seconds()
        result = run(study, quick=quick, seeds=seeds, out=target, overrides=overrides)
        for v in result.verdicts:
            print(f"   {v}")
        print(f"   wrote {target / 'report.md'} ({time.perf_counter() - start:.1f} s wall, "
              f"{cpu_seconds() - cpu:.1f} s CPU)", flush=True)
        done.append((name, target))
    return done


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analyses", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every study with its claims")
    p_run = sub.add_parser("run", help="run a study, a group or a prefix of names")
    p_run.add_argument("name")
    add_arguments(p_run)
    p_all = sub.add_parser("all", help="run every study")
    add_arguments(p_all)
    args = parser.parse_args(argv)
    if args.command == "list":
        list_studies()
        return
    overrides = parse_overrides(args.overrides)
    root = Path(args.out) if args.out else None
    if args.command == "all":
        if overrides:
            parser.error("--set applies to one study; use `run NAME --set ...`")
        names = registry.names()
        dirs = [target_dir(n, "", root) for n in names]
        done = run_many(names, args.quick, args.seeds, dirs, {})
        for group in registry.groups():
            members = [(n, d) for n, d in done if n.split(".")[0] == group]
            hook = group_index(group)
            if hook is not None:
                hook.write(target_dir(group, "", root), done)
            else:
                write_index(target_dir(group, "", root), registry.GROUP_TITLES.get(group, group), members)
        print(f"index: {write_index(root or RUNS, 'All studies', done)}")
        return
    try:
        names = registry.resolve(args.name)
    except KeyError as e:
        parser.error(str(e.args[0]))
    hook = group_index(args.name) if args.name in registry.groups() else None
    if hook is not None:  # a group with its own index (the claims lab) decides its members
        names = hook.members(names)
    if overrides and len(names) > 1:
        parser.error(f"--set applies to one study; {args.name!r} names {len(names)}")
    prefix = args.name if len(names) > 1 else names[0]
    start, cpu = time.perf_counter(), cpu_seconds()
    done = run_many(names, args.quick, args.seeds, [target_dir(n, prefix, root) for n in names], overrides)
    if len(names) > 1:
        print(f"{len(names)} studies: {time.perf_counter() - start:.1f} s wall, {cpu_seconds() - cpu:.1f} s CPU")
    if hook is not None:
        print(f"index: {hook.write(root or RUNS / args.name, done)}")
    elif len(names) > 1:
        index_dir = root or Path(os.path.commonpath([d for _, d in done]))
        print(f"index: {write_index(index_dir, registry.GROUP_TITLES.get(prefix, prefix), done)}")


if __name__ == "__main__":
    main(sys.argv[1:])
