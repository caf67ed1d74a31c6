"""Overview: what the dashboards do and what is on disk under the checkpoint and run roots. Every checkpoint row
opens it in the model explorer (and its run, when it has one); every run row opens it in the runs browser."""

from urllib.parse import quote

import pandas as pd
import streamlit as st

from apps import lib

st.title("probe dashboards")
st.markdown(
    "Look inside small models trained with **probe**: attention, predictions and direct logit attribution, the "
    "logit lens, activation and attribution patching, head ablation and OV / QK circuits of a checkpoint "
    "(*Model explorer*), analysis outputs (*Runs browser*), training curves side by side (*Compare runs*), the "
    "Scan-and-Snap training dynamics (*Scan & Snap replay*) and attention recorded during training (*Training "
    "trajectories*). Pages only read files; nothing trains unless you press a button that says so. Every page "
    "keeps its choices in the URL: copy the address to share a view."
)


def explorer_url(name: str) -> str:
    return f"model_explorer?checkpoint={quote(name)}"


def run_url(name: str) -> str:
    return f"runs_browser?run={quote(name)}"


ckpt_root, runs_root = lib.checkpoints_root(), lib.runs_root()
left, right = st.columns(2)
with left:
    st.subheader("Checkpoints")
    st.caption(f"`{ckpt_root}` (set PROBE_CHECKPOINTS to change), and checkpoints saved inside runs")
    ckpts = lib.all_checkpoints()
    if ckpts:
        rows = []
        for c in ckpts:
            run = lib.run_of_checkpoint(c) if "error" not in c else None
            metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in (c.get("metrics") or {}).items())
            rows.append({"name": c["name"], "open": None if "error" in c else explorer_url(c["name"]),
                         "run": run_url(run) if run else None, "kind": c.get("kind"), "step": c.get("step"),
                         "KB": round(c["size_bytes"] / 1024, 1), "metrics": c.get("error") or metrics})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="checkpoints_table",
                     column_config={"open": st.column_config.LinkColumn("open", display_text="explore"),
                                    "run": st.column_config.LinkColumn("run", display_text=r"runs_browser\?run=(.*)")})
    else:
        st.info(f"No model checkpoints under {ckpt_root}.")
    names = {c["name"] for c in ckpts}
    others = sorted(p.name for p in ckpt_root.iterdir() if p.is_dir() and p.name not in names) \
        if ckpt_root.is_dir() else []
    if others:
        st.caption("Other folders: " + ", ".join(f"`{o}`" for o in others))
with right:
    st.subheader("Runs")
    st.caption(f"`{runs_root}` (set PROBE_RUNS to change)")
    runs = lib.list_runs(runs_root)
    if runs:
        st.dataframe(pd.DataFrame([{"run": lib.rel(r, runs_root), "open": run_url(lib.rel(r, runs_root)),
                                    "files": ", ".join(sorted(f.name for f in r.iterdir() if f.is_file()))}
                                   for r in runs]), hide_index=True, width="stretch", key="runs_table",
                     column_config={"open": st.column_config.LinkColumn("open", display_text="browse")})
    else:
        st.info(f"No analysis runs under {runs_root}. Make one with `python -m analyses.NAME --quick`.")
