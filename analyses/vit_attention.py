"""What a small ViT trained on 8x8 digits looks at, read through hooks only.

1. Class-token attention per layer and head, `blocks.L.attn.hook_pattern[:, h, 0, 1:]` laid over the patch grid.
2. Attention rollout (Abnar and Zuidema 2020, "Quantifying Attention Flow in Transformers", sec. 3): per layer
   A~ = 0.5 mean_h(A) + 0.5 I (the residual connection), rows renormalised, rollout = A~_L ... A~_1; its class-token
   row is a distribution over the input tokens.
3. Cosine similarity of the learned position embeddings of every pair of patches, drawn as in Dosovitskiy et al.
   2021, fig. 7 (one small grid per patch).
4. A patch-wise logit lens: ln_final and the head applied to every token of every layer's residual stream.

Claims under test: (a) learned positions recover the 2-D layout: adjacent patches' embeddings are more similar
(cosine) than distant ones'; (b) the class token's logit-lens accuracy is higher after the last block than at the
embeddings and there equals the model's accuracy (the lens is exact there).
Rollout rows sum to 1 by construction (checked).
`python -m analyses.vit_attention [--quick] [--out DIR] [--checkpoint DIR]`.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import einops  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from jaxtyping import Float  # noqa: E402
from torch import Tensor  # noqa: E402

from analyses.vision_common import load_or_train_vit  # noqa: E402
from probe.data.images import digits  # noqa: E402
from probe.models.vit import ViT  # noqa: E402


def attention_rollout(
    patterns: Float[Tensor, "layer batch head query key"], residual: float = 0.5
) -> Float[Tensor, "batch query key"]:
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


def neighbour_vs_distant(sim: Float[Tensor, "patch patch"], grid: int) -> tuple[float, float]:
    """Mean cosine over pairs at Manhattan distance 1, and over pairs at distance >= grid."""
    rows, cols = torch.div(torch.arange(grid * grid), grid, rounding_mode="floor"), torch.arange(grid * grid) % grid
    dist = (rows[:, None] - rows[None]).abs() + (cols[:, None] - cols[None]).abs()
    return sim[dist == 1].mean().item(), sim[dist >= grid].mean().item()


@dataclass
class ViTAttentionResult:
    test_accuracy: float
    cls_lens_accuracy: list[float]  # per residual stream: embeddings, after block 0, ..., after the last block
    patch_lens_accuracy: list[float]  # mean over patch tokens
    rollout_row_sum_max_error: float
    pos_neighbour_cos: float | None
    pos_distant_cos: float | None
    pos_cos_to_init: float | None  # mean cosine of each patch's learned position vector with its initial value
    cls_entropy_per_layer_head: list[list[float]]
    positions_supported: bool | None
    lens_supported: bool
    source: str
    seconds: float
    cpu_seconds: float


@torch.no_grad()
def run(
    checkpoint: str | Path | None = "checkpoints/vit_digits",
    out: str | Path | None = "runs/vit_attention",
    quick: bool = False,
) -> ViTAttentionResult:
    start, cpu_start = time.time(), time.process_time()
    model, source = load_or_train_vit(checkpoint, steps=30 if quick else 600)
    model.eval()
    test = digits("test")
    images, labels = test.images, test.labels
    cfg = model.cfg
    grid = cfg.image_size // cfg.patch_size
    logits, cache = model.run_with_cache(images, names_filter=lambda n: n.endswith("hook_pattern") or "resid" in n)
    acc = (logits.argmax(-1) == labels).float().mean().item()
    patterns = torch.stack([cache["pattern", layer] for layer in range(cfg.n_layers)])  # [layer b h q k]
    rollout = attention_rollout(patterns)
    row_err = (rollout.sum(-1) - 1).abs().max().item()

    # logit lens over every token of every residual stream
    streams = [cache["resid_pre", 0]] + [cache["resid_post", layer] for layer in range(cfg.n_layers)]
    lens = torch.stack([model.head_logits(s) for s in streams])  # [stream b pos class]
    correct = lens.argmax(-1) == labels[None, :, None]
    cls_acc = correct[:, :, 0].float().mean(1).tolist()
    patch_acc = correct[:, :, 1:].float().mean((1, 2)).tolist()
    p_true = lens.softmax(-1).gather(-1, labels[None, :, None, None].expand(len(streams), -1, lens.shape[2], 1))
    p_true_map = einops.rearrange(p_true[:, :, 1:, 0].mean(1), "s (gh gw) -> s gh gw", gh=grid)

    cls_attn = einops.rearrange(patterns[:, :, :, 0, 1:], "l b h (gh gw) -> l b h gh gw", gh=grid)
    entropy = -(patterns[:, :, :, 0] * patterns[:, :, :, 0].clamp_min(1e-12).log()).sum(-1).mean(1)  # [l h]

    near = far = init_cos = None
    if cfg.positional_embedding_type == "learned":
        sim = position_similarity(model.W_pos[1:])
        near, far = neighbour_vs_distant(sim, grid)
        if cfg.seed is not None:  # the seed rebuilds the initial W_pos: how far did training move it?
            init = ViT(cfg).W_pos.to(model.W_pos.device)
            init_cos = F.cosine_similarity(model.W_pos[1:], init[1:], dim=-1).mean().item()
    pos_ok = None if near is None else bool(near > far)
    lens_ok = bool(abs(cls_acc[-1] - acc) < 1e-6 and cls_acc[-1] > cls_acc[0]) if cfg.pool == "cls" else False
    result = ViTAttentionResult(
        test_accuracy=acc,
        cls_lens_accuracy=cls_acc,
        patch_lens_accuracy=patch_acc,
        rollout_row_sum_max_error=row_err,
        pos_neighbour_cos=near,
        pos_distant_cos=far,
        pos_cos_to_init=init_cos,
        cls_entropy_per_layer_head=entropy.tolist(),
        positions_supported=pos_ok,
        lens_supported=lens_ok,
        source=source,
        seconds=time.time() - start,
        cpu_seconds=time.process_time() - cpu_start,
    )
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        plot_attention(images, labels, cls_attn, rollout, grid, out / "cls_attention_rollout.png")
        if cfg.positional_embedding_type == "learned":
            plot_positions(position_similarity(model.W_pos[1:]), grid, out / "position_similarity.png")
        plot_lens(cls_acc, patch_acc, p_true_map, out / "logit_lens.png")
        (out / "metrics.json").write_text(json.dumps(asdict(result), indent=2))
        write_report(result, model, out)
    return result


def plot_attention(
    images: Tensor, labels: Tensor, cls_attn: Tensor, rollout: Tensor, grid: int, path: Path, n_images: int = 4
) -> None:
    n_layers, _, n_heads = cls_attn.shape[:3]
    cols = 2 + n_layers * n_heads
    fig, axes = plt.subplots(n_images, cols, figsize=(1.3 * cols, 1.4 * n_images), squeeze=False)
    roll = einops.rearrange(rollout[:, 0, 1:], "b (gh gw) -> b gh gw", gh=grid)
    for i in range(n_images):
        panels = [(images[i, 0], f"label {labels[i].item()}")]
        panels += [(cls_attn[layer, i, h], f"L{layer}H{h}") for layer in range(n_layers) for h in range(n_heads)]
        panels += [(roll[i], "rollout")]
        for ax, (img, title) in zip(axes[i], panels):
            ax.imshow(img.cpu().numpy(), cmap="gray" if title.startswith("label") else "viridis")
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fig.suptitle("class-token attention per layer/head over the patch grid, and attention rollout", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_positions(sim: Tensor, grid: int, path: Path) -> None:
    fig, axes = plt.subplots(grid, grid, figsize=(1.2 * grid, 1.2 * grid), squeeze=False)
    for p in range(grid * grid):
        ax = axes[p // grid, p % grid]
        ax.imshow(sim[p].reshape(grid, grid).cpu().numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("cosine similarity of learned position embeddings", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_lens(cls_acc: list[float], patch_acc: list[float], p_true_map: Tensor, path: Path) -> None:
    n = len(cls_acc)
    fig, axes = plt.subplots(1, 1 + n, figsize=(3.5 + 1.6 * n, 2.8))
    axes[0].plot(range(n), cls_acc, marker="o", label="class token")
    axes[0].plot(range(n), patch_acc, marker="s", label="patch tokens (mean)")
    axes[0].set_xticks(range(n), ["embed"] + [f"block {i}" for i in range(n - 1)], fontsize=7)
    axes[0].set_ylabel("logit-lens accuracy")
    axes[0].set_ylim(0, 1.02)
    axes[0].legend(fontsize=7)
    for s in range(n):
        im = axes[1 + s].imshow(p_true_map[s].cpu().numpy(), vmin=0, vmax=1)
        axes[1 + s].set_title("embed" if s == 0 else f"after block {s - 1}", fontsize=8)
        axes[1 + s].axis("off")
    fig.colorbar(im, ax=axes[1:].tolist(), fraction=0.03, label="mean p(true class) per patch")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def write_report(r: ViTAttentionResult, model: ViT, out: Path) -> None:
    lens_rows = "\n".join(
        f"| {'embed' if i == 0 else f'after block {i - 1}'} | {c:.3f} | {p:.3f} |"
        for i, (c, p) in enumerate(zip(r.cls_lens_accuracy, r.patch_lens_accuracy))
    )
    if r.positions_supported is None:
        pos = "not applicable (the model has no learned position embeddings)."
    else:
        pos = (
            f"**{'supported' if r.positions_supported else 'not supported'}**: mean cosine of adjacent patches "
            f"{r.pos_neighbour_cos:.3f} vs distant patches (Manhattan distance >= grid size) {r.pos_distant_cos:.3f}."
        )
        if r.pos_cos_to_init is not None:
            pos += (
                f" Each patch's learned position vector keeps a mean cosine of {r.pos_cos_to_init:.3f} with its random"
                " initial value: training separates positions (which random vectors already do) rather than"
                " arranging them smoothly in 2-D."
            )
    cfg = model.cfg
    (out / "report.md").write_text(f"""# ViT attention, rollout, position embeddings and logit lens (8x8 digits)

Model: {r.source}; d_model={cfg.d_model}, {cfg.n_layers} layers x {cfg.n_heads} heads, patch {cfg.patch_size},
positions {cfg.positional_embedding_type}, pool {cfg.pool}. Test accuracy {r.test_accuracy:.3f} (360 images).

**Claim (a): learned positions recover the 2-D layout** — {pos}

**Claim (b): the class token's logit lens sharpens with depth and is exact at the end** —
**{"supported" if r.lens_supported else "not supported"}**: class-token lens accuracy
{" -> ".join(f"{a:.3f}" for a in r.cls_lens_accuracy)} (model accuracy {r.test_accuracy:.3f}).

| residual stream | class-token lens acc | patch-token lens acc (mean) |
|---|---|---|
{lens_rows}

Attention rollout (Abnar and Zuidema 2020, residual weight 0.5): rows sum to 1 within
{r.rollout_row_sum_max_error:.1e}. Mean entropy (nats) of the class token's attention per layer and head:
{[[round(x, 2) for x in row] for row in r.cls_entropy_per_layer_head]} (uniform over {cfg.n_ctx} tokens:
{torch.log(torch.tensor(float(cfg.n_ctx))).item():.2f}).

Figures: `cls_attention_rollout.png`, `position_similarity.png`, `logit_lens.png`.
Runtime {r.seconds:.1f} s wall, {r.cpu_seconds:.1f} s CPU.
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="if no checkpoint: train 30 steps only (for tests)")
    parser.add_argument("--out", default="runs/vit_attention")
    parser.add_argument("--checkpoint", default="checkpoints/vit_digits")
    args = parser.parse_args()
    torch.set_num_threads(1)
    r = run(checkpoint=args.checkpoint, out=args.out, quick=args.quick)
    print(
        f"acc {r.test_accuracy:.3f}; cls lens {[round(a, 3) for a in r.cls_lens_accuracy]}; positions near/far "
        f"{r.pos_neighbour_cos} / {r.pos_distant_cos}; wrote {args.out} in {r.seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
