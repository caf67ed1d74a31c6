"""JoMA (Tian et al. 2023, arXiv 2310.00535): with a nonlinear MLP the attention entropy first falls (sparse, salient
tokens) and then rises again; with a linear MLP it only falls. Two-layer `probe.Transformer` decoders that differ
only in `act_fn` ("relu" vs "linear"), same data (the text of `probe.data.text`) and seeds, plain SGD; the
first-layer attention entropy is read through `hook_pattern` over training.

The claim as a measurement: rise = final entropy - minimum entropy (after the minimum). Supported when the ReLU
model's rise exceeds `bound` nats and the linear model's rise stays below it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from analyses.scan_snap.common import Result, finish, out_dir, verdict
from analyses.scan_snap.text import train_text


def run(
    out: str | Path | None = None,
    quick: bool = False,
    iters: int | None = None,
    seeds: int | None = None,
    lr: float = 1.0,
    bound: float = 0.05,
    source: str = "builtin",
) -> Result:
    out = out_dir("joma", out)
    iters = iters or (3 if quick else 600)
    seeds = seeds or (1 if quick else 2)
    batch, n_ctx, d_model = (2, 16, 16) if quick else (32, 64, 64)
    every = max(1, iters // 30)
    recs = {
        act: [
            train_text(2, lr, iters, batch, n_ctx, d_model, s, act_fn=act, record_every=every, source=source)
            for s in range(seeds)
        ]
        for act in ("relu", "linear")
    }
    steps = recs["relu"][0]["step"]
    curve = {act: [sum(r["entropy"][0][i] for r in rs) / seeds for i in range(len(steps))] for act, rs in recs.items()}
    stats = {}
    for act, c in curve.items():
        i_min = min(range(len(c)), key=c.__getitem__)
        stats[act] = {
            "start": c[0],
            "min": c[i_min],
            "min_step": steps[i_min],
            "final": c[-1],
            "rise": c[-1] - c[i_min],
            "fall": c[0] - c[i_min],
        }
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for act, c in curve.items():
        ax.plot(steps, c, label=f"MLP act = {act}")
    ax.set_xlabel("SGD step")
    ax.set_ylabel("layer-0 attention entropy (validation)")
    ax.legend()
    fig.tight_layout()
    fig_path = out / "joma_entropy.png"
    fig.savefig(fig_path, dpi=100)
    plt.close(fig)
    relu, lin = stats["relu"], stats["linear"]
    supported = bool(relu["fall"] > bound and relu["rise"] > bound and lin["rise"] < bound)
    metrics = {
        "lr": lr,
        "iters": iters,
        "seeds": seeds,
        "batch": batch,
        "n_ctx": n_ctx,
        "d_model": d_model,
        "bound": bound,
        "source": source,
        "stats": stats,
        "curves": {"step": steps} | curve,
    }
    rows = "\n".join(
        f"| {a} | {s['start']:.3f} | {s['min']:.3f} (step {s['min_step']}) | {s['final']:.3f} | {s['rise']:.3f} |"
        for a, s in stats.items()
    )
    report = f"""# JoMA: attention entropy with a nonlinear vs a linear MLP

Two-layer decoders (2 heads, d_model {d_model}, n_ctx {n_ctx}) identical but for the MLP activation, same data
(`probe.data.text` {source!r}, character level) and seeds ({seeds}), SGD lr {lr:g} without momentum, {iters} steps,
batch {batch}. First-layer attention entropy on a fixed validation batch, averaged over seeds.

Claim under test (JoMA): ReLU: entropy falls then rises (fall and rise > {bound} nats); linear: it only falls
(rise < {bound} nats).

| MLP | start | minimum | final | rise after the minimum |
|---|---|---|---|---|
{rows}

Verdict on the claims: {verdict(supported)} at these (small, CPU) settings.

Figure: `joma_entropy.png`.
"""
    return finish("joma", out, metrics, report, [fig_path], supported)
