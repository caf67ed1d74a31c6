"""Training trajectories: attention patterns recorded during training by `probe.train.callbacks.AttentionTrajectory`
(trajectory.safetensors + trajectory.json), step by step, beside the loss curve from the trainer's metrics.jsonl."""

import streamlit as st

from apps import lib

st.title("Training trajectories")
roots = [lib.runs_root(), lib.checkpoints_root()]
trajs = lib.list_trajectories(roots)
if not trajs:
    st.info(f"No attention trajectories under {roots[0]} or {roots[1]}. Record one while training with "
            "`probe train ... --trajectory-every N` (writes OUT/trajectory/) or the `AttentionTrajectory` callback "
            "of probe.train.")
    st.stop()


def label(path) -> str:
    for root in roots:
        if path.is_relative_to(root):
            return f"{root.name}/{lib.rel(path, root)}"
    return str(path)


@st.cache_resource(show_spinner="reading the trajectory ...")
def load(path: str, stamp: float) -> tuple[dict, dict]:
    from probe.train.callbacks import load_trajectory

    index, tensors = load_trajectory(path)
    return index, {k: v.numpy() for k, v in tensors.items()}


labels = [label(t) for t in trajs]
choice = st.selectbox("Trajectory", labels, key="trajectory", bind="query-params")
path = trajs[labels.index(choice)]
try:
    index, tensors = load(str(path), max(f.stat().st_mtime for f in path.iterdir() if f.is_file()))
except (OSError, ValueError) as e:
    st.error(f"Could not read the trajectory in {path}: {e}")
    st.stop()
steps, hooks = index["steps"], index["hooks"]
if not steps or not hooks:
    st.info(f"{path} holds no records yet.")
    st.stop()
st.caption(f"`{path}`: {len(steps)} records every {index.get('every')} steps, hooks {', '.join(hooks)}.")

cols = st.columns(4)
hook = cols[0].selectbox("Hook", hooks, key="hook", bind="query-params")
data = tensors[hook]  # [record batch head query key]
example = cols[1].selectbox("Example", list(range(data.shape[1])), key="example", bind="query-params")
head = cols[2].selectbox("Head", list(range(data.shape[2])), key="head", bind="query-params")
step = cols[3].select_slider("Step", steps, steps[-1], key="step", bind="query-params")
rec = steps.index(step)


def token_labels(key: str, n: int) -> list[str] | None:
    ids = tensors.get(f"probe.{key}")
    if ids is None or ids.ndim != 2 or ids.shape[1] != n:
        return None
    return [str(int(i)) for i in ids[example]]


q_key, k_key = "tokens", "tokens"
if hook.startswith("encoder."):
    q_key = k_key = "src"
elif hook.startswith("decoder."):
    q_key, k_key = "tgt", ("src" if ".cross_attn." in hook else "tgt")
pattern = data[rec, example, head]
st.plotly_chart(lib.heatmap(pattern, token_labels(k_key, pattern.shape[1]), token_labels(q_key, pattern.shape[0]),
                            f"{hook}, head {head}, step {step}", zmax=1.0), key="pattern")

log = lib.find_metrics_log(path)
series: dict[str, tuple[list, list]] = {}
if log is not None:
    try:
        rows = lib.read_jsonl(log)
    except ValueError as e:
        st.error(str(e))
        rows = []
    train = [r for r in rows if "loss" in r and "event" not in r and isinstance(r["loss"], (int, float))]
    evals = [r for r in rows if "eval_loss" in r]
    if train:
        series["train loss"] = ([r["step"] for r in train], [r["loss"] for r in train])
    if evals:
        series["eval loss"] = ([r["step"] for r in evals], [r["eval_loss"] for r in evals])
    source = f"`{log}`"
if not series:
    known = [(s, x) for s, x in zip(steps, index.get("loss", [])) if x is not None]
    if known:
        series["train loss (at records)"] = ([s for s, _ in known], [x for _, x in known])
    source = "the trajectory's own record of the last logged loss (no metrics.jsonl found)"
if series:
    st.plotly_chart(lib.line(series, "loss", "step", "cross-entropy", mark=step), key="loss")
    st.caption(f"Loss from {source}.")
else:
    st.info("No loss was logged for this run (no metrics.jsonl beside the trajectory).")
