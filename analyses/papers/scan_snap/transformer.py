"""Scan and Snap in an ordinary `probe.Transformer` (Tian et al. 2023, arXiv 2305.16380): one layer, one head,
attention only, no positional encoding, trained by `probe.Trainer` on the Scan-and-Snap data (two query tokens, two
next tokens each) with SGD (momentum 0.9), the attention's W_Q/W_K/b_Q/b_K (the paper's Z) at eta_Z and every other
parameter (its Y) at eta_Y = ratio x eta_Z; only the query position is supervised. The query position's pattern
(`blocks.0.attn.hook_pattern`), summed per key token and averaged per class on a fixed batch, plays c_{l|n}: scan =
its mass on the class's distinct tokens rises and on common tokens falls; snap = its speed of change decays (the
speed at the last record against its peak; the snap step is the first record after the peak below a tenth of it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import torch

from analyses.papers.scan_snap._common import QK_PARAMS, SOURCE, Measure, device, snap_index, token_attention
from probe import Transformer, TransformerConfig
from probe.data.scan_snap import ScanSnapData
from probe.models.scan_snap_config import ScanSnapConfig
from probe.study import Claim, Outcome, Study, grid, judge, main, paired, per_seed
from probe.train import TrainConfig, Trainer

CLAIMS = (
    Claim("scan_distinct", "Scan: the query's attention moves onto the class's distinct tokens, at every "
          "eta_Y/eta_Z", f"{SOURCE}, Theorem 2, in an ordinary Transformer",
          "smallest rise, over eta_Y/eta_Z, of the query position's attention mass on its class's distinct tokens "
          "from the first record to the last", ">", 0.0),
    Claim("scan_common", "Scan: the query's attention leaves the common tokens, at every eta_Y/eta_Z",
          f"{SOURCE}, Theorem 2, in an ordinary Transformer",
          "smallest fall, over eta_Y/eta_Z, of the query position's attention mass on common tokens", ">", 0.0),
    Claim("snap", "Snap: the attention pattern freezes", f"{SOURCE}, Theorem 4, in an ordinary Transformer",
          "largest, over eta_Y/eta_Z, speed of the per-class pattern at the last record over its peak speed",
          "<", 0.2),
    Claim("denser", "A larger eta_Y/eta_Z ends in a denser attention over the distinct tokens",
          f"{SOURCE}, Figures 4 and 6, in an ordinary Transformer",
          "final entropy (nats) of the query's attention over its class's distinct tokens at the largest eta_Y/eta_Z "
          "minus at the smallest", ">", 0.0),
    Claim("earlier", "A larger eta_Y/eta_Z snaps earlier", f"{SOURCE}, Theorem 4, in an ordinary Transformer",
          "snap step at the largest eta_Y/eta_Z minus at the smallest", "<", 0.0),
)


@dataclass(frozen=True)
class Config:
    ratios: tuple[float, ...] = (1.0, 5.0)  # eta_Y / eta_Z
    eta_z: float = 0.02
    d_model: int = 32
    seq_len: int = 32
    steps: int = 200
    batch: int = 64
    records: int = 30  # measurements of the pattern over training
    seeds: tuple[int, ...] = (0, 1, 2)


def batches(data: ScanSnapData, batch: int, seed: int):
    """Endless Trainer batches: labels are -100 except at the query (last) position, which predicts the next token."""
    gen = torch.Generator(device=data.device).manual_seed(1000 + seed)
    while True:
        tokens, labels = data.sample(batch, gen)
        target = torch.full_like(tokens, -100)
        target[:, -1] = labels
        yield {"tokens": tokens, "labels": target}


def class_pattern(model, tokens: torch.Tensor, cls: torch.Tensor, n_classes: int) -> torch.Tensor:
    """[F, M]: the query position's attention per key token, averaged over the examples of each class."""
    a = token_attention(model, tokens)
    return torch.stack([a[cls == f].mean(0) for f in range(n_classes)])


def train_one(ratio: float, seed: int, cfg: Config) -> dict:
    data = ScanSnapData(ScanSnapConfig(num_last=2, num_next_per_last=2, seq_len=cfg.seq_len), device())
    model = Transformer(TransformerConfig(d_model=cfg.d_model, n_layers=1, n_heads=1, attn_only=True,
                                          d_vocab=data.d_vocab, n_ctx=cfg.seq_len, positional_embedding_type="none",
                                          seed=seed))
    tokens, labels = data.sample(256, torch.Generator(device=data.device).manual_seed(7))  # a fixed probe batch
    measure = Measure(partial(class_pattern, tokens=tokens, cls=labels - data.cfg.next_offset,
                              n_classes=data.num_classes), every=max(1, cfg.steps // cfg.records))
    train = TrainConfig(steps=cfg.steps, lr=cfg.eta_z * ratio, lr_groups={QK_PARAMS: cfg.eta_z}, optimizer="sgd",
                        momentum=0.9, weight_decay=0.0, grad_clip=None, seed=seed, log_every=measure.every,
                        progress=False)
    trainer = Trainer(model, batches(data, cfg.batch, seed), None, train, callbacks=[measure])
    trainer.fit()
    per_class = torch.stack(measure.values).cpu()  # [records, F, M]
    distinct, common = data.mask("distinct").cpu(), data.mask("common").cpu()
    d = per_class * distinct
    p = d / d.sum(-1, keepdim=True)
    entropy = -(p * p.clamp_min(1e-30).log()).sum(-1).mean(-1)  # [records]
    mass_d, mass_c = d.sum(-1).mean(-1), (per_class * common).sum(-1).mean(-1)
    speed = (per_class[1:] - per_class[:-1]).abs().sum(-1).mean(-1)  # [records - 1]
    snap = snap_index(speed, 0.1)
    return {"distinct_mass_start": float(mass_d[0]), "distinct_mass_end": float(mass_d[-1]),
            "distinct_rise": float(mass_d[-1] - mass_d[0]), "common_mass_start": float(mass_c[0]),
            "common_mass_end": float(mass_c[-1]), "common_fall": float(mass_c[0] - mass_c[-1]),
            "entropy_end": float(entropy[-1]), "final_speed_over_peak": float(speed[-1] / speed.max()),
            "snap_step": measure.steps[min(snap + 1, len(speed))], "train_loss": trainer.last_loss,
            "curves": {"step": measure.steps, "distinct_mass": mass_d.tolist(), "common_mass": mass_c.tolist(),
                       "speed": [float("nan"), *speed.tolist()]}}


def experiment(cfg: Config) -> Outcome:
    if len(cfg.ratios) < 2:
        raise ValueError(f"ratios={cfg.ratios} needs at least two values of eta_Y/eta_Z to compare")
    table = grid(partial(train_one, cfg=cfg), [{"ratio": r} for r in cfg.ratios], cfg.seeds, desc="transformer")
    return Outcome(table.drop(columns="curves"), artifacts={"curves": table[["ratio", "seed", "curves"]]})


def verdicts(table: pd.DataFrame) -> list:
    lo, hi = {"ratio": table["ratio"].min()}, {"ratio": table["ratio"].max()}
    return [judge(CLAIMS[0], *per_seed(table, "distinct_rise", "min")),
            judge(CLAIMS[1], *per_seed(table, "common_fall", "min")),
            judge(CLAIMS[2], *per_seed(table, "final_speed_over_peak", "max")),
            judge(CLAIMS[3], *paired(table, "entropy_end", hi, lo)),
            judge(CLAIMS[4], *paired(table, "snap_step", hi, lo))]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    import numpy as np

    curves = outcome.artifacts["curves"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ratio, g in curves.groupby("ratio"):
        steps = g["curves"].iloc[0]["step"]
        for ax, key in zip(axes, ("distinct_mass", "common_mass", "speed")):
            ax.plot(steps, np.mean([c[key] for c in g["curves"]], 0), label=f"eta_Y/eta_Z = {ratio:g}")
            ax.set(title=key.replace("_", " "), xlabel="step")
    axes[0].legend(fontsize=7)
    fig.suptitle("The query position's attention per class (mean over seeds)", fontsize=10)
    fig.tight_layout()
    path = out / "transformer_attention.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


STUDY = Study(
    name="papers.scan_snap.transformer", title="Scan and Snap in an ordinary probe.Transformer, read through hooks",
    claims=CLAIMS, config=Config(), quick=Config(seq_len=16, steps=6, batch=16, records=3, seeds=(0,)),
    experiment=experiment, verdicts=verdicts, figures=figures, description=__doc__)

if __name__ == "__main__":
    main(STUDY)
