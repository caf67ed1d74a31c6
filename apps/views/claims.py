"""Claims: the claims lab's verdict table (runs/claims/metrics.json, written by `python -m analyses.claims`),
filterable by verdict and group, and each claim's figures and study report."""

import json
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from apps import lib

OUTCOMES = ("supported", "refuted", "inconclusive")
IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")  # markdown images: shown with st.image instead (relative links break)

st.title("Claims")
st.caption("What the seed documents assert about Transformers, each statement tested by experiment on small models.")
root = lib.runs_root() / "claims"
index = root / "metrics.json"
if not index.is_file():
    st.info(f"No claims lab results under `{root}`. Run the lab with `make claims` (or `python -m analyses.claims`; "
            "add `--quick` for a pipeline check in seconds per study); it writes runs/claims/report.md and "
            "metrics.json.")
    st.stop()
try:
    data = json.loads(index.read_text())
except json.JSONDecodeError as e:
    st.error(f"{index} is not valid JSON: {e}")
    st.stop()
if not str(data.get("format", "")).endswith("-index") or not isinstance(data.get("claims"), list):
    st.error(f"{index} is not a claims lab index (format {data.get('format')!r}); rerun `python -m analyses.claims`.")
    st.stop()

rows = pd.DataFrame(data["claims"])
if rows.empty:
    st.info("The claims lab index holds no claims yet.")
    st.stop()
rows["group"] = rows["group"] if "group" in rows else "claims"
rows["prediction"] = [f"{c['quantity']} {c['op']} {c['bound']:g}" for c in rows["claim"]]
rows["id"] = [c["id"] for c in rows["claim"]]
rows["statement"] = [c["statement"] for c in rows["claim"]]
rows["source"] = [c["source"] for c in rows["claim"]]

counts = rows["outcome"].value_counts()
for col, outcome in zip(st.columns(len(OUTCOMES) + 1), ("all", *OUTCOMES)):
    col.metric(outcome, int(len(rows) if outcome == "all" else counts.get(outcome, 0)))
if rows["quick"].any():
    st.warning(f"{int(rows.groupby('study')['quick'].first().sum())} of the studies are quick runs: a tiny budget "
               "that tests the pipeline, not the science. Run `make claims` for the full lab.")

left, right = st.columns(2)
verdicts = left.multiselect("Verdict", OUTCOMES, default=list(OUTCOMES), key="verdict")
groups = list(dict.fromkeys(rows["group"]))
chosen_groups = right.multiselect("Group", groups, default=groups, key="group")
shown = rows[rows["outcome"].isin(verdicts) & rows["group"].isin(chosen_groups)]
st.dataframe(shown[["group", "study", "id", "statement", "source", "prediction", "estimate", "low", "high", "n",
                    "outcome", "quick"]].rename(columns={"id": "claim", "outcome": "verdict", "low": "95% low",
                                                         "high": "95% high"}),
             hide_index=True, width="stretch", key="table")
if shown.empty:
    st.info("No claim matches the filters.")
    st.stop()

labels = [f"{r.study.removeprefix('claims.')} / {r.id} ({r.outcome})" for r in shown.itertuples()]
label = st.selectbox("Claim", labels, key="claim")
row = shown.iloc[labels.index(label)]
st.subheader(row["statement"])
interval = "unbounded" if row["low"] is None or pd.isna(row["low"]) else f"[{row['low']:.4g}, {row['high']:.4g}]"
st.markdown(f"**{row['outcome']}**: {row['prediction']} predicted; measured {row['estimate']:.4g}, 95% interval "
            f"{interval}, n = {row['n']}. Source: {row['source']}.")
study_dir = (root / row["report"]).parent
figures = [root / f for f in row["figures"]]
for f in figures:
    if f.is_file():
        st.image(str(f), caption=Path(f).name)
    else:
        st.warning(f"figure {f} is missing")
if not figures:
    st.caption("This study has no figures.")
report = root / row["report"]
with st.expander(f"Report of {row['study']}", expanded=False):
    if report.is_file():
        st.markdown(IMAGE.sub("", report.read_text()))
    else:
        st.warning(f"{report} is missing")
st.caption(f"`{study_dir}`")
