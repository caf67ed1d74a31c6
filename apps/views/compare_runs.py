"""Compare runs: the loss and eval curves of several training runs overlaid (the trainer's metrics.jsonl under
runs/), on a log scale if you like, smoothed as TensorBoard smooths (a debiased exponential moving average, the raw
curve faint behind it). The runs, metrics and settings live in the URL."""

from pathlib import Path

import streamlit as st

from apps import figures, lib

st.title("Compare runs")
root = lib.runs_root()
logs = {lib.rel(r, root): r / "metrics.jsonl" for r in lib.list_runs(root) if (r / "metrics.jsonl").is_file()}
if not logs:
    st.info(f"No training runs (metrics.jsonl) under {root}. Train one with `probe train --task induction --out "
            "runs/train/induction`, or any `probe.Trainer` with `out_dir` set.")
    st.stop()


@st.cache_data(show_spinner=False, max_entries=64)
def series(path: str, stamp: float) -> dict[str, tuple[list, list]]:
    """Every numeric field of a metrics.jsonl as (steps, values); non-finite-loss events are skipped."""
    out: dict[str, tuple[list, list]] = {}
    for row in lib.read_jsonl(Path(path)):
        if "event" in row or not isinstance(row.get("step"), (int, float)):
            continue
        for k, v in row.items():
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
                xs, ys = out.setdefault(k, ([], []))
                xs.append(row["step"])
                ys.append(v)
    return out


chosen = st.multiselect("Runs", list(logs), default=list(logs)[:2], key="runs", bind="query-params")
if not chosen:
    st.caption("Choose one or more runs.")
    st.stop()
data = {}
for name in chosen:
    try:
        data[name] = series(str(logs[name]), logs[name].stat().st_mtime)
    except ValueError as e:
        st.error(str(e))
fields = sorted({k for d in data.values() for k in d})
default = [f for f in ("loss", "eval_loss") if f in fields] or fields[:1]
metrics = st.multiselect("Metrics", fields, default=default, key="metrics", bind="query-params")
c1, c2 = st.columns(2)
log_y = c1.toggle("Log scale", value=True, key="log", bind="query-params")
smoothing = c2.slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="smoothing", bind="query-params",
                      help="TensorBoard's: weight of the exponential moving average (0: raw)")
for metric in metrics:
    lines = {name: d[metric] for name, d in data.items() if metric in d}
    missing = [name for name in data if metric not in data[name]]
    st.plotly_chart(figures.curves(lines, metric, metric, log_y=log_y, smoothing=smoothing), key=f"curve_{metric}")
    if missing:
        st.caption(f"{metric}: not logged by {', '.join(missing)}")
