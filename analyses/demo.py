"""`make demo`: the headline analyses, run from scratch on CPU in a few minutes.

1. `dynamics.induction_formation` with one seed: 1- and 2-layer attention-only decoders trained on repeated random
   blocks and recorded throughout; the 2-layer model is saved with its recording (DIR/induction_2l), the study's
   report goes to DIR/induction_formation.
2. Interop: that 2-layer model exported to Hugging Face (GPT-2 layout) and booted offline in TransformerLens'
   TransformerBridge; the bridge's logits and the induction head's attention pattern must equal ours to `TOLERANCE`,
   or the demo stops with an error (DIR/hf_induction).
3. `papers.reverse` with one seed: an encoder-decoder trained to reverse sequences, scored by greedy decoding
   (DIR/../reverse).
4. DIR/report.md: one page with the measured numbers, every one computed here.

`python -m analyses.demo [--quick] [--out DIR]` (default runs/demo).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from analyses.dynamics import induction_formation as induction
from analyses.papers import reverse
from probe.study import Result, _jsonable, cpu_seconds, markdown_table, verdict_table
from probe.study import run as run_study

TOLERANCE = 1e-4  # max |difference| allowed between our logits / pattern and the bridge's (float32)


class BridgeMismatch(RuntimeError):
    """The exported model does not compute what ours computes."""


@dataclass
class DemoResult:
    induction: Result
    reverse: Result | None = None
    bridge: dict = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    out_dir: str = ""


def bridge_check(model, tokens: torch.Tensor, head: tuple[int, int], out: Path) -> dict:
    """Export to Hugging Face, boot the bridge offline, compare logits and `head`'s attention pattern; raise
    `BridgeMismatch` when either differs by more than TOLERANCE."""
    from probe.interop.bridge import boot_bridge, export

    start = time.perf_counter()
    hf_dir = export(model, out / "hf_induction")
    bridge = boot_bridge(hf_dir)
    layer, h = head
    name = f"blocks.{layer}.attn.hook_pattern"
    with torch.no_grad():
        ours, our_cache = model.run_with_cache(tokens, names_filter=name)
        theirs, their_cache = bridge.run_with_cache(tokens, names_filter=name)
    result = {
        "hf_dir": str(hf_dir),
        "layout": json.loads((hf_dir / "probe_export.json").read_text())["layout"],
        "max_abs_logit_diff": (ours - theirs).abs().max().item(),
        "max_abs_pattern_diff": (our_cache[name][:, h] - their_cache[name][:, h]).abs().max().item(),
        "tolerance": TOLERANCE, "seconds": time.perf_counter() - start,
    }
    bad = {k: result[k] for k in ("max_abs_logit_diff", "max_abs_pattern_diff") if not result[k] <= TOLERANCE}
    if bad:
        raise BridgeMismatch(f"the TransformerBridge of {hf_dir} does not reproduce our model: {bad} exceed "
                             f"the tolerance {TOLERANCE}")
    return result


def write_report(demo: DemoResult, out: Path) -> None:
    r, b = demo.induction, demo.bridge
    t = r.table
    two, one = t[t["layers"] == 2].iloc[0], t[t["layers"] == 1].iloc[0]
    cfg = r.config
    trained = [x for x in cfg.eval_blocks if cfg.min_block <= x <= cfg.max_block]
    rows = [[f"B = {x}", "yes" if x in trained else "no", two[f"acc_B{x}"], one[f"acc_B{x}"], two[f"oracle_B{x}"]]
            for x in cfg.eval_blocks]
    lines = [
        "# probe demo", "",
        f"Everything here was trained from scratch on this machine: {demo.seconds:.0f} s wall, "
        f"{demo.cpu_seconds:.0f} s CPU.", "",
        "## Induction heads form at a phase change", "",
        f"{r.study.title}: attention-only decoders (d_model {cfg.d_model}, {cfg.n_heads} heads per layer) trained for "
        f"{cfg.steps} steps on repeated random blocks (lengths {cfg.min_block}..{cfg.max_block}, gaps up to "
        f"{cfg.max_gap}, {cfg.n_symbols} symbols), seed {int(two['seed'])}. Study report: "
        "[induction_formation/report.md](induction_formation/report.md).", "",
        markdown_table(["measurement", "2 layers", "1 layer"], [
            ["in-context gain (first-copy loss - repeat loss, nats)", two["icl_gain"], one["icl_gain"]],
            ["best prefix-matching score (head)", f"{two['best_prefix_matching']:.3f} ({two['best_head']})",
             f"{one['best_prefix_matching']:.3f} ({one['best_head']})"],
            ["score's steepest window (steps; share of its rise)",
             f"[{two['score_window_start']:.0f}, {two['score_window_end']:.0f}] ({two['score_share']:.2f})", "-"],
            ["in-context score's steepest window (steps; share of its drop)",
             f"[{two['icl_window_start']:.0f}, {two['icl_window_end']:.0f}] ({two['icl_share']:.2f})", "-"],
            ["lag between the windows' centers (steps)", two["lag"], "-"],
            ["K-composition with previous-token head " + two["prev_head"] + " / random baseline",
             f"{two['k_comp']:.3f} / {two['k_comp_baseline']:.3f}", "-"],
            ["share of the in-context gain removed by mean-ablating " + two["prev_head"], two["ablation_removed"],
             "-"],
        ]), "",
        "Accuracy on repeated tokens by block length (fresh sequences; pure induction = predict the token that "
        "followed the most recent earlier occurrence):", "",
        markdown_table(["block length", "trained on", "2 layers", "1 layer", "pure induction"], rows), "",
        "Verdicts from this one seed (a single seed gives an unbounded t interval: every verdict here is "
        "inconclusive by construction; the full study runs three seeds):", "",
        verdict_table(r.verdicts), "",
        "![phase change](induction_formation/phase_change.png) "
        "![accuracy by block length](induction_formation/accuracy_by_block.png)", "",
        "## The same model in the ecosystem", "",
    ]
    if b:
        lines.append(
            f"Exported to Hugging Face ({b['layout']} layout, `{b['hf_dir']}`) and booted offline in TransformerLens' "
            f"`TransformerBridge` ({b['seconds']:.0f} s): max |logit difference| {b['max_abs_logit_diff']:.2e}, max "
            f"|difference| of head {two['best_head']}'s attention pattern {b['max_abs_pattern_diff']:.2e} "
            f"(both checked against the tolerance {b['tolerance']:g}).")
    else:
        lines.append("Skipped (--no-bridge).")
    if demo.reverse is not None:
        c, row = demo.reverse.config, demo.reverse.table.iloc[0]
        rrel = Path("..") / "reverse"
        lines += [
            "", "## An encoder-decoder that reverses sequences", "",
            f"A {c.n_layers}+{c.n_layers}-layer encoder-decoder trained for {c.steps} steps "
            f"({row['train_s']:.0f} s) to reverse sequences of {c.min_len}..{c.max_len} symbols, scored by greedy "
            f"decoding of fresh ones: exact match {row['exact_match']:.3f}, token accuracy "
            f"{row['token_accuracy']:.3f}. Report: "
            f"[{rrel}/report.md]({rrel}/report.md).", "",
            f"![cross-attention]({rrel}/cross_attention.png)",
        ]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def run(quick: bool = False, out: str | Path = "runs/demo", bridge: bool = True, with_reverse: bool = True,
        ) -> DemoResult:
    start, cpu = time.perf_counter(), cpu_seconds()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    workers = 1 if quick else min(2, os.cpu_count() or 1)  # the 1- and 2-layer runs at once (a spawn costs seconds)
    result = run_study(induction.STUDY, quick=quick, seeds=1, out=out / "induction_formation",
                       overrides={"save": str(out / "induction_2l"), "workers": workers})
    demo = DemoResult(induction=result, out_dir=str(out))
    if bridge:
        import probe

        model = probe.load(out / "induction_2l")
        two = result.table[result.table["layers"] == 2].iloc[0]
        layer, head = (int(x) for x in two["best_head"].split("."))
        tokens = induction.blocks(result.config, 8, 99).tokens
        demo.bridge = bridge_check(model, tokens, (layer, head), out)
    if with_reverse:
        demo.reverse = run_study(reverse.STUDY, quick=quick, seeds=1, out=out.parent / "reverse")
    demo.seconds, demo.cpu_seconds = time.perf_counter() - start, cpu_seconds() - cpu
    metrics = {"seconds": demo.seconds, "cpu_seconds": demo.cpu_seconds, "bridge": demo.bridge,
               "induction_table": result.table.to_dict(orient="records"),
               "induction_verdicts": [v.to_dict() for v in result.verdicts],
               "reverse_exact_match": float(demo.reverse.table["exact_match"].iloc[0]) if demo.reverse else None,
               "reverse_verdicts": [v.to_dict() for v in demo.reverse.verdicts] if demo.reverse else None}
    (out / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=2) + "\n")
    write_report(demo, out)
    return demo


def main(argv: list[str] | None = None) -> DemoResult:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--no-bridge", action="store_true", help="skip the Hugging Face / TransformerBridge step")
    parser.add_argument("--no-reverse", action="store_true", help="skip the encoder-decoder study")
    args = parser.parse_args(argv)
    demo = run(quick=args.quick, out=args.out, bridge=not args.no_bridge, with_reverse=not args.no_reverse)
    print(f"demo finished in {demo.seconds:.0f} s ({demo.cpu_seconds:.0f} s CPU); report: "
          f"{Path(args.out) / 'report.md'}")
    return demo


if __name__ == "__main__":
    main()
