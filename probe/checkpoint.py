"""Checkpoints: safetensors weights + JSON, written atomically, read without unpickling; and the shelf listing.

A checkpoint directory holds
- `model.safetensors`: the state dict (tied tensors stored once; aliases listed in meta.json under "tied");
- `config.json`: `{"kind": cfg.kind, **cfg.to_dict()}`; the kind picks the model class from `REGISTRY`;
- `meta.json`: probe version, the command that made it (`sys.argv`), creation time, training config, step,
  metrics, and the size and sha256 of every file (a truncated or swapped file is caught on load);
- `tokenizer.json` when a `tokenizers.Tokenizer` was given; `trainer_state.*` for resumable training checkpoints.
A training run's directory is itself its final checkpoint, with its metrics log and `step-N/` checkpoints inside.

`save(model, path)` writes every file to a temporary sibling directory first. A new `path` is that directory,
renamed into place (atomic). An existing directory keeps whatever else it holds (a run's log, its `step-N/`): its
previous checkpoint files are replaced, `meta.json` removed first and written last, so a crash leaves the old
checkpoint or one that `check_dir` reports incomplete, never a mix that loads. Loading uses
`safetensors.torch.load_file` and `json` only: nothing is unpickled. `list_checkpoints(root)` describes every
checkpoint under a directory (`probe list`).
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import json
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

REGISTRY: dict[str, str] = {
    "transformer": "probe.models.transformer:Transformer",
    "vit": "probe.models.vit:ViT",
    "cnn": "probe.models.cnn:CNN",
    "lstm": "probe.models.lstm:LSTM",
    "scan_snap": "probe.models.scan_snap:ScanSnapModel",
    "sae": "probe.sae.sae:SparseAutoencoder",
}
REQUIRED = ("config.json", "model.safetensors", "meta.json")


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete, corrupted or does not match its model."""


def model_class(kind: str) -> type:
    """The model class of a config `kind` (each names its config class as `config_class`)."""
    if kind not in REGISTRY:
        raise CheckpointError(f"config kind={kind!r} has no registered model class; known kinds: {sorted(REGISTRY)}")
    module, name = REGISTRY[kind].split(":")
    return getattr(importlib.import_module(module), name)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _split_tied(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Store tensors that share memory (tied weights) once; return {alias: stored name}."""
    seen: dict[tuple, str] = {}
    unique, tied = {}, {}
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
        if t.numel() and key in seen:
            tied[name] = seen[key]
            continue
        seen[key] = name
        unique[name] = t.detach().cpu().contiguous()
    # views of one storage with another layout (e.g. a transpose) are stored as copies
    ptrs: dict[int, str] = {}
    for name in [*unique]:
        ptr = state[name].untyped_storage().data_ptr()
        if ptr in ptrs and state[name].numel():
            unique[name] = unique[name].clone()
        ptrs.setdefault(ptr, name)
    return unique, tied


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def save(model: nn.Module, path: str | Path, meta: dict | None = None, tokenizer: Any = None,
         extra: dict[str, dict] | None = None) -> Path:
    """Write `model` (a probe model with a `cfg`) to the directory `path`, atomically; returns the path.

    `meta` adds fields to meta.json (train_config, step, metrics, ...). `extra` maps file names ending in
    ".safetensors" to tensor dicts and ".json" to JSON data (the Trainer stores its optimizer state there).
    """
    from probe import __version__

    cfg = getattr(model, "cfg", None)
    if cfg is None or not hasattr(cfg, "to_dict") or not getattr(cfg, "kind", ""):
        raise TypeError(f"save() needs a probe model whose cfg has a kind and to_dict(); got {type(model).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        tensors, tied = _split_tied(model.state_dict())
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        _write_json(tmp / "config.json", {"kind": cfg.kind, **cfg.to_dict()})
        if tokenizer is not None:
            if hasattr(tokenizer, "to_str"):
                (tmp / "tokenizer.json").write_text(tokenizer.to_str())
            elif hasattr(tokenizer, "save_pretrained"):
                tokenizer.save_pretrained(str(tmp))
            else:
                raise TypeError(f"tokenizer of type {type(tokenizer).__name__} is neither a tokenizers.Tokenizer "
                                "nor has save_pretrained()")
        for name, data in (extra or {}).items():
            if name.endswith(".safetensors"):
                save_file(data, str(tmp / name))
            elif name.endswith(".json"):
                _write_json(tmp / name, data)
            else:
                raise ValueError(f"extra file {name!r} must end in .safetensors or .json")
        files = {f.name: {"bytes": f.stat().st_size, "sha256": _sha256(f)} for f in sorted(tmp.iterdir())}
        info = {"probe_version": __version__, "command": list(sys.argv), "kind": cfg.kind,
                "class": f"{type(model).__module__}:{type(model).__name__}",
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "train_config": None, "step": None, "metrics": {}, **(meta or {}), "tied": tied, "files": files}
        _write_json(tmp / "meta.json", info)
        for f in tmp.iterdir():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        if path.exists():
            _replace_files(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _replace_files(tmp: Path, path: Path) -> None:
    """Move the checkpoint files written to `tmp` into the existing directory `path`, replacing the previous
    checkpoint's files (those its meta.json lists) and leaving everything else alone; meta.json goes last."""
    if not path.is_dir():
        raise CheckpointError(f"cannot save a checkpoint to {path}: it exists and is not a directory")
    try:
        previous = set(read_meta(path).get("files", {})) if (path / "meta.json").is_file() else set()
    except (CheckpointError, OSError):
        previous = set()
    (path / "meta.json").unlink(missing_ok=True)  # until the new meta.json lands, `path` is no checkpoint
    names = sorted((f.name for f in tmp.iterdir()), key=lambda name: name == "meta.json")
    for name in names:
        os.replace(tmp / name, path / name)
    for name in previous - set(names):
        (path / name).unlink(missing_ok=True)
    tmp.rmdir()


def read_json(path: Path, name: str) -> dict:
    try:
        return json.loads((path / name).read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path / name} is not valid JSON ({e}); the checkpoint is corrupted") from e


def check_dir(path: str | Path) -> Path:
    """Raise CheckpointError unless `path` holds a complete checkpoint whose files match meta.json."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory {path} does not exist")
    missing = [f for f in REQUIRED if not (path / f).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint {path} is missing {missing} (a checkpoint has {list(REQUIRED)})")
    files = read_json(path, "meta.json").get("files", {})
    for name, info in files.items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"checkpoint {path} is missing {name}, listed in meta.json")
        size = f.stat().st_size
        if size != info["bytes"]:
            raise CheckpointError(f"{f} has {size} bytes, meta.json records {info['bytes']}: the file is truncated "
                                  "or was replaced")
        if _sha256(f) != info["sha256"]:
            raise CheckpointError(f"{f} does not match the sha256 in meta.json: the file is corrupted or replaced")
    return path


def read_meta(path: str | Path) -> dict:
    return read_json(Path(path), "meta.json")


def read_config(path: str | Path):
    """The model config stored in `path` as its config class."""
    path = check_dir(path)
    data = read_json(path, "config.json")
    kind = data.pop("kind", None)
    if kind is None:
        raise CheckpointError(f"{path / 'config.json'} has no 'kind' field; known kinds: {sorted(REGISTRY)}")
    cls = model_class(kind)
    try:
        return cls.config_class.from_dict(data)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path / 'config.json'} does not make a valid {kind} config: {e}") from e


def _load_tensors(path: Path) -> dict[str, Tensor]:
    try:
        state = load_file(str(path / "model.safetensors"))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path / 'model.safetensors'} cannot be read ({e}); the file is corrupted") from e
    for alias, source in read_meta(path).get("tied", {}).items():
        state[alias] = state[source]
    return state


def load_state_dict(model: nn.Module, path: str | Path) -> None:
    """Load the weights stored in `path` into `model`, with a clear error on any mismatch."""
    path = check_dir(path)
    state = _load_tensors(path)
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in set(own) & set(state) if state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise CheckpointError(f"weights in {path} do not match {type(model).__name__} (is config.json the config "
                              f"they were trained with?): {len(missing)} missing {missing[:8]}, {len(unexpected)} "
                              f"unexpected {unexpected[:8]}, {len(shapes)} shape mismatches {sorted(shapes)[:8]}")
    model.load_state_dict(state)


def load(path: str | Path, device: str | torch.device | None = None) -> nn.Module:
    """Rebuild the model saved in `path` (eval mode). A `tokenizer.json` becomes `model.tokenizer`."""
    path = check_dir(path)
    data = read_json(path, "config.json")
    cls = model_class(data.get("kind"))
    model = cls(read_config(path))
    load_state_dict(model, path)
    if "tokenizer.json" in read_meta(path).get("files", {}):
        from tokenizers import Tokenizer

        model.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    if device is not None:
        model.to(device)
    return model.eval()


def list_checkpoints(root: str | Path = "checkpoints") -> list[dict[str, Any]]:
    """One dict per checkpoint directory under `root` (any depth, `root` itself included): name (relative to
    root), path, kind, step, metrics, command, created, size_bytes (the checkpoint's own files). Unreadable
    checkpoints are listed with an "error" field instead of being skipped. A missing `root` is an error."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"checkpoint root {root} is not a directory")
    out = []
    for cfg_file in sorted(root.rglob("config.json")):
        path = cfg_file.parent
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue  # temporary directories of an in-progress save
        if not (path / "model.safetensors").is_file():
            continue
        entry: dict[str, Any] = {"name": str(path.relative_to(root)), "path": str(path)}
        try:
            meta = read_meta(path)
            kind = json.loads(cfg_file.read_text()).get("kind")
            files = meta.get("files") or {f.name: {} for f in path.iterdir() if f.is_file()}
            entry.update(kind=kind, step=meta.get("step"), metrics=meta.get("metrics", {}),
                         command=meta.get("command"), created=meta.get("created"),
                         size_bytes=sum((path / f).stat().st_size for f in files if (path / f).is_file()))
        except (OSError, json.JSONDecodeError, CheckpointError) as e:
            entry.update(error=f"{type(e).__name__}: {e}", size_bytes=0)
        out.append(entry)
    return out
