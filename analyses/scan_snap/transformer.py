"""Scan and Snap in an ordinary `probe.Transformer` (one layer, no positional encoding), read through hooks.

Trained on the Scan-and-Snap data (Tian et al. 2023) with SGD (momentum 0.9), W_Q/W_K at eta_Z and the rest at
eta_Y, supervising only the query position. The query position's pattern, summed per key token id, plays c_{l|n}:
scan = its mass on the class's distinct tokens rises and on common tokens falls; snap = its speed of change decays
to ~0 (it freezes); a larger eta_Y/eta_Z should snap earlier into a denser (higher-entropy) pattern.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch

from analyses.scan_snap.common import Result, device, finish, out_dir, verdict
from analyses.scan_snap.sgd import sgd, token_attention
from probe import Transformer, TransformerConfig
from probe.data.scan_snap import ScanSnapData
from probe.models.scan_snap_config import ScanSnapConfig


def train_one(
    cfg: ScanSnapConfig, eta_z: float, eta_y: float, iters: int, batch: int, seed: int, d_model: int, record_every: int
) -> dict:
    dev = device()
    data = ScanSnapData(cfg, dev)
    tcfg = TransformerConfig(
        d_model=d_model,
        n_layers=1,
        n_heads=1,
        attn_only=True,
        d_vocab=cfg.d_vocab,
        n_ctx=cfg.seq_len,
        positional_embedding_type="none",
        seed=seed,
    )
    model = Transformer(tcfg).to(dev)
    opt = sgd(model, eta_z, eta_y)
    gen = torch.Generator(device=dev).manual_seed(1000 + seed)
    eval_tokens, eval_labels = data.sample(256, torch.Generator(device=dev).manual_seed(7))
    cls = eval_labels - cfg.next_offset
    distinct, common = data.mask("distinct"), data.mask("common")
    rec = {"step": [], "distinct_mass": [], "common_mass": [], "distinct_entropy": [], "speed": [], "loss": []}
    prev = None
    for t in range(iters + 1):
        if t % record_every == 0 or t == iters:
            a = token_attention(model, eval_tokens)  # [batch, M]
            per_class = torch.stack([a[cls == f].mean(0) for f in range(data.num_classes)])  # [F, M]
            d = per_class * distinct
            p = d / d.sum(-1, keepdim=True)
            rec["step"].append(t)
            rec["distinct_mass"].append(float(d.sum(-1).mean()))
            rec["common_mass"].append(float((per_class * common).sum(-1).mean()))
            rec["distinct_entropy"].append(float(-(p * p.clamp_min(1e-30).log()).sum(-1).mean()))
            rec["speed"].append(float("nan") if prev is None else float((per_class - prev).abs().sum(-1).mean()))
            prev = per_class
        if t == iters:
            break
        tokens, labels = data.sample(batch, gen)
        target = torch.full_like(tokens, -100)
        target[:, -1] = labels
        loss = model(tokens, labels=target, return_type="loss")
        opt.zero_grad()
        loss.backward()
        opt.step()
        rec["loss"].append(loss.item())
    return rec


def snap_step(rec: dict, frac: float = 0.1) -> int:
    speed = torch.tensor(rec["speed"][1:])
    peak = int(speed.argmax())
    below = (speed[peak:] < frac * speed[peak]).nonzero()
    return rec["step"][1 + peak + int(below[0])] if len(below) else rec["step"][-1]


def run(
    out: str | Path | None = None,
    quick: bool = False,
    iters: int | None = None,
    seeds: int | None = None,
    eta_z: float = 0.02,
    ratios: tuple[float, ...] = (1.0, 5.0),
    d_model: int = 32,
) -> Result:
    out = out_dir("transformer", out)
    iters = iters or (6 if quick else 200)
    seeds = seeds or (1 if quick else 3)
    batch = 16 if quick else 64
    cfg = ScanSnapConfig(num_last=2, num_next_per_last=2, seq_len=16 if quick else 32)
    every = max(1, iters // 30) if not quick else 2
    recs = {
        r: [train_one(cfg, eta_z, eta_z * r, iters, batch, s, d_model, every) for s in range(seeds)] for r in ratios
    }

    def mean(r: float, key: str, i: int) -> float:
        return sum(rec[key][i] for rec in recs[r]) / seeds

    summary = {}
    for r in ratios:
        summary[f"{r:g}"] = {
            "distinct_mass": (mean(r, "distinct_mass", 0), mean(r, "distinct_mass", -1)),
            "common_mass": (mean(r, "common_mass", 0), mean(r, "common_mass", -1)),
            "distinct_entropy": (mean(r, "distinct_entropy", 0), mean(r, "distinct_entropy", -1)),
            "final_speed_over_peak": sum(rec["speed"][-1] / max(rec["speed"][1:]) for rec in recs[r]) / seeds,
            "snap_step": sum(snap_step(rec) for rec in recs[r]) / seeds,
            "final_loss": sum(rec["loss"][-1] for rec in recs[r]) / seeds,
        }
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for r in ratios:
        steps = recs[r][0]["step"]
        for ax, key in zip(axes, ("distinct_mass", "common_mass", "speed")):
            ax.plot(steps, [mean(r, key, i) for i in range(len(steps))], label=f"eta_Y/eta_Z = {r:g}")
            ax.set_title(key.replace("_", " ") + " (query position)")
            ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig_path = out / "transformer_attention.png"
    fig.savefig(fig_path, dpi=100)
    plt.close(fig)
    s = summary
    scan = all(
        v["distinct_mass"][1] > v["distinct_mass"][0] and v["common_mass"][1] < v["common_mass"][0] for v in s.values()
    )
    snap = all(v["final_speed_over_peak"] < 0.2 for v in s.values())
    lo, hi = f"{min(ratios):g}", f"{max(ratios):g}"
    denser = s[hi]["distinct_entropy"][1] > s[lo]["distinct_entropy"][1]
    earlier = s[hi]["snap_step"] <= s[lo]["snap_step"]
    supported = bool(scan and snap)
    metrics = {
        "data": cfg.to_dict(),
        "eta_z": eta_z,
        "ratios": list(ratios),
        "iters": iters,
        "seeds": seeds,
        "batch": batch,
        "d_model": d_model,
        "summary": summary,
        "curves": {
            f"{r:g}": {
                k: [mean(r, k, i) for i in range(len(recs[r][0]["step"]))]
                for k in ("distinct_mass", "common_mass", "distinct_entropy", "speed")
            }
            | {"step": recs[r][0]["step"]}
            for r in ratios
        },
        "scan": scan,
        "snap": snap,
        "denser_at_higher_ratio": denser,
        "earlier_snap_at_higher_ratio": earlier,
    }
    rows = "\n".join(
        f"| {k} | {v['distinct_mass'][0]:.3f} -> {v['distinct_mass'][1]:.3f} | {v['common_mass'][0]:.3f} -> "
        f"{v['common_mass'][1]:.3f} | {v['distinct_entropy'][0]:.3f} -> {v['distinct_entropy'][1]:.3f} | "
        f"{v['final_speed_over_peak']:.3f} | {v['snap_step']:.0f} | {v['final_loss']:.3f} |"
        for k, v in s.items()
    )
    report = f"""# Scan and Snap in an ordinary probe.Transformer

One layer, one head, attention-only, d_model = {d_model}, no positional encoding, LayerNorm; data: num_last =
{cfg.num_last}, {cfg.num_next_per_last} next tokens per query, M = {cfg.d_vocab}, L = {cfg.seq_len}; SGD momentum 0.9
with
W_Q/W_K/b_Q/b_K at eta_Z = {eta_z} and the rest at eta_Y = ratio x eta_Z; loss on the query position only;
{iters} steps, batch {batch}, {seeds} seed(s). Read through `blocks.0.attn.hook_pattern` at the query position,
summed per key token and averaged per class on a fixed batch of 256.

Claims under test: scan (distinct mass up, common mass down) and snap (speed of the pattern at the end < 0.2 x its
peak); and how the ratio changes both (higher ratio: earlier snap, denser final pattern over distinct tokens).

| ratio | distinct mass | common mass | distinct entropy | final speed / peak | snap step | final loss |
|---|---|---|---|---|---|---|
{rows}

Scan in every ratio: {scan}. Snap in every ratio: {snap}. Scan and snap: {verdict(supported)}.
Ratio {hi} vs {lo}: denser final pattern: {denser}; earlier (or equal) snap: {earlier}.

Figure: `transformer_attention.png`.
"""
    return finish("transformer", out, metrics, report, [fig_path], supported)
