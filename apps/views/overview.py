"""Overview: what the dashboards do and what is on disk under the checkpoint and run roots. Every checkpoint row
links to it in the model explorer (and to its run, when it has one); every run row links to it in the runs
browser. The tables are markdown, so the links are ordinary links (they open the page with its query parameters)."""

from urllib.parse import quote

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


def cell(value) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


ckpt_root, runs_root = lib.checkpoints_root(), lib.runs_root()
st.subheader("Checkpoints")
st.caption(f"`{ckpt_root}` (set PROBE_CHECKPOINTS to change), and checkpoints saved inside runs")
ckpts = lib.all_checkpoints()
if ckpts:
    rows = []
    for c in ckpts:
        if "error" in c:
            rows.append([cell(c["name"]), "", "", "", f"{c['size_bytes'] / 1024:.1f}", cell(c["error"])])
            continue
        run = lib.run_of_checkpoint(c)
        metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in (c.get("metrics") or {}).items())
        rows.append([f"[{cell(c['name'])}]({explorer_url(c['name'])})", cell(c.get("kind")), cell(c.get("step")),
                     f"[{cell(run)}]({run_url(run)})" if run else "", f"{c['size_bytes'] / 1024:.1f}", cell(metrics)])
    st.markdown(table(["checkpoint (opens the model explorer)", "kind", "step", "run", "KB", "metrics"], rows))
else:
    st.info(f"No model checkpoints under {ckpt_root}.")
names = {c["name"] for c in ckpts}
others = sorted(p.name for p in ckpt_root.iterdir() if p.is_dir() and p.name not in names) \
    if ckpt_root.is_dir() else []
if others:
    st.caption("Other folders: " + ", ".join(f"`{o}`" for o in others))

st.subheader("Runs")
st.caption(f"`{runs_root}` (set PROBE_RUNS to change)")
runs = lib.list_runs(runs_root)
if runs:
    rows = [[f"[{cell(lib.rel(r, runs_root))}]({run_url(lib.rel(r, runs_root))})",
             cell(", ".join(sorted(f.name for f in r.iterdir() if f.is_file())))] for r in runs]
    st.markdown(table(["run (opens the runs browser)", "files"], rows))
else:
    st.info(f"No analysis runs under {runs_root}. Make one with `python -m analyses.NAME --quick`.")
