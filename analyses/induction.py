"""Induction heads in a 2-layer attention-only decoder (Olsson et al. 2022, "In-context Learning and Induction
Heads"; Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits").

Data: [bos, r_1..r_B, r_1..r_B, ...] of fixed length T: a block of B random symbols (uniform over S) repeated to
fill the sequence, B uniform in [B_min, B_max], trained with plain next-token loss on every position (the Trainer,
probe.train). The first copy is unpredictable (best loss ln S); every later token is predictable by looking back:
find the earlier occurrence of the current token and copy the token after it. Because B varies, the distance to the
earlier copy varies too, so no positional head can solve it (with a fixed B, one layer-0 head attending B - 1
positions back does, and it is what a model trained on fixed [bos, r, r] learns). Two-layer attention-only models
solve it with a previous-token head in layer 0 feeding an induction head in layer 1 (K-composition). Sinusoidal
positions (exported to GPT-2 as its position table) make the previous-token head easy to find; with learned
positions the same budget (seed 0, 400 steps) gave repeat loss 0.50 and no induction head (best score 0.12, layer 0).

Claims under test, on fresh sequences:
1. in-context learning: the loss on the repeats is far below the loss inside the first copy (ratio < 0.2);
2. an induction head exists: TransformerLens' `head_detector.detect_head(model, prompts, "induction_head")` scores
   a head above 0.6 of the ceiling (the score an ideal induction head gets on the same prompts: detect_head's "mul"
   score divides by every query row, and only rows in the repeat have a target), and it sits in layer 1;
   `"previous_token_head"` finds the layer-0 head that feeds it.
Seed dependence (measured 2026-11-22, CPU): the default (seed 0, 400 steps) passes every claim. With seeds 1 and 2
the models also learn in context (after 1200 steps, repeat loss 0.12 and 0.13) but the detector finds no single head
matching the induction pattern above the bound (seed 1: best 0.14 of 0.58 ideal, in layer 0; seed 2: 0.31 in layer
1), so the circuit found differs across seeds; run with `--seed` to see it.
Losses are measured on fresh sequences from the training distribution; the head detector and the figures use the
classic prompt [bos, r_1..r_B, r_1..r_B] with B = B_max. The model has one spare position (n_ctx = T + 1):
detect_head requires prompts shorter than n_ctx.

`python -m analyses.induction [--quick] [--out DIR] [--save CHECKPOINT_DIR]` writes metrics.json, report.md,
loss_curve.png, loss_by_position.png, head_scores.png, induction_pattern.png under runs/induction/ (or --out).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor  # noqa: E402
from transformer_lens.head_detector import detect_head  # noqa: E402

from probe import Transformer, TransformerConfig  # noqa: E402
from probe.data.synthetic import BOS, N_SPECIAL  # noqa: E402
from probe.interop.bridge import vocab_tokenizer  # noqa: E402
from probe.train.batches import DictDataset  # noqa: E402
from probe.train.trainer import TrainConfig, Trainer  # noqa: E402

LOSS_RATIO_BOUND = 0.2  # repeated-half loss / first-half loss must be below this
HEAD_SCORE_BOUND = 0.6  # best induction score / ideal-head score must be above this


@dataclass
class InductionConfig:
    n_symbols: int = 16
    min_block: int = 3
    block: int = 8  # B_max
    length: int = 24  # tokens per training sequence
    d_model: int = 32
    n_heads: int = 4
    positional: str = "sinusoidal"  # sinusoidal | learned (both export to GPT-2's position table)
    steps: int = 400
    batch_size: int = 64
    lr: float = 1e-2
    warmup_steps: int = 20
    n_train: int = 4096
    n_eval: int = 512
    n_prompts: int = 16  # prompts for the head detector
    seed: int = 0


QUICK = InductionConfig(n_eval=256, n_prompts=8)  # trains exactly like the default; evaluates on fewer sequences


@dataclass
class InductionResult:
    config: dict
    losses: list[tuple[int, float]]  # (step, mean training loss since the last log)
    train_seconds: float
    first_half_loss: float  # mean next-token loss predicting r_2..r_B in the first copy (fresh data)
    repeated_half_loss: float  # the same tokens in the second copy
    uniform_loss: float  # ln S, the best possible loss on the first copy
    loss_by_position: list[float]  # on [bos, r, r] with B = B_max
    induction_scores: list[list[float]]  # [layer][head], detect_head "induction_head"
    previous_token_scores: list[list[float]]
    induction_ceiling: float  # detect_head score of an ideal induction head on the same prompts
    best_induction_head: tuple[int, int]
    best_previous_token_head: tuple[int, int]
    claims: dict[str, bool] = field(default_factory=dict)
    out_dir: str | None = None
    model: Any = field(default=None, repr=False)  # the trained probe.Transformer (not written to metrics.json)


def repeated_sequences(n: int, n_symbols: int, min_block: int, max_block: int, length: int, seed: int = 0,
                       ) -> tuple[Tensor, Tensor]:
    """tokens [n, length] = [bos, r_1..r_B, r_1..r_B, ...] (a random block repeated, B uniform in [min_block,
    max_block]) and `copy` [n, length]: 0 at bos, then 1 on the first copy of r, 2 on the second, ...
    Symbols are ids N_SPECIAL.. as in probe.data.synthetic."""
    if not 1 <= min_block <= max_block or length < 2 * max_block + 1:
        raise ValueError(f"need 1 <= min_block={min_block} <= max_block={max_block} and length={length} >= "
                         f"2 max_block + 1 (room for two copies)")
    g = torch.Generator().manual_seed(seed)
    block = torch.randint(min_block, max_block + 1, (n, 1), generator=g)
    r = torch.randint(N_SPECIAL, N_SPECIAL + n_symbols, (n, max_block), generator=g)
    after_bos = torch.arange(length - 1)[None]
    tokens = torch.cat([torch.full((n, 1), BOS), r.gather(1, after_bos % block)], 1)
    copy = torch.cat([torch.zeros(n, 1, dtype=torch.long), after_bos // block + 1], 1)
    return tokens, copy


def symbol_names(n_symbols: int) -> list[str]:
    return ["<pad>", "<bos>", "<eos>", *(f"s{i}" for i in range(n_symbols))]


def model_config(c: InductionConfig) -> TransformerConfig:
    """2 layers, attention only, pre-LN, absolute positions, no unembedding bias (so it exports to GPT-2)."""
    return TransformerConfig(d_model=c.d_model, n_layers=2, n_heads=c.n_heads, attn_only=True,
                             positional_embedding_type=c.positional, d_vocab=N_SPECIAL + c.n_symbols,
                             n_ctx=c.length + 1, unembed_bias=False, bos_token_id=1, pad_token_id=0, seed=c.seed,
                             model_name="induction-2l-attn-only")


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with `n` intra-op threads (tiny models on a shared CPU run fastest on one), then restore."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def train_config(c: InductionConfig, progress: bool = True) -> TrainConfig:
    return TrainConfig(steps=c.steps, batch_size=c.batch_size, lr=c.lr, schedule="cosine", warmup_steps=c.warmup_steps,
                       seed=c.seed, log_every=max(1, c.steps // 50), progress=progress)


def train_model(c: InductionConfig, progress: bool = True) -> tuple[Transformer, list[tuple[int, float]], float]:
    model = Transformer(model_config(c), tokenizer=vocab_tokenizer(names=symbol_names(c.n_symbols)))
    tokens, _ = repeated_sequences(c.n_train, c.n_symbols, c.min_block, c.block, c.length, seed=c.seed)
    train = DictDataset(tokens=tokens)  # next-token loss everywhere, not only on the repeat
    tc = train_config(c, progress)
    start = time.perf_counter()
    trainer = Trainer(model, train, None, tc)
    history = trainer.fit()
    seconds = time.perf_counter() - start
    losses = [(r["step"], r["loss"]) for r in history if "loss" in r and "event" not in r]
    return model.eval(), losses, seconds


@torch.no_grad()
def token_losses(model: Transformer, tokens: Tensor) -> Tensor:
    """[batch, pos-1] next-token loss at each prediction position."""
    logits = model(tokens.to(model.device)).float().cpu()
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")


def half_losses(losses: Tensor, copy: Tensor) -> tuple[float, float]:
    """(first, repeated): mean loss predicting r_2..r_B inside the first copy, and predicting any token from a
    position in a later copy (all predictable by induction)."""
    first = (copy[:, :-1] == 1) & (copy[:, 1:] == 1)
    second = copy[:, :-1] >= 2
    return losses[first].mean().item(), losses[second].mean().item()


def ideal_score(tokens: Tensor, kind: str) -> float:
    """detect_head's "mul" score of a head whose pattern is its detection pattern (row-normalised, rows without a
    target attend to bos): the fraction of query rows that have a target."""
    from transformer_lens import head_detector

    pattern = getattr(head_detector, f"get_{kind}_detection_pattern")(tokens[None])
    return (pattern.sum(-1) > 0).float().mean().item()


@torch.no_grad()
def head_scores(model: Transformer, prompts: Tensor) -> dict[str, Any]:
    """detect_head scores [layer, head] for induction and previous-token heads, averaged over `prompts`."""
    texts = [" ".join(model.tokenizer.id_to_token(int(t)) for t in row) for row in prompts]
    induction_scores = detect_head(model, texts, "induction_head")
    previous = detect_head(model, texts, "previous_token_head")
    ceiling = sum(ideal_score(row, "induction_head") for row in prompts) / len(prompts)
    return {"induction": induction_scores, "previous": previous, "ceiling": ceiling}


def argmax2d(scores: Tensor) -> tuple[int, int]:
    flat = int(scores.argmax())
    return flat // scores.shape[1], flat % scores.shape[1]


def run(quick: bool = False, out: str | Path | None = "runs/induction", config: InductionConfig | None = None,
        save: str | Path | None = None, progress: bool = True, threads: int | None = 1) -> InductionResult:
    """Train, measure, plot and report. `save` also writes the trained model as a probe checkpoint there."""
    c = config or (QUICK if quick else InductionConfig())
    with torch_threads(threads):
        model, losses, seconds = train_model(c, progress)
        fresh, copy = repeated_sequences(c.n_eval, c.n_symbols, c.min_block, c.block, c.length, seed=c.seed + 1)
        first, repeated = half_losses(token_losses(model, fresh), copy)
        classic, _ = repeated_sequences(c.n_eval, c.n_symbols, c.block, c.block, 2 * c.block + 1, seed=c.seed + 2)
        by_pos = token_losses(model, classic).mean(0)
        scores = head_scores(model, classic[: c.n_prompts])
    best_ind, best_prev = argmax2d(scores["induction"]), argmax2d(scores["previous"])
    best_ratio = scores["induction"].max().item() / scores["ceiling"]
    result = InductionResult(
        config=asdict(c), losses=losses, train_seconds=seconds, first_half_loss=first, repeated_half_loss=repeated,
        uniform_loss=math.log(c.n_symbols), loss_by_position=by_pos.tolist(),
        induction_scores=scores["induction"].tolist(), previous_token_scores=scores["previous"].tolist(),
        induction_ceiling=scores["ceiling"], best_induction_head=best_ind, best_previous_token_head=best_prev,
        claims={
            f"repeated_half_loss_below_{LOSS_RATIO_BOUND}x_first_half": repeated < LOSS_RATIO_BOUND * first,
            f"induction_head_score_above_{HEAD_SCORE_BOUND}x_ideal": best_ratio > HEAD_SCORE_BOUND,
            "best_induction_head_in_layer_1": best_ind[0] == 1,
            "best_previous_token_head_in_layer_0": best_prev[0] == 0,
        },
        model=model,
    )
    if save is not None:
        save_checkpoint(result, save)
    if out is not None:
        write_outputs(result, Path(out), classic[0])
    return result


def save_checkpoint(result: InductionResult, path: str | Path) -> Path:
    from probe.checkpoint import save

    command = "python -m analyses.induction " + shlex.join(sys.argv[1:]) if sys.argv[1:] else None
    meta = {
        "command": command or f"python -m analyses.induction --save {path}",
        "analysis_config": result.config,
        "train_config": train_config(InductionConfig(**result.config), progress=False).to_dict(),
        "step": result.config["steps"],
        "train_seconds": round(result.train_seconds, 1),
        "metrics": {"first_half_loss": result.first_half_loss, "repeated_half_loss": result.repeated_half_loss,
                    "final_train_loss": result.losses[-1][1],
                    "best_induction_head": list(result.best_induction_head),
                    "best_induction_score": max(max(r) for r in result.induction_scores),
                    "induction_ceiling": result.induction_ceiling},
        "task": {"name": "induction", "n_symbols": result.config["n_symbols"], "block": result.config["block"],
                 "min_block": result.config["min_block"],
                 "format": "[bos, noise, r_1..r_B, r_1..r_B], B in [min_block, block], symbols are ids 3.., bos = 1"},
    }
    return save(result.model, path, meta=meta, tokenizer=result.model.tokenizer)


# ---- outputs -------------------------------------------------------------------------------------------------
def write_outputs(result: InductionResult, out: Path, example: Tensor) -> None:
    out.mkdir(parents=True, exist_ok=True)
    c = result.config
    metrics = {k: v for k, v in asdict(result).items() if k not in ("model", "out_dir")}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    steps, values = zip(*result.losses)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(steps, values, label="training loss (all positions)")
    ax.axhline(result.uniform_loss * (c["block"] - 1) / (2 * c["block"]), ls="--", c="gray",
               label="perfect induction (first copy at ln S)")
    ax.set(xlabel="step", ylabel="loss", title="Training loss")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "loss_curve.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(range(1, len(result.loss_by_position) + 1), result.loss_by_position, marker=".")
    ax.axvline(c["block"] + 0.5, ls=":", c="gray")
    ax.axhline(result.uniform_loss, ls="--", c="gray", label="ln S")
    ax.set(xlabel="position of the predicted token", ylabel="loss (fresh data)", title="In-context loss by position")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "loss_by_position.png", dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(7, 2.8))
    for ax, key, title in ((axes[0], "induction_scores", "induction"), (axes[1], "previous_token_scores",
                                                                          "previous token")):
        im = ax.imshow(getattr(result, key), vmin=0, vmax=1, cmap="viridis")
        ax.set(xlabel="head", ylabel="layer", title=f"detect_head: {title}", yticks=[0, 1])
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(out / "head_scores.png", dpi=120)
    plt.close(fig)

    layer, head = result.best_induction_head
    with torch.no_grad():
        _, cache = result.model.run_with_cache(example[None].to(result.model.device),
                                               names_filter=f"blocks.{layer}.attn.hook_pattern")
    pattern = cache["pattern", layer][0, head].cpu()
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.imshow(pattern.numpy(), cmap="Blues")
    ax.set(xlabel="key position", ylabel="query position", title=f"Head {layer}.{head} on [bos, r, r]")
    fig.tight_layout()
    fig.savefig(out / "induction_pattern.png", dpi=120)
    plt.close(fig)

    ratio = result.repeated_half_loss / result.first_half_loss
    ind = max(max(r) for r in result.induction_scores)
    prev_l, prev_h = result.best_previous_token_head
    verdict = "supported" if all(result.claims.values()) else "NOT supported"
    lines = [
        "# Induction heads in a 2-layer attention-only decoder",
        "",
        f"Claim under test (Olsson et al. 2022): trained on repeated random sequences, a 2-layer attention-only "
        f"decoder learns in context (repeated-half loss < {LOSS_RATIO_BOUND} x first-half loss) with an induction "
        f"head in layer 1 (detect_head score > {HEAD_SCORE_BOUND} x an ideal head's) fed by a previous-token head "
        f"in layer 0. **The measurement {verdict} it.**",
        "",
        f"Model: d_model {c['d_model']}, {c['n_heads']} heads x 2 layers, attention only; data: a block of "
        f"B in [{c['min_block']}, {c['block']}] symbols of S = {c['n_symbols']} after noise, repeated once; "
        f"{c['steps']} steps of batch {c['batch_size']} "
        f"({result.train_seconds:.0f} s).",
        "",
        "| measurement | value |",
        "|---|---|",
        f"| first-half loss (fresh data) | {result.first_half_loss:.3f} (ln S = {result.uniform_loss:.3f}) |",
        f"| repeated-half loss | {result.repeated_half_loss:.4f} (ratio {ratio:.4f}) |",
        f"| best induction head | {layer}.{head}: score {ind:.3f}, ideal head {result.induction_ceiling:.3f} "
        f"({ind / result.induction_ceiling:.2f} of ideal) |",
        f"| best previous-token head | {prev_l}.{prev_h}: score "
        f"{result.previous_token_scores[prev_l][prev_h]:.3f} |",
        "",
        "Claims: " + ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in result.claims.items()) + ".",
        "",
        "![loss curve](loss_curve.png) ![loss by position](loss_by_position.png)",
        "",
        "![head scores](head_scores.png) ![induction pattern](induction_pattern.png)",
        "",
        f"The pattern of head {layer}.{head} on one fresh sequence: in the second copy each query attends to the "
        "position after the previous occurrence of its token (the off-diagonal stripe).",
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    result.out_dir = str(out)


def main(argv: list[str] | None = None) -> InductionResult:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small fast setting (tests)")
    parser.add_argument("--out", default="runs/induction", help="output directory")
    parser.add_argument("--save", default=None, help="also write the trained model as a probe checkpoint here")
    parser.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    c = QUICK if args.quick else InductionConfig()
    if args.steps is not None:
        c = InductionConfig(**{**asdict(c), "steps": args.steps})
    if args.seed is not None:
        c = InductionConfig(**{**asdict(c), "seed": args.seed})
    result = run(out=args.out, config=c, save=args.save)
    print(f"first-half loss {result.first_half_loss:.3f}, repeated-half loss {result.repeated_half_loss:.4f}, "
          f"best induction head {result.best_induction_head} score "
          f"{max(max(r) for r in result.induction_scores):.3f} / ideal {result.induction_ceiling:.3f}; "
          f"claims {result.claims}; wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
