"""Shared helpers of the dashboards: where checkpoints and runs live and how they link to each other, cached
loading, the explorer's inputs (defaults in the training distribution, refused bad input), attention plots.

Roots come from the environment so tests (and users) can point the app elsewhere:
`PROBE_CHECKPOINTS` (default `checkpoints/` at the repository root) and `PROBE_RUNS` (default `runs/`).
Checkpoints are found under both roots (`probe train --out runs/...` writes OUT/final): a checkpoint's name is its
path under the checkpoint root, or "runs/<path>" under the runs root; pages put these names in their URLs.
Everything that loads a model goes through `load_model`, which wraps `probe.load` in `st.cache_resource`.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

REPO = Path(__file__).resolve().parents[1]
DEMO = "demo: untrained decoder (random init)"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".gif")
RUN_FILES = ("metrics.json", "metrics.jsonl", "report.md")
RUNS_PREFIX = "runs/"


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


def all_checkpoints() -> list[dict[str, Any]]:
    """Checkpoints under the checkpoint root, then those inside runs under the runs root; each entry gets a "name"
    that is unique across both ("runs/..." for the latter) and a "root" ("checkpoints" or "runs")."""
    out = []
    for root, prefix in ((checkpoints_root(), ""), (runs_root(), RUNS_PREFIX)):
        if prefix and root.resolve() == checkpoints_root().resolve():
            continue
        for c in list_checkpoints(root):
            out.append({**c, "name": prefix + c["name"], "root": "runs" if prefix else "checkpoints"})
    return out


def checkpoint_path(name: str) -> Path:
    """The directory of the checkpoint called `name` (see `all_checkpoints`)."""
    if name.startswith(RUNS_PREFIX) and not (checkpoints_root() / name).is_dir():
        return runs_root() / name.removeprefix(RUNS_PREFIX)
    return checkpoints_root() / name


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


# ---- runs <-> checkpoints -----------------------------------------------------------------------------------------
def command_out(command: str | list[str] | None) -> str | None:
    """The `--out DIR` of a recorded command line ("python -m analyses.induction --save ... --out runs/induction",
    or the same as an argv list)."""
    if not command:
        return None
    try:
        args = [str(a) for a in command] if isinstance(command, list) else shlex.split(str(command))
    except ValueError:
        return None
    for i, a in enumerate(args):
        if a == "--out" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--out="):
            return a.split("=", 1)[1]
    return None


def run_of_checkpoint(entry: dict[str, Any]) -> str | None:
    """The run (its name under the runs root) a checkpoint belongs to: the run folder it was saved inside, or the
    `--out` folder of the command that made it, when that folder is a run."""
    root = runs_root()
    runs = {rel(r, root) for r in list_runs(root)}
    path = Path(entry["path"])
    if entry.get("root") == "runs":
        for parent in [path, *path.parents]:
            if parent == root or root not in parent.parents:
                break
            if rel(parent, root) in runs:
                return rel(parent, root)
        return None
    out = command_out(entry.get("command"))
    if out is None:
        return None
    out_path = Path(out)
    name = str(out_path).removeprefix(RUNS_PREFIX) if not out_path.is_absolute() else rel(out_path, root)
    return name if name in runs else None


def checkpoints_of_run(run: str) -> list[str]:
    """Names of the checkpoints that belong to run `run` (see `run_of_checkpoint`)."""
    return [c["name"] for c in all_checkpoints() if "error" not in c and run_of_checkpoint(c) == run]


# ---- models -------------------------------------------------------------------------------------------------------
def stamp(path: Path) -> float:
    """Latest modification time of the files in `path` (cache keys change when a checkpoint is rewritten)."""
    return max((f.stat().st_mtime for f in path.iterdir() if f.is_file()), default=0.0)



def torch_threads() -> None:
    """Run torch on PROBE_APP_THREADS intra-op threads (default 1): the dashboards' models are tiny, and on a shared
    machine extra threads only spin (a layer norm of a 1 x 10 x 64 input took 6 ms with 2 threads under load,
    microseconds with one). Called when a model is loaded, so the Overview page never imports torch."""
    import torch

    want = int(os.environ.get("PROBE_APP_THREADS", "1"))
    if torch.get_num_threads() != want:
        torch.set_num_threads(want)


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
    torch_threads()
    if path == DEMO:
        return demo_model()
    return _load(path, stamp(Path(path)))


def read_meta(path: str) -> dict[str, Any]:
    meta_file = Path(path) / "meta.json"
    if path == DEMO or not meta_file.is_file():
        return {}
    try:
        return json.loads(meta_file.read_text())
    except json.JSONDecodeError:
        return {}


def describe(model: Any) -> str:
    """One line: kind, architecture and size ("transformer: decoder, 2 layers x 4 heads, d_model 32, ...")."""
    cfg = model.cfg
    kind = getattr(cfg, "kind", type(model).__name__)
    if kind == "transformer":
        extra = f", {cfg.attention} attention" + (f" ({cfg.feature_map}, {cfg.update_rule} rule)"
                                                 if cfg.attention == "linear" else "")
        extra += ", attention only" if cfg.attn_only else ""
        return (f"transformer: {cfg.arch}, {cfg.n_layers} layers x {cfg.n_heads} heads, d_model {cfg.d_model}, "
                f"vocabulary {cfg.d_vocab}, n_ctx {cfg.n_ctx}, head {cfg.head}{extra}")
    if kind == "vit":
        return (f"vit: {cfg.n_layers} layers x {cfg.n_heads} heads, d_model {cfg.d_model}, {cfg.image_size}x"
                f"{cfg.image_size} images in {cfg.patch_size}x{cfg.patch_size} patches, {cfg.n_classes} classes")
    return f"{kind}: {type(model).__name__}"


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


# ---- inputs -------------------------------------------------------------------------------------------------------
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


def encode_text(tok: Any, text: str, name: str = "input") -> list[int]:
    """`text` through a `tokenizers.Tokenizer`; words the vocabulary does not hold are refused (a word-level
    tokenizer would silently map them to its unknown token, "<pad>" in probe's task tokenizers)."""
    enc = tok.encode(text)
    if not enc.ids:
        raise ValueError(f"{name}: the tokenizer produced no tokens for {text!r}")
    unk = json.loads(tok.to_str())["model"].get("unk_token")
    unknown = [text[s:e] for t, (s, e) in zip(enc.tokens, enc.offsets) if unk is not None and t == unk
               and text[s:e] != unk]
    if unknown:
        vocab = sorted(tok.get_vocab(), key=tok.get_vocab().get)
        raise ValueError(f"{name}: {unknown} not in the checkpoint's vocabulary (it would become {unk!r}); "
                         f"known tokens: {' '.join(vocab)}")
    return enc.ids


def token_labels(model: Any, ids: list[int]) -> list[str]:
    tok = getattr(model, "tokenizer", None)
    if tok is not None and hasattr(tok, "id_to_token"):
        return [tok.id_to_token(i) or str(i) for i in ids]
    return [str(i) for i in ids]


def output_labels(model: Any) -> list[str]:
    """Names of the model's outputs: tokens for a language model, "class i" for a classifier."""
    cfg = model.cfg
    if getattr(cfg, "kind", "") == "vit" or getattr(cfg, "head", "lm") == "classifier":
        n = cfg.n_classes if getattr(cfg, "kind", "") == "vit" else cfg.d_vocab_out
        return [f"class {i}" for i in range(n)]
    return token_labels(model, list(range(cfg.d_vocab_out)))


def special_ids(cfg: Any) -> set[int]:
    return {i for i in (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) if i is not None}


def ordinary_ids(cfg: Any) -> list[int]:
    """Token ids that are not pad / bos / eos."""
    return [i for i in range(cfg.d_vocab) if i not in special_ids(cfg)]


def default_tokens(model: Any, meta: dict[str, Any]) -> list[int]:
    """An input in the model's training distribution: for the induction task (and any decoder), [bos] and a block
    of distinct symbols repeated once, the block length inside the trained range; for a sequence-to-sequence task,
    a source of a length it trained on (the decoder input is then the model's own greedy output); else a run of
    ordinary tokens. Deterministic (seed 0)."""
    import torch

    cfg, task = model.cfg, meta.get("task") or {}
    ordinary = ordinary_ids(cfg)
    gen = torch.Generator().manual_seed(0)
    if cfg.arch == "encoder_decoder":
        lo, hi = task.get("min_len", 4), task.get("max_len", min(8, cfg.n_ctx))
        n = min(max((lo + hi) // 2, 1), cfg.n_ctx, len(ordinary))
        return [ordinary[i] for i in torch.randperm(len(ordinary), generator=gen)[:n].tolist()]
    if cfg.arch == "decoder":
        bos = [cfg.bos_token_id] if cfg.bos_token_id is not None else []
        lo, hi = task.get("min_block", 3), task.get("block", 8)
        block = min(max((lo + hi + 1) // 2, 1), (cfg.n_ctx - len(bos)) // 2, len(ordinary))
        sym = [ordinary[i] for i in torch.randperm(len(ordinary), generator=gen)[:block].tolist()]
        return bos + sym + sym
    n = min(8, cfg.n_ctx, len(ordinary))
    return [ordinary[i] for i in torch.randperm(len(ordinary), generator=gen)[:n].tolist()]


def default_corruption(model: Any, ids: list[int]) -> list[int]:
    """The clean input with its first half (specials kept) moved to other ordinary tokens, so that whatever the
    model copies from there is gone; the same length, as patching needs."""
    cfg = model.cfg
    ordinary = ordinary_ids(cfg)
    out = list(ids)
    for i in range(len(ids) // 2 + 1 if len(ids) > 1 else 1):
        if ids[i] in ordinary:
            out[i] = ordinary[(ordinary.index(ids[i]) + len(ordinary) // 2) % len(ordinary)]
    return out


# ---- figures ------------------------------------------------------------------------------------------------------
def heatmap(z: np.ndarray, x: list[str] | None = None, y: list[str] | None = None, title: str = "",
            xlabel: str = "key", ylabel: str = "query", zmin: float | None = 0.0, zmax: float | None = None,
            height: int = 420, colorscale: str = "Viridis", distinct: bool = True) -> go.Figure:
    """A plotly heat-map; rows are y (query positions), columns x (key positions). With `distinct`, labels are
    prefixed with their index so that repeated tokens keep their own row and column; both axes are categorical
    (token names like "3" or "<pad>" are never read as numbers)."""
    z = np.asarray(z, dtype=float)
    x = x or [str(i) for i in range(z.shape[1])]
    y = y or [str(i) for i in range(z.shape[0])]
    if distinct:
        x, y = unique(x), unique(y)
    fig = go.Figure(go.Heatmap(z=z, x=x, y=y, colorscale=colorscale, zmin=zmin, zmax=zmax,
                               hovertemplate=f"{ylabel} %{{y}}<br>{xlabel} %{{x}}<br>%{{z:.3f}}<extra></extra>"))
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title=xlabel, yaxis_title=ylabel, yaxis_autorange="reversed")
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
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
