"""Overview: what the dashboards do and what is on disk under the checkpoint and run roots."""

import pandas as pd
import streamlit as st

from apps import lib

st.title("probe dashboards")
st.markdown(
    "Look inside small models trained with **probe**: attention patterns, next-token predictions and head "
    "ablations of checkpoints (*Model explorer*), analysis outputs (*Runs browser*), the Scan-and-Snap training "
    "dynamics (*Scan & Snap replay*) and attention patterns recorded during training (*Training trajectories*). "
    "Pages only read files; nothing trains unless you press a button that says so."
)

ckpt_root, runs_root = lib.checkpoints_root(), lib.runs_root()
left, right = st.columns(2)
with left:
    st.subheader("Checkpoints")
    st.caption(f"`{ckpt_root}` (set PROBE_CHECKPOINTS to change)")
    ckpts = lib.list_checkpoints(ckpt_root)
    if ckpts:
        st.dataframe(pd.DataFrame([{"name": c["name"], "kind": c.get("kind"), "step": c.get("step"),
                                    "KB": round(c["size_bytes"] / 1024, 1),
                                    "metrics": ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                         for k, v in (c.get("metrics") or {}).items())}
                                   for c in ckpts]), hide_index=True, width="stretch")
    else:
        st.info(f"No model checkpoints under {ckpt_root}.")
    others = sorted(p.name for p in ckpt_root.iterdir() if p.is_dir() and p.name not in {c["name"] for c in ckpts}) \
        if ckpt_root.is_dir() else []
    if others:
        st.caption("Other folders: " + ", ".join(f"`{o}`" for o in others))
with right:
    st.subheader("Runs")
    st.caption(f"`{runs_root}` (set PROBE_RUNS to change)")
    runs = lib.list_runs(runs_root)
    if runs:
        st.dataframe(pd.DataFrame([{"run": lib.rel(r, runs_root),
                                    "files": ", ".join(sorted(f.name for f in r.iterdir() if f.is_file()))}
                                   for r in runs]), hide_index=True, width="stretch")
    else:
        st.info(f"No analysis runs under {runs_root}. Make one with `python -m analyses.NAME --quick`.")
