"""Runs browser: every analysis output folder under runs/ (nested ones too): report.md, figures and metrics.json."""

import json

import streamlit as st

from apps import lib

st.title("Runs browser")
root = lib.runs_root()
runs = lib.list_runs(root)
if not runs:
    st.info(f"No analysis runs under {root}. Make one with `python -m analyses.NAME --quick` "
            "(each writes runs/NAME/: metrics.json, report.md, figures).")
    st.stop()

names = [lib.rel(r, root) for r in runs]
name = st.selectbox("Run", names, key="run", help=f"folders under {root} with metrics.json, report.md or figures")
run = runs[names.index(name)]
st.caption(f"`{run}`")

report = run / "report.md"
figures = sorted(f for f in run.iterdir() if f.is_file() and f.suffix.lower() in lib.IMAGE_SUFFIXES)
metrics = run / "metrics.json"
tabs = st.tabs(["Report", f"Figures ({len(figures)})", "Metrics", "Files"])
with tabs[0]:
    if report.is_file():
        st.markdown(report.read_text())
    else:
        st.info("This run has no report.md.")
with tabs[1]:
    if figures:
        for f in figures:
            st.image(str(f), caption=f.name)
    else:
        st.info("This run has no figures.")
with tabs[2]:
    if metrics.is_file():
        try:
            data = json.loads(metrics.read_text())
        except json.JSONDecodeError as e:
            st.error(f"{metrics} is not valid JSON: {e}")
        else:
            scalars = {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool)) or v is None} \
                if isinstance(data, dict) else {}
            if scalars:
                st.dataframe([{"metric": k, "value": str(v)} for k, v in scalars.items()], hide_index=True)
            st.json(data, expanded=1)
    log = run / "metrics.jsonl"
    if log.is_file():
        st.caption("metrics.jsonl (the trainer's log)")
        try:
            st.dataframe(lib.read_jsonl(log), hide_index=True)
        except ValueError as e:
            st.error(str(e))
    if not metrics.is_file() and not log.is_file():
        st.info("This run has no metrics.json.")
with tabs[3]:
    st.dataframe([{"file": lib.rel(f, run), "KB": round(f.stat().st_size / 1024, 1)}
                  for f in sorted(run.rglob("*")) if f.is_file()], hide_index=True)
