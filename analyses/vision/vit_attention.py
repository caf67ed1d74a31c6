"""What a small ViT trained on scikit-learn's 8x8 digits looks at, read through hooks only.

Each seed trains the ViT of `checkpoints/vit_digits` (learned 1-D positions, class-token pooling; the same recipe
through `probe.Trainer`, so seed 0 reproduces the shipped checkpoint) and measures, on the fixed test split:
1. class-token attention per layer and head, `blocks.L.attn.hook_pattern[:, h, 0, 1:]` laid over the patch grid;
2. attention rollout (Abnar and Zuidema 2020, "Quantifying Attention Flow in Transformers", §3): per layer
   A~ = 0.5 mean_h(A) + 0.5 I (the residual connection), rows renormalised, rollout = A~_L ... A~_1; its class-token
   row is a distribution over the input tokens (its rows must sum to 1: measured);
3. the cosine similarity of the learned position embeddings of every pair of patches, drawn as in Dosovitskiy et al.
   2021, fig. 7;
4. a patch-wise logit lens: ln_final and the head applied to every token of every layer's residual stream.

Claims. The logit lens read at the class token gains accuracy from the embeddings to the last block, where it is the
model itself (so there it must equal the model's accuracy). Learned position embeddings recover the 2-D layout of
the patches (Dosovitskiy et al. 2021 §4.5, fig. 7): quantified per seed as the mean cosine similarity of the
position embeddings of adjacent patches (Manhattan distance 1 on the patch grid) minus that of distant patches
(distance at least the grid's side), which is positive when nearby patches get similar embeddings. Also reported: how
far training moved each position vector from its random initial value (mean cosine to it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import einops
import pandas as pd
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from analyses.vision._common import model_device, train, train_config, vit_digits
from probe.data.images import digits
from probe.interp.logit_lens import logit_lens
from probe.models.vit import ViT
from probe.study import Claim, Outcome, Study, Verdict, grid, judge, main

RECIPE_STEPS = 600  # checkpoints/vit_digits (analyses/vision/_checkpoints.py)
CLAIMS = (
    Claim("lens_sharpens", "The class token's logit lens gains accuracy from the embeddings to the last block",
          "nostalgebraist 2020 (logit lens); Dosovitskiy et al. 2021 §3.1",
          "class-token logit-lens accuracy after the last block - at the embeddings", ">", 0.0),
    Claim("lens_exact_at_end", "After the last block the class token's logit lens is the model's own prediction",
          "nostalgebraist 2020 (logit lens): ln_final and the head on the last stream are the model",
          "|class-token logit-lens accuracy after the last block - test accuracy|", "<=", 1e-6),
    Claim("positions_recover_2d", "Learned 1-D position embeddings recover the 2-D layout of the patches",
          "Dosovitskiy et al. 2021 §4.5, fig. 7",
          "mean cosine of adjacent patches' position embeddings - of distant patches' (Manhattan distance >= grid "
          "side)", ">", 0.0),
)


@dataclass(frozen=True)
class Config:
    steps: int = RECIPE_STEPS
    device: str | None = None  # None: the Trainer's choice (cuda, mps, cpu)
    seeds: tuple[int, ...] = (0, 1, 2)


def attention_rollout(patterns: Float[Tensor, "layer batch head query key"],
                      residual: float = 0.5) -> Float[Tensor, "batch query key"]:
    """Abnar and Zuidema's rollout: product over layers of residual * I + (1 - residual) * mean-over-heads A."""
    if not 0.0 <= residual <= 1.0:
        raise ValueError(f"residual={residual!r} must be in [0, 1]")
    n = patterns.shape[-1]
    eye = torch.eye(n, dtype=patterns.dtype, device=patterns.device)
    rollout = eye.expand(patterns.shape[1], n, n)
    for layer in patterns:
        a = residual * eye + (1 - residual) * layer.mean(dim=1)
        rollout = (a / a.sum(dim=-1, keepdim=True)) @ rollout
    return rollout


def position_similarity(w_pos: Float[Tensor, "patch d_model"]) -> Float[Tensor, "patch patch"]:
    w = F.normalize(w_pos, dim=-1)
    return w @ w.T


def neighbour_vs_distant(sim: Float[Tensor, "patch patch"], grid_side: int) -> tuple[Tensor, Tensor]:
    """Mean of `sim` over pairs of patches at Manhattan distance 1, and over pairs at distance >= grid_side."""
    pos = torch.arange(grid_side * grid_side, device=sim.device)
    rows, cols = pos // grid_side, pos % grid_side
    dist = (rows[:, None] - rows[None]).abs() + (cols[:, None] - cols[None]).abs()
    return sim[dist == 1].mean(), sim[dist >= grid_side].mean()


@torch.no_grad()
def measure(model: ViT, images: Float[Tensor, "batch channel height width"],
            labels: Int[Tensor, " batch"]) -> dict[str, Tensor]:
    """Every measurement, as tensors on the model's device (the inputs are moved there): predictions, patterns
    [layer batch head query key], rollout, logit lens [stream batch pos class], lens accuracies per stream."""
    model.eval()
    device = model_device(model)
    images, labels = images.to(device), labels.to(device)
    cfg = model.cfg
    logits, cache = model.run_with_cache(images, names_filter=lambda n: n.endswith("hook_pattern"))
    patterns = torch.stack([cache["pattern", layer] for layer in range(cfg.n_layers)])
    _, lens = logit_lens(model, {"images": images})  # [stream batch pos class]: embeddings, then every block
    correct = lens.argmax(-1) == labels[None, :, None]
    rollout = attention_rollout(patterns)
    return {"prediction": logits.argmax(-1), "accuracy": (logits.argmax(-1) == labels).float().mean(),
            "patterns": patterns, "rollout": rollout, "rollout_row_error": (rollout.sum(-1) - 1).abs().max(),
            "lens": lens, "cls_lens_accuracy": correct[:, :, 0].float().mean(1),
            "patch_lens_accuracy": correct[:, :, 1:].float().mean((1, 2))}


def position_layout(model: ViT) -> dict[str, float]:
    """Cosine of adjacent vs distant patches' learned position embeddings, and of each to its initial value."""
    if model.cfg.positional_embedding_type != "learned":
        raise ValueError(f"the model has {model.cfg.positional_embedding_type!r} positions, not learned ones")
    side = model.cfg.image_size // model.cfg.patch_size
    near, far = neighbour_vs_distant(position_similarity(model.W_pos[1:].detach()), side)
    init = ViT(model.cfg).W_pos.detach().to(model.W_pos.device)  # cfg.seed rebuilds the initial values
    to_init = F.cosine_similarity(model.W_pos[1:].detach(), init[1:], dim=-1).mean()
    return {"pos_adjacent_cos": near.item(), "pos_distant_cos": far.item(), "pos_layout_gap": (near - far).item(),
            "pos_cos_to_init": to_init.item()}


def trained_vit(seed: int, steps: int, device: str | None = None) -> ViT:
    """The digits ViT of the shipped checkpoint's recipe, trained with `seed`."""
    train_set = digits("train")
    model = ViT(vit_digits(seed))
    train(model, train_set, train_config(steps, seed, len(train_set), device=device))
    return model


def experiment(cfg: Config) -> Outcome:
    test = digits("test")
    kept: dict[int, tuple[ViT, dict[str, Tensor]]] = {}

    def one(seed: int) -> dict:
        model = trained_vit(seed, cfg.steps, cfg.device)
        m = measure(model, test.images, test.labels)
        kept[seed] = model, m
        row = {"accuracy": m["accuracy"].item(), "rollout_row_error": m["rollout_row_error"].item()}
        for i, (c, p) in enumerate(zip(m["cls_lens_accuracy"].tolist(), m["patch_lens_accuracy"].tolist())):
            row[f"cls_lens_{i}"], row[f"patch_lens_{i}"] = c, p
        return {**row, **position_layout(model)}

    table = grid(one, [{}], cfg.seeds, desc="vit_attention")
    model, m = kept[cfg.seeds[0]]
    summary = {f"mean {c}": table[c].mean() for c in table.columns if c.startswith(("cls_lens", "pos_"))}
    return Outcome(table, summary, {"model": model, "measures": m, "images": test.images, "labels": test.labels,
                                    "seed": cfg.seeds[0]})


def lens_columns(table: pd.DataFrame) -> list[str]:
    cols = sorted((c for c in table.columns if c.startswith("cls_lens_")), key=lambda c: int(c.rsplit("_", 1)[1]))
    if len(cols) < 2:
        raise ValueError(f"the table needs class-token lens columns cls_lens_0.. for >= 2 streams, got {cols}")
    return cols


def verdicts(table: pd.DataFrame) -> list[Verdict]:
    t = table.sort_values("seed")
    first, last = lens_columns(t)[0], lens_columns(t)[-1]
    rows = [int(i) for i in t.index]
    return [judge(CLAIMS[0], (t[last] - t[first]).to_numpy(), rows),
            judge(CLAIMS[1], (t[last] - t["accuracy"]).abs().to_numpy(), rows, method="exact"),
            judge(CLAIMS[2], t["pos_layout_gap"].to_numpy(), rows)]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    a = outcome.artifacts
    model, m = a["model"], {k: v.cpu() for k, v in a["measures"].items()}
    cfg = model.cfg
    side = cfg.image_size // cfg.patch_size
    paths = []
    # 1. class-token attention per layer/head, and the rollout
    n_images, n_layers, n_heads = 4, cfg.n_layers, cfg.n_heads
    cls_attn = einops.rearrange(m["patterns"][:, :n_images, :, 0, 1:], "l b h (gh gw) -> l b h gh gw", gh=side)
    roll = einops.rearrange(m["rollout"][:n_images, 0, 1:], "b (gh gw) -> b gh gw", gh=side)
    cols = 2 + n_layers * n_heads
    fig, axes = plt.subplots(n_images, cols, figsize=(1.3 * cols, 1.4 * n_images), squeeze=False)
    for i in range(n_images):
        panels = [(a["images"][i, 0], f"label {int(a['labels'][i])}")]
        panels += [(cls_attn[layer, i, h], f"L{layer}H{h}") for layer in range(n_layers) for h in range(n_heads)]
        panels += [(roll[i], "rollout")]
        for ax, (img, title) in zip(axes[i], panels):
            ax.imshow(img.numpy(), cmap="gray" if title.startswith("label") else "viridis")
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fig.suptitle(f"seed {a['seed']}: class-token attention per layer/head over the patch grid, and rollout",
                 fontsize=9)
    fig.tight_layout()
    paths.append(out / "cls_attention_rollout.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    # 2. position-embedding similarity, one small grid per patch (Dosovitskiy et al. fig. 7)
    sim = position_similarity(model.W_pos[1:].detach().cpu())
    fig, axes = plt.subplots(side, side, figsize=(1.2 * side, 1.2 * side), squeeze=False)
    for p in range(side * side):
        ax = axes[p // side, p % side]
        ax.imshow(sim[p].reshape(side, side).numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"seed {a['seed']}: cosine similarity of learned position embeddings", fontsize=9)
    fig.tight_layout()
    paths.append(out / "position_similarity.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    # 3. logit lens per stream: accuracy over seeds, and seed 0's p(true class) per patch
    t = outcome.table
    lens_cols = lens_columns(t)
    n = len(lens_cols)
    p_true = m["lens"].softmax(-1).gather(-1, a["labels"][None, :, None, None].expand(n, -1, m["lens"].shape[2], 1))
    p_map = einops.rearrange(p_true[:, :, 1:, 0].mean(1), "s (gh gw) -> s gh gw", gh=side)
    fig, axes = plt.subplots(1, 1 + n, figsize=(3.5 + 1.6 * n, 2.8))
    for prefix, marker, label in (("cls_lens_", "o", "class token"), ("patch_lens_", "s", "patch tokens (mean)")):
        values = t[[f"{prefix}{i}" for i in range(n)]].to_numpy()
        axes[0].plot(range(n), values.mean(0), marker=marker, label=label)
        for row in values:
            axes[0].plot(range(n), row, color="grey", lw=0.5, alpha=0.5)
    axes[0].set_xticks(range(n), ["embed"] + [f"after\nblock {i}" for i in range(n - 1)], fontsize=7)
    axes[0].set(ylabel="logit-lens accuracy", ylim=(0, 1.02))
    axes[0].legend(fontsize=7)
    for s in range(n):
        im = axes[1 + s].imshow(p_map[s].numpy(), vmin=0, vmax=1)
        axes[1 + s].set_title("embed" if s == 0 else f"after block {s - 1}", fontsize=8)
        axes[1 + s].axis("off")
    fig.colorbar(im, ax=axes[1:].tolist(), fraction=0.03, label=f"seed {a['seed']}: mean p(true class) per patch")
    paths.append(out / "logit_lens.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths


STUDY = Study(name="vision.vit_attention",
              title="What a digits ViT attends to: attention, rollout, position embeddings, logit lens",
              claims=CLAIMS, config=Config(), quick=Config(steps=10, seeds=(0,)), experiment=experiment,
              verdicts=verdicts, figures=figures, description=__doc__)

if __name__ == "__main__":
    main(STUDY)
