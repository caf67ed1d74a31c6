"""Training trajectories: replay any recording made during training (`probe.train.recorder.Recorder` or
`probe.trajectory.TrajectoryWriter`, read with `probe.load_trajectory`), step by step. One step slider moves every
view together: the loss and other curves (a marker at the step, log scale if you like), the attention patterns of
the probe batch with token labels, the head-score maps, and whatever else the run recorded (a Fourier spectrum, a
loss by position, ...), by the shape of each measure rather than its name. A second recording can be shown beside
the first, at the same step (or its last record before it). Choices live in the URL."""

from pathlib import Path

import numpy as np
import streamlit as st

from apps import figures, lib, replay

st.title("Training trajectories")
roots = [lib.runs_root(), lib.checkpoints_root()]
found = lib.list_trajectories(roots)
if not found:
    st.info(f"No recordings under {roots[0]} or {roots[1]}. Record one while training with the `Recorder` "
            "callback of probe.train (or `probe train ... --trajectory-every N`).")
    st.stop()


def label(path: Path) -> str:
    for root in roots:
        if path.is_relative_to(root):
            return f"{root.name}/{lib.rel(path, root)}"
    return str(path)


def stamp(path: Path) -> float:
    files = [path / "trajectory.json", *(path / "shards").glob("*.safetensors")]
    return max((f.stat().st_mtime for f in files if f.is_file()), default=0.0)


@st.cache_resource(show_spinner="reading the recording ...", max_entries=16)
def load(path: str, stamp: float):
    from probe import load_trajectory

    return load_trajectory(path)


def measure(traj, name: str) -> np.ndarray:
    if name == replay.TOTAL_NORM:
        return replay.total_norm([measure(traj, n) for n in traj.names if n.startswith(replay.WEIGHT_NORMS)])
    return traj[name].float().numpy()


def token_labels(traj, key: str, example: int, n: int) -> list[str] | None:
    names = (traj.meta.get("probe_token_labels") or {}).get(key)
    if names and len(names) > example and len(names[example]) == n:
        return [str(t) for t in names[example]]
    ids = traj.probe.get(key)
    if ids is not None and ids.ndim == 2 and ids.shape[1] == n:
        return [str(int(i)) for i in ids[example]]
    return None


labels = {label(p): p for p in found}
choice = st.selectbox("Recording", list(labels), key="trajectory", bind="query-params")
other = st.selectbox("Side by side with", ["(none)", *[n for n in labels if n != choice]], key="compare",
                     bind="query-params")
runs = {}
for name in [choice] + ([other] if other != "(none)" else []):
    path = labels[name]
    try:
        runs[name] = load(str(path), stamp(path))
    except (OSError, ValueError, RuntimeError) as e:
        st.error(f"Could not read the recording in {path}: {e}")
        st.stop()
main = runs[choice]
steps = [int(s) for s in main.steps]
if not steps:
    st.info(f"{labels[choice]} holds no records yet.")
    st.stop()
meta = main.meta
st.caption(f"`{labels[choice]}`: {len(steps)} records, steps {steps[0]} to {steps[-1]}; measures: "
           f"{', '.join(n for n in main.names if not n.startswith(replay.WEIGHT_NORMS))}"
           + (f" and {sum(n.startswith(replay.WEIGHT_NORMS) for n in main.names)} weight norms"
              if any(n.startswith(replay.WEIGHT_NORMS) for n in main.names) else "") + ".")

step = st.select_slider("Step", steps, steps[-1], key="step", bind="query-params")
at = {name: replay.nearest(t.steps, step) for name, t in runs.items()}
if len(runs) > 1:
    shown = ", ".join(f"{name} at step {int(t.steps[at[name]])}" for name, t in runs.items())
    st.caption(f"Shown: {shown} (the last record at or before the chosen step).")
kinds = {name: replay.classify({n: t.measures[n]["shape"] for n in t.names}) for name, t in runs.items()}
m = kinds[choice]

# ---- curves -----------------------------------------------------------------------------------------------------
st.subheader("Curves")
c1, c2 = st.columns([3, 1])
scalars = sorted(set().union(*(k.scalars for k in kinds.values())), key=lambda n: (n.startswith("weight"), n))
curves = c1.multiselect("Measures", scalars, default=replay.default_curves(scalars), key="curves",
                        bind="query-params")
log_y = c2.toggle("Log scale", value=True, key="log", bind="query-params")
grid = st.columns(2) if len(curves) > 1 else [st.container()]
for i, name in enumerate(curves):
    series = {run: (t.steps.tolist(), measure(t, name).tolist()) for run, t in runs.items()
              if name in kinds[run].scalars}
    grid[i % len(grid)].plotly_chart(figures.curves(series, name, name, log_y=log_y, mark=step, height=280),
                                     key=f"curve_{name}")


def columns() -> list:
    return st.columns(len(runs)) if len(runs) > 1 else [st.container()]


# ---- attention --------------------------------------------------------------------------------------------------
patterns = [h for h in m.patterns if all(h in k.patterns for k in kinds.values())]
if patterns:
    st.subheader("Attention patterns on the probe batch")
    data = measure(main, patterns[0])  # [record batch head query key]
    c1, c2, c3 = st.columns(3)
    hook = c1.selectbox("Hook", patterns, key="hook", bind="query-params")
    example = c2.selectbox("Example", list(range(data.shape[1])), key="example", bind="query-params")
    head = c3.selectbox("Head", list(range(data.shape[2])), key="head", bind="query-params")
    q_key, k_key = replay.pattern_inputs(hook)
    for col, (run, t) in zip(columns(), runs.items()):
        pattern = measure(t, hook)[at[run], min(example, t[hook].shape[1] - 1), head]
        col.plotly_chart(lib.heatmap(pattern, token_labels(t, k_key, example, pattern.shape[1]),
                                     token_labels(t, q_key, example, pattern.shape[0]),
                                     f"{run}: {hook}, head {head}, step {int(t.steps[at[run]])}", zmax=1.0,
                                     height=380), key=f"pattern_{run}")

# ---- head scores ------------------------------------------------------------------------------------------------
if m.head_scores:
    st.subheader("Head scores")
    st.caption("TransformerLens' head detectors on the probe batch, per layer and head, at the step; below, each "
               "kind's best head over training.")
    for col, (run, t) in zip(columns(), runs.items()):
        names = [n for n in m.head_scores if n in kinds[run].head_scores]
        maps = np.stack([measure(t, n)[at[run]] for n in names])  # [kind layer head]
        col.plotly_chart(figures.image_grid(maps, [n.removeprefix(replay.HEAD_SCORES) for n in names],
                                            f"{run}: head scores at step {int(t.steps[at[run]])}", cols=3,
                                            zmax=1.0, side=220), key=f"head_scores_{run}")
        best = {n.removeprefix(replay.HEAD_SCORES): (t.steps.tolist(), measure(t, n).reshape(len(t.steps), -1)
                                                     .max(1).tolist()) for n in names}
        col.plotly_chart(figures.curves(best, f"{run}: best head's score", "score", mark=step, height=280),
                         key=f"best_heads_{run}")

# ---- everything else ----------------------------------------------------------------------------------------------
others = [n for n in m.vectors + m.matrices]
if others:
    st.subheader("Other measures")
    name = st.selectbox("Measure", others, key="measure", bind="query-params")
    shape = main.measures[name]["shape"]
    index: tuple[int, ...] = ()
    if len(shape) > 2:  # slice the leading dimensions down to a matrix
        cols = st.columns(len(shape) - 2)
        index = tuple(cols[i].selectbox(f"index {i} (of {shape[i]})", list(range(shape[i])), key=f"index_{i}")
                      for i in range(len(shape) - 2))
    for col, (run, t) in zip(columns(), runs.items()):
        if name not in t.names:
            col.info(f"{run} did not record {name}.")
            continue
        values = measure(t, name)
        now = int(t.steps[at[run]])
        if values.ndim == 2:  # a vector per record: its profile at the step and its history
            col.plotly_chart(figures.bar([str(i) for i in range(values.shape[1])], values[at[run]],
                                         f"{run}: {name} at step {now}", name, height=300), key=f"profile_{run}")
            history = np.log10(np.clip(values, 1e-12, None)) if log_y and (values > 0).all() else values
            fig = lib.heatmap(history, [str(i) for i in range(values.shape[1])], [str(s) for s in t.steps.tolist()],
                              f"{run}: {name} over training" + (" (log10)" if history is not values else ""),
                              xlabel="index", ylabel="step", zmin=None, height=360, distinct=False)
            fig.add_shape(type="line", xref="paper", x0=0, x1=1, yref="y", y0=str(now), y1=str(now),
                          line=dict(color="red", dash="dash"))
            col.plotly_chart(fig, key=f"history_{run}")
        else:
            mat = values[(at[run], *index)]
            col.plotly_chart(lib.heatmap(mat, title=f"{run}: {name}{list(index) if index else ''} at step {now}",
                                         xlabel="", ylabel="", zmin=None, distinct=False), key=f"matrix_{run}")
