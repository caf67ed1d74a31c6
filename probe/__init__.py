"""probe: hookable small Transformers and ViTs, training-dynamics analyses and dashboards.

Names are imported lazily so that `import probe` stays cheap; submodules are attributes (`probe.checkpoint`).
The architecture is described in ARCHITECTURE.md.
"""

from __future__ import annotations

from probe.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "TransformerConfig": "probe.config",
    "ViTConfig": "probe.config",
    "CNNConfig": "probe.config",
    "HookedModel": "probe.hooked",
    "Transformer": "probe.models.transformer",
    "ViT": "probe.models.vit",
    "CNN": "probe.models.cnn",
    "LSTM": "probe.models.lstm",
    "LSTMConfig": "probe.models.lstm",
    "ScanSnapModel": "probe.models.scan_snap",
    "load": "probe.checkpoint",
    "list_checkpoints": "probe.checkpoint",
    "Trainer": "probe.train.trainer",
    "TrainConfig": "probe.train.trainer",
    "Recorder": "probe.train.recorder",
    "load_trajectory": "probe.trajectory",
    "Trajectory": "probe.trajectory",
    "TrajectoryWriter": "probe.trajectory",
}

__all__ = sorted([*_EXPORTS, "save"])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


def save(model, path, meta=None, tokenizer=None, extra=None):
    """`probe.checkpoint.save` (imported on first call). Not a lazy name: nnsight gives every object a `save`
    method, which a module-level `__getattr__` would never get to override."""
    from probe.checkpoint import save as save_checkpoint

    return save_checkpoint(model, path, meta, tokenizer, extra)
