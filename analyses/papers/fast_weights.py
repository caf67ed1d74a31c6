"""Linear attention as a fast weight programmer: its forms are one computation, measured.

Reference: Schlag, Irie, Schmidhuber, "Linear Transformers Are Secretly Fast Weight Programmers", ICML 2021 (PMLR
139:9355-9366; arXiv 2102.11174 v3, the ICML version: the first arXiv version carried the earlier title "Linear
Transformers Are Secretly Fast Weight Memory Systems"), as in /work/shared/reference/fast_weights.md. The chunked
forms follow Yang et al. 2024 (the delta rule in WY form). For every feature map (elu+1, identity, DPFP-2, FAVOR+)
and both update rules (sum, delta), on random inputs (one draw per seed) at odd lengths with chunk sizes that do not
divide them, in fp64 and fp32, the parallel and chunked forms are compared with the recurrent form (explicit fast
weights), and the attention-matrix view (Y = A V) with the fast-weight view (y_t = W_t phi(q_t) / den_t), in outputs
and in the gradients of a fixed linear read-out. Tolerances: 1e-9 in fp64, 1e-4 in fp32 (inputs and outputs of order
one). A toy stream then shows what the delta rule changes: with orthonormal keys, writing (k1, v1), (k2, v2),
(k3, v3) and then (k1, v4) leaves v1 + v4 under k1 with the sum rule, and v4 alone with the delta rule (beta = 1).
These are computations without sampling noise: each claim is judged on the range over seeds (method "exact").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from probe.ops.delta_rule import delta_rule, delta_rule_fast_weights, delta_rule_pattern
from probe.ops.feature_maps import apply_feature_map, orthogonal_random_features, sum_normalize
from probe.ops.linear_attention import causal_linear_attention, linear_attention_pattern, sum_rule_fast_weights
from probe.study import Claim, Outcome, Study, grid, judge, main, per_seed

SOURCE = "Schlag, Irie, Schmidhuber, ICML 2021 (arXiv 2102.11174v3)"
TOL = {"float64": 1e-9, "float32": 1e-4}
FORMS = {"forms": ("parallel", "chunked"), "views": ("attention", "fast_weight")}  # compared with: recurrent, attention
FORMS_Q = "largest |difference| in outputs and input gradients, parallel or chunked form vs recurrent form"
VIEWS_Q = "largest |difference| in outputs and input gradients, attention-matrix view vs fast-weight view"
OVER = "over feature maps, rules, lengths and chunk sizes"
CLAIMS = (
    Claim("forms_64", "The parallel and chunked forms compute what the recurrent fast-weight form computes (fp64)",
          f"{SOURCE}: linear attention as a fast weight programmer; Yang et al. 2024", f"{FORMS_Q}, {OVER} (fp64)",
          "<=", TOL["float64"]),
    Claim("forms_32", "The parallel and chunked forms compute what the recurrent fast-weight form computes (fp32)",
          f"{SOURCE}: linear attention as a fast weight programmer; Yang et al. 2024", f"{FORMS_Q}, {OVER} (fp32)",
          "<=", TOL["float32"]),
    Claim("views_64", "The attention-matrix view and the fast-weight view are one computation (fp64)",
          f"{SOURCE}: linear attention as a fast weight programmer", f"{VIEWS_Q}, {OVER} (fp64)", "<=",
          TOL["float64"]),
    Claim("views_32", "The attention-matrix view and the fast-weight view are one computation (fp32)",
          f"{SOURCE}: linear attention as a fast weight programmer", f"{VIEWS_Q}, {OVER} (fp32)", "<=",
          TOL["float32"]),
    Claim("sum_adds", "The sum rule adds a second value to an occupied key: it retrieves v1 + v4",
          f"{SOURCE}: the capacity limitation of the sum rule", "largest |W_4 k1 - (v1 + v4)| (fp64)", "<=", 1e-9),
    Claim("delta_replaces", "The delta rule (beta = 1) replaces the value of an occupied key: it retrieves v4",
          f"{SOURCE}: the delta-rule update", "largest |W_4 k1 - v4| (fp64)", "<=", 1e-9),
)
MAPS = ("elu_plus_one", "identity", "dpfp", "favor_plus")


@dataclass(frozen=True)
class Config:
    maps: tuple[str, ...] = MAPS
    lengths: tuple[int, ...] = (63, 127)
    chunks: tuple[int, ...] = (16, 64)
    seeds: tuple[int, ...] = (0, 1, 2)


def make_inputs(name: str, rule: str, L: int, dtype: torch.dtype, seed: int, d: int = 16):
    """Raw q, k, v, beta-logits [2, 2, L, d] (leaves) and the feature map phi (sum-normalised for the delta rule)."""
    gen = torch.Generator().manual_seed(seed)
    proj = orthogonal_random_features(16, d, gen).to(dtype)
    raw = [torch.randn(2, 2, L, d, generator=gen).to(dtype).requires_grad_() for _ in range(3)]
    raw.append(torch.randn(2, 2, L, generator=gen).to(dtype).requires_grad_())

    def phi(x):
        f = apply_feature_map(name, x * 0.5, nu=2, projection=proj)
        if rule == "delta":
            f = torch.nn.functional.normalize(f, dim=-1) if name == "identity" else sum_normalize(f)
        return f

    return raw, phi


def forward(name: str, rule: str, form: str, raw, phi, chunk: int):
    q, k = phi(raw[0]), phi(raw[1])
    v, beta = raw[2], torch.sigmoid(raw[3])
    normalize = name != "identity"
    if rule == "sum":
        if form == "attention":
            return linear_attention_pattern(q, k, normalize=normalize) @ v
        if form == "fast_weight":
            W = sum_rule_fast_weights(k, v)
            y = torch.einsum("bhpef,bhpf->bhpe", W, q)
            den = torch.einsum("bhpf,bhpf->bhp", torch.cumsum(k, 2), q) + 1e-6
            return y / den[..., None] if normalize else y
        return causal_linear_attention(q, k, v, form=form, normalize=normalize, chunk_size=chunk)
    if form in ("attention", "parallel"):  # the delta rule's parallel form is its attention matrix
        return delta_rule_pattern(q, k, beta) @ v
    if form == "fast_weight":
        return torch.einsum("bhpef,bhpf->bhpe", delta_rule_fast_weights(k, v, beta), q)
    return delta_rule(q, k, v, beta, form=form, chunk_size=chunk)


def measure(feature_map: str, rule: str, dtype: str, L: int, chunk: int, seed: int) -> list[dict]:
    """One row per compared form: its largest |difference| from its reference in outputs and gradients."""
    raw, phi = make_inputs(feature_map, rule, L, getattr(torch, dtype), seed)
    weight = torch.linspace(-1, 1, raw[2].numel(), dtype=raw[2].dtype).view_as(raw[2])
    used = raw if rule == "delta" else raw[:3]  # beta enters the delta rule only

    def out_and_grads(form):
        y = forward(feature_map, rule, form, raw, phi, chunk)
        return y.detach(), torch.autograd.grad((y * weight).sum(), used)

    results = {form: out_and_grads(form) for form in ("recurrent", "parallel", "chunked", "attention", "fast_weight")}
    rows = []
    for check, forms in FORMS.items():
        ref_y, ref_g = results["recurrent" if check == "forms" else "attention"]
        for form in forms if check == "forms" else forms[1:]:
            y, g = results[form]
            out_diff = (y - ref_y).abs().max().item()
            grad_diff = max((a - b).abs().max().item() for a, b in zip(g, ref_g))
            rows.append({"check": check, "form": form, "out_diff": out_diff, "grad_diff": grad_diff,
                         "diff": max(out_diff, grad_diff), "out_scale": ref_y.abs().max().item()})
    return rows


def toy_stream(rule: str, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Write (k1, v1), (k2, v2), (k3, v3), then (k1, v4): W_t [4, d_v, d_k], keys [4, d_k], values [4, d_v].
    seed None: one-hot keys and 0/1 values (the figure); else random orthonormal keys and random values."""
    if seed is None:
        keys = torch.eye(4, dtype=torch.float64)[[0, 1, 2, 0]]
        values = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 1.0, 1.0]], dtype=torch.float64)
    else:
        gen = torch.Generator().manual_seed(seed)
        basis = torch.linalg.qr(torch.randn(4, 4, generator=gen, dtype=torch.float64))[0]
        keys, values = basis[[0, 1, 2, 0]], torch.randn(4, 3, generator=gen, dtype=torch.float64)
    k, v = keys[None, None], values[None, None]
    W = sum_rule_fast_weights(k, v) if rule == "sum" else delta_rule_fast_weights(k, v, torch.ones(1, 1, 4).double())
    return W[0, 0], keys, values


def toy(rule: str, seed: int) -> dict:
    """The retrieval error of W_4 k1 against v1 + v4 (sum rule) or v4 (delta rule)."""
    W, keys, values = toy_stream(rule, seed)
    expected = values[0] + values[3] if rule == "sum" else values[3]
    return {"check": "toy", "diff": (W[-1] @ keys[0] - expected).abs().max().item()}


def experiment(cfg: Config) -> Outcome:
    variants = [{"feature_map": m, "rule": r, "dtype": dt, "L": L, "chunk": c} for m in cfg.maps
                for r in ("sum", "delta") for dt in TOL for L in cfg.lengths for c in cfg.chunks]
    table = grid(measure, variants, cfg.seeds, desc="forms")
    toys = grid(toy, [{"rule": "sum"}, {"rule": "delta"}], cfg.seeds, desc="toy stream", progress=False)
    return Outcome(pd.concat([table, toys.assign(dtype="float64")], ignore_index=True))


def verdicts(table: pd.DataFrame) -> list:
    out = [judge(c, *per_seed(table, "diff", "max", check=c.id.split("_")[0], dtype=f"float{c.id.split('_')[1]}"),
                 method="exact") for c in CLAIMS[:4]]
    return out + [judge(CLAIMS[4], *per_seed(table, "diff", "max", check="toy", rule="sum"), method="exact"),
                  judge(CLAIMS[5], *per_seed(table, "diff", "max", check="toy", rule="delta"), method="exact")]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 5, figsize=(13, 5.2))
    for row, rule in enumerate(("sum", "delta")):
        W, keys, values = toy_stream(rule)
        for t in range(4):
            ax = axes[row, t]
            ax.imshow(W[t].numpy(), cmap="RdBu_r", vmin=-2, vmax=2)
            ax.set_title(f"{rule}: W_{t + 1} after (k{int(keys[t].argmax()) + 1}, {values[t].int().tolist()})",
                         fontsize=8)
            ax.set(xlabel="key dim", ylabel="value dim")
        y = (W[-1] @ keys[0]).tolist()
        axes[row, 4].bar(range(3), y, color="C0" if rule == "sum" else "C1")
        axes[row, 4].set_ylim(0, 1.6)
        axes[row, 4].set_title(f"retrieve W_4 k1 = {[round(a, 2) for a in y]}", fontsize=8)
    fig.suptitle("Fast weights W_t = W_{t-1} + beta (v_t - W_{t-1} k_t) k_t^T (delta) vs + v_t k_t^T (sum)")
    fig.tight_layout()
    paths = [out / "fast_weights.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    t = outcome.table[outcome.table["check"] != "toy"]
    worst = t.groupby(["feature_map", "rule", "dtype"])["diff"].max().clip(lower=1e-20).unstack("dtype")
    ax = worst.plot.bar(logy=True, figsize=(9, 4), rot=30)
    for tol in TOL.values():
        ax.axhline(tol, linestyle=":", color="k", linewidth=0.8)
    ax.set(ylabel="largest |difference| (outputs, gradients)")
    ax.set_title("Forms and views agree (worst over forms, lengths, chunks, seeds; dotted: tolerances)", fontsize=10)
    ax.figure.tight_layout()
    paths.append(out / "equivalence.png")
    ax.figure.savefig(paths[1], dpi=110)
    plt.close(ax.figure)
    return paths


STUDY = Study(
    name="papers.fast_weights", title="Linear attention as a fast weight programmer: its forms agree",
    claims=CLAIMS, config=Config(), quick=Config(maps=("dpfp",), lengths=(21,), chunks=(8,), seeds=(0,)),
    experiment=experiment, verdicts=verdicts, figures=figures, description=__doc__)

if __name__ == "__main__":
    main(STUDY)
