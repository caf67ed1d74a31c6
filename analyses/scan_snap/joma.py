"""JoMA (Tian et al. 2023, arXiv 2310.00535): with a nonlinear MLP the attention entropy first falls (sparse, salient
tokens) and then rises again (denser, less salient tokens join); with a linear MLP it only falls. As in JoMA's
Wikitext experiments: one-layer `probe.Transformer` decoders (attention then MLP, the block JoMA integrates) that
differ only in `act_fn` ("relu" vs "linear"), same text (`probe.data.text`), seeds and SGD (momentum, clipped
gradients); the attention entropy is read through `hook_pattern` on a fixed validation batch over training.

The claim as a measurement on the seed-mean curve: fall = start - min, rise = end - min with end the mean of the last
`tail` records (after the minimum by construction). Supported when the ReLU model's fall and rise both exceed `bound`
nats and the linear model's rise stays below it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from tqdm import tqdm

from analyses.scan_snap.common import Result, finish, out_dir, verdict
from analyses.scan_snap.text import first_nonfinite, train_text

ACTS = ("relu", "linear")


def fall_rise(curve: list[float], tail: int) -> dict:
    """start, min (and its record index), end (mean of the last `tail` records), fall = start - min and
    rise = end - min."""
    i_min = min(range(len(curve)), key=curve.__getitem__)
    end = sum(curve[-tail:]) / tail
    return {
        "start": curve[0],
        "min": curve[i_min],
        "min_index": i_min,
        "end": end,
        "fall": curve[0] - curve[i_min],
        "rise": end - curve[i_min],
    }


def run(
    out: str | Path | None = None,
    quick: bool = False,
    iters: int | None = None,
    seeds: int | None = None,
    lr: float = 1.0,
    momentum: float = 0.9,
    clip: float | None = 1.0,
    n_layers: int = 1,
    bound: float = 0.1,
    tail: int = 3,
    source: str = "builtin",
) -> Result:
    out = out_dir("joma", out)
    iters = iters or (4 if quick else 2000)
    seeds = seeds or (1 if quick else 3)
    batch, n_ctx, d_model = (2, 16, 16) if quick else (32, 32, 32)
    every = max(1, iters // 20)
    jobs = [(act, s) for act in ACTS for s in range(seeds)]
    recs: dict[str, list[dict]] = {act: [] for act in ACTS}
    for act, s in tqdm(jobs, desc="scan_snap joma", disable=quick):
        recs[act].append(
            train_text(
                n_layers,
                lr,
                iters,
                batch,
                n_ctx,
                d_model,
                s,
                act_fn=act,
                record_every=every,
                source=source,
                momentum=momentum,
                clip=clip,
            )
        )
    steps = recs["relu"][0]["step"]
    tail = min(tail, len(steps))
    curve = {act: [sum(r["entropy"][0][i] for r in rs) / seeds for i in range(len(steps))] for act, rs in recs.items()}
    stats = {act: fall_rise(c, tail) | {"min_step": steps[fall_rise(c, tail)["min_index"]]} for act, c in curve.items()}
    per_seed = {act: [fall_rise(r["entropy"][0], tail) for r in rs] for act, rs in recs.items()}
    bad = {f"{act}_seed{s}": first_nonfinite(r) for act, rs in recs.items() for s, r in enumerate(rs)}
    diverged = {k: t for k, t in bad.items() if t is not None}
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for act, c in curve.items():
        ax.plot(steps, c, label=f"MLP act = {act} (mean of {seeds} seeds)")
    ax.set_xlabel("SGD step")
    ax.set_ylabel("layer-0 attention entropy (validation)")
    ax.legend()
    fig.tight_layout()
    fig_path = out / "joma_entropy.png"
    fig.savefig(fig_path, dpi=100)
    plt.close(fig)
    relu, lin = stats["relu"], stats["linear"]
    supported = bool(relu["fall"] > bound and relu["rise"] > bound and lin["rise"] < bound and not diverged)
    metrics = {
        "lr": lr,
        "momentum": momentum,
        "clip": clip,
        "n_layers": n_layers,
        "iters": iters,
        "seeds": seeds,
        "batch": batch,
        "n_ctx": n_ctx,
        "d_model": d_model,
        "bound": bound,
        "tail": tail,
        "source": source,
        "stats": stats,
        "per_seed": per_seed,
        "diverged": diverged,
        "val_loss": {act: [r["val_loss"] for r in rs] for act, rs in recs.items()},
        "curves": {"step": steps} | curve,
    }
    rows = "\n".join(
        f"| {a} | {s['start']:.3f} | {s['min']:.3f} (step {s['min_step']}) | {s['end']:.3f} | {s['fall']:.3f} | "
        f"{s['rise']:.3f} | {', '.join(format(p['rise'], '.3f') for p in per_seed[a])} |"
        for a, s in stats.items()
    )
    nan_line = (
        f"**Diverged (NaN/inf) runs: {diverged}**; they count against the claim."
        if diverged
        else "No run produced NaN or inf."
    )

    def above(act: str) -> int:
        return sum(p["rise"] > bound for p in per_seed[act])

    report = f"""# JoMA: attention entropy with a nonlinear vs a linear MLP

{n_layers}-layer decoders (2 heads, d_model {d_model}, n_ctx {n_ctx}, learned positions, pre-LN, attention then MLP)
identical but for the MLP activation, same data (`probe.data.text` {source!r}, character level) and seeds
(0..{seeds - 1}); SGD lr {lr:g}, momentum {momentum:g}, gradient norm clipped at {clip}, {iters} steps, batch {batch}.
Layer-0 attention entropy (nats) on a fixed validation batch every {every} steps, averaged over seeds.

Claim under test (JoMA): ReLU: entropy falls then rises (fall = start - min and rise = end - min both > {bound:g}
nats, end = mean of the last {tail} records); linear: it only falls (rise < {bound:g} nats).

| MLP | start | minimum | end | fall | rise | rise per seed |
|---|---|---|---|---|---|---|
{rows}

{nan_line}

Seeds whose own rise exceeds {bound:g}: {above("relu")}/{seeds} (ReLU, want all), {above("linear")}/{seeds}
(linear, want none); the verdict is on the seed mean. Verdict on the claim: {verdict(supported)} at these (small,
CPU) settings.

Figure: `joma_entropy.png`.
"""
    return finish("joma", out, metrics, report, [fig_path], supported)
