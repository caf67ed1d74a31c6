"""The checkpoint shelf: `probe.checkpoints.list()` describes every checkpoint under `checkpoints/`."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path("checkpoints")


def list(root: str | Path = DEFAULT_ROOT) -> builtins.list[dict[str, Any]]:  # noqa: A001 - the issue's name
    """One dict per checkpoint directory under `root` (any depth): name, path, kind, step, metrics, command,
    created, size_bytes. Unreadable directories are listed with an "error" field instead of being skipped."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for cfg_file in sorted(root.rglob("config.json")):
        path = cfg_file.parent
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue  # temporary directories of an in-progress save
        if not (path / "model.safetensors").is_file():
            continue
        entry: dict[str, Any] = {"name": str(path.relative_to(root)), "path": str(path),
                                 "size_bytes": sum(f.stat().st_size for f in path.iterdir() if f.is_file())}
        try:
            meta = json.loads((path / "meta.json").read_text())
            kind = json.loads(cfg_file.read_text()).get("kind")
            entry.update(kind=kind, step=meta.get("step"), metrics=meta.get("metrics", {}),
                         command=meta.get("command"), created=meta.get("created"))
        except (OSError, json.JSONDecodeError) as e:
            entry["error"] = f"{type(e).__name__}: {e}"
        out.append(entry)
    return out
