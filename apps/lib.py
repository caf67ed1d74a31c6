"""Shared helpers of the dashboards: where checkpoints and runs live, cached loading, attention plots.

Roots come from the environment so tests (and users) can point the app elsewhere:
`PROBE_CHECKPOINTS` (default `checkpoints/` at the repository root) and `PROBE_RUNS` (default `runs/`).
Everything that loads a model goes through `load_model`, which wraps `probe.load` in `st.cache_resource`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

REPO = Path(__file__).resolve().parents[1]
DEMO = "demo: untrained decoder (random init)"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg")
RUN_FILES = ("metrics.json", "metrics.jsonl", "report.md")


def checkpoints_root() -> Path:
    return Path(os.environ.get("PROBE_CHECKPOINTS", REPO / "checkpoints"))


def runs_root() -> Path:
    return Path(os.environ.get("PROBE_RUNS", REPO / "runs"))


def rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root)) or "."
    except ValueError:
        return str(path)


# ---- discovery ----------------------------------------------------------------------------------------------------
def list_checkpoints(root: Path | None = None) -> list[dict[str, Any]]:
    """Model checkpoints (config.json + model.safetensors) under `root`, as `probe.list_checkpoints` describes them."""
    from probe.checkpoint import list_checkpoints

    root = root if root is not None else checkpoints_root()
    return list_checkpoints(root) if Path(root).is_dir() else []


def list_runs(root: Path | None = None) -> list[Path]:
    """Every directory under `root` (any depth) holding metrics.json, metrics.jsonl, report.md or a figure."""
    root = root if root is not None else runs_root()
    if not root.is_dir():
        return []
    found = set()
    for f in root.rglob("*"):
        if any(p.startswith(".") for p in f.relative_to(root).parts):
            continue
        if f.is_file() and (f.name in RUN_FILES or f.suffix.lower() in IMAGE_SUFFIXES):
            found.add(f.parent)
    return sorted(found)


def list_trajectories(roots: list[Path] | None = None) -> list[Path]:
    """Recording directories (trajectory.json, written by `probe.train.recorder.Recorder` or
    `probe.trajectory.TrajectoryWriter`)."""
    roots = roots if roots is not None else [runs_root(), checkpoints_root()]
    out = []
    for root in roots:
        if root.is_dir():
            out += sorted(f.parent for f in root.rglob("trajectory.json"))
    return out


def find_metrics_log(traj_dir: Path) -> Path | None:
    """The trainer's JSONL log of a run: `OUT/metrics.jsonl` beside `OUT/trajectory/` (as `probe train` writes),
    or inside the trajectory directory."""
    for cand in (traj_dir / "metrics.jsonl", traj_dir.parent / "metrics.jsonl"):
        if cand.is_file():
            return cand
    return None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for i, line in enumerate(path.read_text().splitlines()):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} line {i + 1} is not valid JSON: {e}") from e
    return rows


# ---- models -------------------------------------------------------------------------------------------------------
def _stamp(path: Path) -> float:
    return max((f.stat().st_mtime for f in path.iterdir() if f.is_file()), default=0.0)


@st.cache_resource(show_spinner="loading checkpoint ...")
def _load(path: str, stamp: float) -> Any:
    import probe

    return probe.load(path)


@st.cache_resource
def demo_model() -> Any:
    """A freshly initialised small decoder: something to look at before any Transformer checkpoint exists."""
    import probe

    cfg = probe.TransformerConfig(d_model=32, n_layers=2, n_heads=4, d_vocab=32, n_ctx=32, seed=0)
    return probe.Transformer(cfg).eval()


def load_model(path: str) -> Any:
    """The model of checkpoint directory `path` (cached; reloaded when its files change), or the demo model."""
    if path == DEMO:
        return demo_model()
    return _load(path, _stamp(Path(path)))


def pattern_hooks(model: Any) -> dict[str, list[str]]:
    """Attention-pattern hook names grouped by stack: {"self-attention": [...]} for decoder / encoder models,
    encoder / decoder / cross-attention stacks for an encoder-decoder, in layer order."""
    groups: dict[str, list[str]] = {}
    labels = {"blocks": "self-attention", "encoder": "encoder self-attention", "decoder": "decoder self-attention"}
    for name in model.hook_dict:
        if not name.endswith("hook_pattern") or name.count(".") != 3:
            continue
        stack, _, module, _ = name.split(".")
        label = "decoder cross-attention" if module == "cross_attn" else labels.get(stack, stack)
        groups.setdefault(label, []).append(name)
    return groups


def parse_ids(text: str, d_vocab: int, name: str = "tokens") -> list[int]:
    """Token ids typed as "3 5 7" or "3, 5, 7"; a clear error on anything else."""
    parts = text.replace(",", " ").split()
    if not parts:
        raise ValueError(f"{name} is empty: type token ids separated by spaces, e.g. '1 2 3'")
    try:
        ids = [int(p) for p in parts]
    except ValueError as e:
        raise ValueError(f"{name}={text!r} must be integers separated by spaces or commas") from e
    bad = [i for i in ids if not 0 <= i < d_vocab]
    if bad:
        raise ValueError(f"{name} holds ids {bad} outside [0, d_vocab={d_vocab})")
    return ids


# ---- figures ------------------------------------------------------------------------------------------------------
def heatmap(z: np.ndarray, x: list[str] | None = None, y: list[str] | None = None, title: str = "",
            xlabel: str = "key", ylabel: str = "query", zmin: float | None = 0.0, zmax: float | None = None,
            height: int = 420) -> go.Figure:
    """A plotly heat-map; rows are y (query positions), columns x (key positions). Labels are made unique."""
    z = np.asarray(z, dtype=float)
    x = x or [str(i) for i in range(z.shape[1])]
    y = y or [str(i) for i in range(z.shape[0])]
    fig = go.Figure(go.Heatmap(z=z, x=unique(x), y=unique(y), colorscale="Viridis", zmin=zmin, zmax=zmax,
                               hovertemplate=f"{ylabel} %{{y}}<br>{xlabel} %{{x}}<br>%{{z:.3f}}<extra></extra>"))
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title=xlabel, yaxis_title=ylabel, yaxis_autorange="reversed")
    return fig


def unique(labels: list[str]) -> list[str]:
    """Position-prefixed labels ("0:a", "1:b") so that repeated tokens keep their own row and column."""
    return [f"{i}:{s}" for i, s in enumerate(labels)]


def line(series: dict[str, tuple[list, list]], title: str, xlabel: str, ylabel: str, mark: float | None = None,
         height: int = 320) -> go.Figure:
    fig = go.Figure([go.Scatter(x=x, y=y, mode="lines" if len(x) > 20 else "lines+markers", name=name)
                     for name, (x, y) in series.items()])
    if mark is not None:
        fig.add_vline(x=mark, line_dash="dash", line_color="grey")
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), xaxis_title=xlabel,
                      yaxis_title=ylabel)
    return fig
