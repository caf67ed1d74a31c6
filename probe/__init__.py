"""probe: hookable small Transformers and ViTs, training-dynamics analyses and dashboards.

Names are imported lazily so that `import probe` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "TransformerConfig": "probe.config",
    "ViTConfig": "probe.config",
    "CNNConfig": "probe.config",
    "HookedModel": "probe.hooked",
    "Transformer": "probe.models.transformer",
    "ViT": "probe.models.vit",
    "CNN": "probe.models.cnn",
    "ScanSnapModel": "probe.models.scan_snap",
    "load": "probe.checkpoint",
    "save": "probe.checkpoint",
    "Trainer": "probe.train.trainer",
    "TrainConfig": "probe.train.trainer",
    "Recorder": "probe.train.recorder",
    "load_trajectory": "probe.trajectory",
    "Trajectory": "probe.trajectory",
    "TrajectoryWriter": "probe.trajectory",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'probe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
