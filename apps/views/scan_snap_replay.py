"""Scan & Snap replay (Tian et al. 2023, arXiv 2305.16380, Figure 4): the shipped trajectory of Z at every SGD
iteration, for eta_Y/eta_Z = 1 and 10, turned into the class-conditional attention c_{l|n} and its entropy over
each class's distinct tokens (`probe.models.scan_snap.class_attention`, `distinct_entropy`). Optionally trains one
small run here (the hooked `ScanSnapModel`, SGD with momentum and separate eta_Z, eta_Y as the authors), with a
progress bar."""

import numpy as np
import streamlit as st
import torch
from plotly.subplots import make_subplots

from apps import lib
from probe.data.scan_snap import ScanSnapData
from probe.models.scan_snap import ScanSnapModel, class_attention, distinct_entropy
from probe.models.scan_snap_config import ScanSnapConfig
from probe.train.scan_snap_sweep import data_generator

st.title("Scan & Snap replay")
st.caption("Tian et al. 2023, *Scan and Snap*: a 1-layer Transformer first attends to common tokens, then scans "
           "towards each class's distinct tokens and snaps to a pattern that is sparser when eta_Y/eta_Z is small.")


def token_names(cfg: ScanSnapConfig) -> list[str]:
    """Column labels of the context tokens: common c*, per-query common p*, distinct d<class>.<j>."""
    out = [f"c{i}" for i in range(cfg.num_common)]
    out += [f"p{m}.{j}" for m in range(cfg.num_last) for j in range(cfg.num_common_per_last)]
    out += [f"d{n}.{j}" for n in range(cfg.num_next) for j in range(cfg.num_distinct_per_next)]
    return out


@st.cache_resource(show_spinner="reading the trajectory ...")
def replay(path: str, stamp: float) -> dict:
    """c_{l|n} [ratio step class token] and the distinct-token entropy [ratio step] of a saved trajectory."""
    from probe.trajectory import load_trajectory

    traj = load_trajectory(path)
    cfg = ScanSnapConfig.from_dict(traj.meta["config"])
    data = ScanSnapData(cfg)
    c = class_attention(traj["Z"].transpose(0, 1), data.cond_prob(), data.query)  # Z: [step ratio M M]
    ent = distinct_entropy(c, data.mask("distinct"))
    common = (c * data.mask("common")).sum(-1).mean(-1)  # [ratio step]: mean over classes
    return {"meta": {**traj.meta, "steps": traj.steps.tolist()}, "cfg": cfg, "c": c.numpy(), "entropy": ent.numpy(),
            "common": common.numpy(), "loss": traj["loss"].T.numpy()}  # loss: [ratio step], NaN at the last step


def heatmaps(cs: dict[str, np.ndarray], cfg: ScanSnapConfig, title: str):
    """One c_{l|n} heat-map per run (rows: classes n, columns: context tokens l), on a shared 0..max colour scale."""
    names = token_names(cfg)
    n_ctx = len(names)
    fig = make_subplots(len(cs), 1, subplot_titles=list(cs), vertical_spacing=0.25)
    zmax = max(float(c[:, :n_ctx].max()) for c in cs.values())
    for i, c in enumerate(cs.values()):
        fig.add_heatmap(z=c[:, :n_ctx], x=names, y=[f"n={k}" for k in range(c.shape[0])], coloraxis="coloraxis",
                        row=i + 1, col=1, hovertemplate="class %{y}<br>token %{x}<br>c = %{z:.4f}<extra></extra>")
    fig.update_layout(title=title, height=170 + 130 * len(cs), margin=dict(l=10, r=10, t=60, b=10),
                      coloraxis={"colorscale": "Viridis", "cmin": 0, "cmax": zmax})
    fig.update_yaxes(autorange="reversed")
    return fig


path = lib.checkpoints_root() / "scan_snap_trajectory"
have = (path / "trajectory.json").is_file()
cfg = None
if not have:
    st.info(f"No Scan-and-Snap trajectory at {path}. Make it with `python -m analyses run "
            f"papers.scan_snap.trajectory --set save_to={path}` (a recording read by probe.load_trajectory), or "
            "train a small run below.")
else:
    r = replay(str(path), max(f.stat().st_mtime for f in path.rglob("*") if f.is_file()))
    meta, cfg, steps = r["meta"], r["cfg"], r["meta"]["steps"]
    ratios = [f"eta_Y/eta_Z = {x:g}" for x in meta["ratios"]]
    st.caption(f"`{path}`: M = {cfg.d_vocab}, {cfg.num_next} classes, eta_Z = {meta['eta_z']}, batch {meta['batch']}, "
               f"{meta['iters']} iterations, made by `{meta.get('command')}`.")
    i = st.slider("Iteration", 0, len(steps) - 1, 0, key="iteration", bind="query-params")
    step = steps[i]
    fig = heatmaps({name: r["c"][k, i] for k, name in enumerate(ratios)}, cfg, f"c_(l|n) at iteration {step}")
    st.plotly_chart(fig, key="c_heatmap")
    cols = st.columns(len(ratios))
    for k, name in enumerate(ratios):
        cols[k].metric(f"{name}: distinct-token entropy", f"{r['entropy'][k, i]:.3f} nats",
                       help=f"common-token mass {r['common'][k, i]:.3f}")
    left, right = st.columns(2)
    left.plotly_chart(lib.line({name: (steps, r["entropy"][k].tolist()) for k, name in enumerate(ratios)},
                               "entropy of c_(l|n) over distinct tokens", "iteration", "nats", mark=step),
                      key="entropy")
    right.plotly_chart(lib.line({name: (steps[:-1], r["loss"][k, :-1].tolist()) for k, name in enumerate(ratios)},
                                "training loss", "iteration", "cross-entropy", mark=step), key="loss")

st.subheader("Train a small run")
with st.form("train"):
    st.caption("Same data model and zero init as the trajectory; SGD (momentum 0.9) on the hooked ScanSnapModel. "
               "Budget: at most 200 iterations of batch 64 (a few seconds on a CPU).")
    c1, c2, c3 = st.columns(3)
    ratio = c1.select_slider("eta_Y / eta_Z", [0.5, 1.0, 2.0, 5.0, 10.0, 20.0], 5.0, key="train_ratio")
    n_iter = c2.slider("iterations", 10, 200, 50, 10, key="train_iters")
    eta_z = c3.select_slider("eta_Z", [0.1, 0.5, 1.0, 2.0], 1.0, key="train_eta_z")
    clicked = st.form_submit_button("Train")
if clicked:
    run_cfg = cfg or ScanSnapConfig(num_last=2, num_next_per_last=1, num_common_per_last=0, init="zero", seed=2)
    model, data, gen = ScanSnapModel(run_cfg), ScanSnapData(run_cfg), data_generator(run_cfg.seed)
    lrs = {"Z": eta_z, "Y": eta_z * ratio}
    bufs = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    bar = st.progress(0.0, text="training ...")
    zs, losses = [model.Z.detach().clone()], []
    for t in range(n_iter):
        tokens, labels = data.sample(64, gen)
        loss = model(tokens, labels, return_type="loss")
        grads = torch.autograd.grad(loss, [model.Z, model.Y])
        with torch.no_grad():  # SGD with momentum 0.9 (torch.optim.SGD's update, without its slow first import)
            for (name, p), g in zip([("Z", model.Z), ("Y", model.Y)], grads):
                bufs[name].mul_(0.9).add_(g)
                p -= lrs[name] * bufs[name]
        zs.append(model.Z.detach().clone())
        losses.append(loss.item())
        bar.progress((t + 1) / n_iter, text=f"iteration {t + 1}/{n_iter}, loss {loss.item():.4f}")
    c = class_attention(torch.stack(zs), data.cond_prob(), data.query)
    own_runs = st.session_state.setdefault("own_runs", [])
    own_runs.append({"name": f"run {len(own_runs) + 1}: eta_Y/eta_Z = {ratio:g}, eta_Z = {eta_z:g}, {n_iter} it",
                     "ratio": ratio, "eta_z": eta_z, "cfg": run_cfg, "c": c.numpy(),
                     "entropy": distinct_entropy(c, data.mask("distinct")).numpy(), "loss": losses})
    st.session_state["own_compare"] = [r["name"] for r in own_runs[-2:]]  # the new run beside the previous one
own_runs = st.session_state.get("own_runs", [])
if own_runs:
    st.subheader("Your runs")
    st.caption("Every run you train here is kept (for this browser session) and can be compared with the others.")
    names = [r["name"] for r in own_runs]
    chosen = st.multiselect("Compare", names, default=names[-2:] if "own_compare" not in st.session_state else None,
                            key="own_compare")
    runs = [r for r in own_runs if r["name"] in chosen]
    if st.button("Forget my runs", key="own_clear"):
        st.session_state["own_runs"] = []
        st.rerun()
    if runs:
        n = min(len(r["loss"]) for r in runs)
        j = st.slider("Iteration of your runs", 0, n, n, key="own_iteration")
        cfg0 = runs[0]["cfg"]
        st.plotly_chart(heatmaps({r["name"]: r["c"][j] for r in runs}, cfg0, f"c_(l|n) at iteration {j}"),
                        key="own_heatmap")
        left, right = st.columns(2)
        left.plotly_chart(lib.line({r["name"]: (list(range(len(r["entropy"]))), r["entropy"].tolist()) for r in runs},
                                   "entropy of c_(l|n) over distinct tokens", "iteration", "nats", mark=j),
                          key="own_entropy")
        right.plotly_chart(lib.line({r["name"]: (list(range(1, len(r["loss"]) + 1)), r["loss"]) for r in runs},
                                    "training loss", "iteration", "cross-entropy", mark=j), key="own_loss")
