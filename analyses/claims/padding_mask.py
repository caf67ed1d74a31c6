"""Padding must be masked.

Seed 003 #5 says attention scores at padding positions are set to a very large negative number so that after the
softmax their weights are zero and the padding does not affect the real tokens' representations. The prediction:
with the key padding mask, the real tokens' outputs in a padded batch equal those of each sequence run alone;
without it they drift.

Encoders and decoders (2 blocks, rotary positions so that shifting a sequence right by left padding keeps its
relative positions) are trained briefly, with padding masks, on windows of mixed lengths from the offline corpus,
labelling each position with the next character (the encoder can read it, so it learns sharp attention to the next
position). Then the same held-out batch is padded on the right or on the left and run with and without
`attention_mask`; each sequence is also run alone, unpadded. Measured: the relative difference between a real
token's logits in the padded batch and alone (mean over sequences; the largest too). A causal decoder never attends
to later positions, so right padding cannot reach its real tokens even without the mask; left padding can.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from analyses.claims import _arch
from probe import Transformer, TransformerConfig
from probe.study import Claim, Outcome, Study, column, grid, judge, main

SOURCE = "003 #5"
EXACT = 1e-5  # relative difference treated as zero (float32 round-off)
CLAIMS = (
    Claim("masked_equals_unpadded", "With the padding mask, real tokens' outputs equal the unpadded run", SOURCE,
          "largest relative difference from the unpadded run with the mask, encoder and decoder, either side",
          "<", EXACT),
    Claim("encoder_drifts_unmasked", "Without the mask, an encoder's real tokens drift", SOURCE,
          "mean relative difference from the unpadded run, encoder, right padding, no mask", ">", 1e-3),
    Claim("decoder_left_drifts_unmasked", "Without the mask, a decoder's real tokens drift under left padding",
          SOURCE, "mean relative difference from the unpadded run, decoder, left padding, no mask", ">", 1e-3),
    Claim("decoder_right_needs_no_mask", "A causal decoder with right padding needs no padding mask (not in the "
          "seed)", SOURCE, "largest relative difference from the unpadded run, decoder, right padding, no mask",
          "<", EXACT),
)


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    d_model: int = 64
    n_heads: int = 4
    min_len: int = 8
    max_len: int = 32
    steps: int = 300
    lr: float = 1e-3
    batch_size: int = 32
    n_train: int = 4096
    workers: int = 2


def pad(batch: dict, side: str) -> dict:
    """The batch's real tokens moved to the `side` it is not padded on: right padding as given, or left padding."""
    if side == "right":
        return {k: batch[k] for k in ("tokens", "attention_mask")}
    lengths = batch["attention_mask"].sum(1)
    width = batch["tokens"].shape[1]
    # left padding: position j of row i holds real token j - (width - length)
    src = (torch.arange(width)[None] - (width - lengths)[:, None]).clamp(min=0)
    real = torch.arange(width)[None] >= (width - lengths)[:, None]
    return {"tokens": batch["tokens"].gather(1, src).masked_fill(~real, _arch.PAD), "attention_mask": real.long()}


@torch.no_grad()
def drift(model: Transformer, batch: dict, masked: bool) -> tuple[float, float]:
    """(mean, largest) over sequences of |logits of real tokens in the padded batch - alone| / |alone|."""
    logits = model(batch["tokens"], attention_mask=batch["attention_mask"] if masked else None)
    changes = []
    for i in range(len(batch["tokens"])):
        real = batch["attention_mask"][i].bool()
        alone = model(batch["tokens"][i : i + 1, real])[0]
        changes.append(float((logits[i, real] - alone).norm() / alone.norm()))
    return sum(changes) / len(changes), max(changes)


def train_model(arch: str, d_model: int, n_heads: int, min_len: int, max_len: int, steps: int, lr: float,
                batch_size: int, n_train: int, seed: int) -> Transformer:
    _, vocab = _arch.corpus()
    extra = dict(head="token") if arch == "encoder" else {}
    model = Transformer(TransformerConfig(arch=arch, n_layers=2, d_model=d_model, n_heads=n_heads, d_vocab=vocab,
                                          n_ctx=max_len, positional_embedding_type="rotary", seed=seed, **extra))
    _arch.fit(model, _arch.text_windows(n_train, min_len, max_len, 1), None, steps, lr, seed, batch_size,
              warmup=max(1, steps // 20), schedule="cosine")
    return model.eval()


def run(arch: str, d_model: int, n_heads: int, min_len: int, max_len: int, steps: int, lr: float,
        batch_size: int, n_train: int, seed: int) -> list[dict]:
    cpu = time.process_time()
    model = train_model(arch, d_model, n_heads, min_len, max_len, steps, lr, batch_size, n_train, seed)
    batch = _arch.batch_of(_arch.text_windows(batch_size, min_len, max_len, 100 + seed, "eval"), batch_size)
    rows = []
    for side in ("right", "left"):
        for masked in (True, False):
            mean, largest = drift(model, pad(batch, side), masked)
            rows.append({"side": side, "masked": masked, "drift": mean, "drift_max": largest})
    cpu = (time.process_time() - cpu) / len(rows)
    return [{**r, "cpu_s": cpu} for r in rows]


def experiment(cfg: Config) -> Outcome:
    variants = [dict(arch=a, d_model=cfg.d_model, n_heads=cfg.n_heads, min_len=cfg.min_len, max_len=cfg.max_len,
                     steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size, n_train=cfg.n_train)
                for a in ("encoder", "decoder")]
    table = grid(run, variants, cfg.seeds, desc="padding_mask", workers=cfg.workers)
    summary = {"CPU seconds (all workers)": table["cpu_s"].sum()}
    return Outcome(table, summary)


def verdicts(table: pd.DataFrame) -> list:
    c = {claim.id: claim for claim in CLAIMS}
    masked = table[table["masked"] == True]  # noqa: E712
    if masked.empty:
        raise ValueError("the table has no masked runs")
    worst = masked.groupby("seed")["drift_max"].max()
    return [
        judge(c["masked_equals_unpadded"], worst.to_numpy(), [int(i) for i in masked.index], method="exact"),
        judge(c["encoder_drifts_unmasked"], *column(table, "drift", arch="encoder", side="right", masked=False)),
        judge(c["decoder_left_drifts_unmasked"], *column(table, "drift", arch="decoder", side="left", masked=False)),
        judge(c["decoder_right_needs_no_mask"], *column(table, "drift_max", arch="decoder", side="right",
                                                        masked=False), method="exact"),
    ]


def figures(outcome: Outcome, out_dir: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    table = outcome.table
    fig, ax = plt.subplots(figsize=(7, 3.6))
    labels, values = [], []
    for (arch, side, masked), rows in table.groupby(["arch", "side", "masked"]):
        labels.append(f"{arch}\n{side}, {'mask' if masked else 'no mask'}")
        values.append(max(rows["drift"].mean(), 1e-9))  # zero drawn at the floor of the log scale
    ax.bar(range(len(values)), values, color=["C0" if "no mask" not in lab else "C3" for lab in labels])
    ax.set_xticks(range(len(values)), labels, fontsize=7)
    ax.set(yscale="log", ylabel="relative change of real tokens' logits", title="padded batch vs each sequence alone")
    return _arch.save_figure(fig, out_dir, "padding_mask")


STUDY = Study(
    name="claims.padding_mask",
    title="Padding masks: real tokens' outputs in a padded batch vs the unpadded run",
    claims=CLAIMS,
    config=Config(),
    quick=Config(seeds=(0,), d_model=16, n_heads=2, min_len=3, max_len=8, steps=3, batch_size=8, n_train=64,
                 workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__,
)

if __name__ == "__main__":
    main(STUDY)
