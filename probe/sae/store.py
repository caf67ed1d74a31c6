"""An SAE checkpoint that knows where it reads: the SAE (a probe checkpoint of kind "sae", `probe.checkpoint`), the
path of the model checkpoint it was trained on (relative to the SAE's directory when possible, with that model's
weight hash, so a swapped model is caught) and a small set of the model's inputs to find top-activating examples
on (`inputs.safetensors`), so that a dashboard can show the SAE without knowing how its data was made.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor

from probe.checkpoint import CheckpointError, load, read_meta, save
from probe.data.dataset import DictDataset
from probe.sae.sae import SparseAutoencoder
from probe.sae.site import Site

INPUTS = "inputs.safetensors"


def save_sae(sae: SparseAutoencoder, path: str | Path, model_path: str | Path, inputs: DictDataset | dict[str, Tensor],
             meta: dict | None = None) -> Path:
    """Write `sae` to `path` with the source model's checkpoint path and `inputs` (the model's keyword inputs, e.g.
    tokens or images + labels). `meta` adds fields to meta.json (metrics, the command, ...)."""
    if sae.cfg.hook is None:
        raise ValueError("the SAE's cfg.hook is None: set SAEConfig(hook=...) to the hook it reads")
    path, model_path = Path(path), Path(model_path)
    model_meta = read_meta(model_path)  # raises if model_path is no checkpoint
    tensors = inputs.tensors if isinstance(inputs, DictDataset) else inputs
    source = os.path.relpath(model_path.resolve(), path.resolve())
    info = {"source_model": source, "source_sha256": model_meta["files"]["model.safetensors"]["sha256"],
            **(meta or {})}
    extra = {INPUTS: {k: v.detach().cpu().contiguous() for k, v in tensors.items()}}
    return save(sae, path, meta=info, extra=extra)


def load_sae(path: str | Path, device: str | torch.device | None = None
             ) -> tuple[SparseAutoencoder, Any, Site, DictDataset]:
    """(sae, model, site, inputs) of an SAE directory written by `save_sae`."""
    path = Path(path)
    sae = load(path, device)
    if not isinstance(sae, SparseAutoencoder):
        raise CheckpointError(f"{path} holds a {type(sae).__name__}, not an SAE")
    meta = read_meta(path)
    if "source_model" not in meta or not (path / INPUTS).is_file():
        raise CheckpointError(f"{path} is an SAE without its source model or inputs: save it with "
                              "probe.sae.save_sae(sae, path, model_path, inputs)")
    model_path = Path(meta["source_model"])
    model_path = model_path if model_path.is_absolute() else (path / model_path).resolve()
    model_sha = read_meta(model_path)["files"]["model.safetensors"]["sha256"]
    if model_sha != meta["source_sha256"]:
        raise CheckpointError(f"the model at {model_path} is not the one {path} was trained on (its weights' sha256 "
                              "differs from the one recorded in the SAE's meta.json)")
    model = load(model_path, device)
    inputs = DictDataset(**load_file(str(path / INPUTS)))
    return sae, model, Site(model, sae.cfg.hook, sae.cfg.head), inputs
