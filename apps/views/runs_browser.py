"""Runs browser: every analysis or training output folder under runs/ (nested ones too): report.md with its figures
and links resolved, every figure the run has or its report shows, metrics, files (each one viewable), and the
checkpoints the run made (opened in the model explorer). The run, tab and file live in the URL."""

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from apps import figures, lib, report

st.title("Runs browser")
root = lib.runs_root()
runs = lib.list_runs(root)
if not runs:
    st.info(f"No analysis runs under {root}. Make one with `python -m analyses.NAME --quick` "
            "(each writes runs/NAME/: metrics.json, report.md, figures).")
    st.stop()

names = [lib.rel(r, root) for r in runs]
name = st.selectbox("Run", names, key="run", bind="query-params",
                    help=f"folders under {root} with metrics.json, metrics.jsonl, report.md or figures")
run = runs[names.index(name)]
st.caption(f"`{run}`")
ckpts = lib.checkpoints_of_run(name)
for c in ckpts:
    st.page_link("views/model_explorer.py", label=f"Checkpoint {c}: open it in the model explorer",
                 query_params={"checkpoint": c}, icon=":material/visibility:")
log = run / "metrics.jsonl"
if log.is_file():
    st.page_link("views/compare_runs.py", label="Plot this run's curves (and compare it with others)",
                 query_params={"runs": [name]}, icon=":material/monitoring:")


def show_images(images: list) -> None:
    ok = [(str(p), alt or p.name) for p, alt, _ in images if p is not None]
    for p, alt, target in images:
        if p is None:
            st.warning(f"Figure {alt or target!r} not found: `{target}` (relative to the report's folder)")
    for col, (p, caption) in zip(st.columns(len(ok)) if len(ok) > 1 else [st], ok):
        col.image(p, caption=caption)


def show_markdown(text: str, base: Path) -> None:
    for kind, value in report.blocks(text, base, root, runs):
        if kind == "md":
            st.markdown(value)
        else:
            show_images(value)


report_file = run / "report.md"
text = report_file.read_text() if report_file.is_file() else ""
own = sorted(f for f in run.iterdir() if f.is_file() and f.suffix.lower() in lib.IMAGE_SUFFIXES)
shown = own + [f for f in report.referenced_figures(text, run) if f not in {o.resolve() for o in own}]
files = sorted(f for f in run.rglob("*") if f.is_file())
st.caption(f"{len(shown)} figures ({len(own)} in the folder, the rest shown by its report), {len(files)} files")
tabs = st.tabs(["Report", "Figures", "Metrics", "Files"], key="tab", bind="query-params")
with tabs[0]:
    if text:
        show_markdown(text, run)
    else:
        st.info("This run has no report.md.")
with tabs[1]:
    if shown:
        for f in shown:
            st.image(str(f), caption=lib.rel(f, root) if f.parent != run else f.name)
    else:
        st.info("This run has no figures.")
with tabs[2]:
    metrics = run / "metrics.json"
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
    if log.is_file():
        st.caption("metrics.jsonl (the trainer's log)")
        try:
            rows = lib.read_jsonl(log)
        except ValueError as e:
            st.error(str(e))
        else:
            st.dataframe(rows, hide_index=True)
            train = [r for r in rows if isinstance(r.get("loss"), (int, float)) and "event" not in r]
            evals = [r for r in rows if isinstance(r.get("eval_loss"), (int, float))]
            series = {"train loss": ([r["step"] for r in train], [r["loss"] for r in train])} if train else {}
            if evals:
                series["eval loss"] = ([r["step"] for r in evals], [r["eval_loss"] for r in evals])
            if series:
                st.plotly_chart(figures.curves(series, "loss", "cross-entropy"), key="run_loss")
    if not metrics.is_file() and not log.is_file():
        st.info("This run has no metrics.json.")
with tabs[3]:
    st.dataframe([{"file": lib.rel(f, run), "KB": round(f.stat().st_size / 1024, 1)} for f in files],
                 hide_index=True)
    rels = [lib.rel(f, run) for f in files]
    chosen = st.selectbox("Show file", rels, index=None, key="file", bind="query-params",
                          placeholder="choose a file to view")
    if chosen is not None:
        f = run / chosen
        suffix = f.suffix.lower()
        try:
            if suffix in lib.IMAGE_SUFFIXES:
                st.image(str(f), caption=chosen)
            elif suffix == ".md":
                show_markdown(f.read_text(), f.parent)
            elif suffix == ".json":
                st.json(json.loads(f.read_text()), expanded=1)
            elif suffix == ".jsonl":
                st.dataframe(lib.read_jsonl(f), hide_index=True)
            elif suffix == ".csv":
                st.dataframe(pd.read_csv(f), hide_index=True)
            elif f.stat().st_size < 1_000_000 and suffix in (".txt", ".log", ".py", ".yaml", ".yml", ".toml", ""):
                st.code(f.read_text(), language=None)
            else:
                st.caption(f"{chosen}: {f.stat().st_size / 1024:.1f} KB (binary; not shown)")
        except (ValueError, UnicodeDecodeError) as e:
            st.error(f"Could not show {chosen}: {e}")
