"""Trainer callbacks: code that runs every N optimizer steps (and once before the first step).

`AttentionTrajectory` records attention patterns on a fixed probe batch as training goes, the raw material of
training-dynamics analyses (e.g. induction-head formation, Olsson et al. 2022) and of the dashboards.

Trajectory file format (written atomically after every record, so a reader never sees a half-written file):

- `DIR/trajectory.safetensors`:
  - one tensor per recorded hook, keyed by the hook name (e.g. "blocks.0.attn.hook_pattern"), float32,
    shape [n_records, batch, head, query_pos, key_pos] (record i taken at step `steps[i]`);
  - the probe batch itself under "probe.<key>" (e.g. "probe.tokens"), so readers know the inputs.
- `DIR/trajectory.json`: {"format": "probe.attention_trajectory/1", "steps": [...], "hooks": [...],
  "loss": [...] (the trainer's last logged train loss at each record, null before the first log),
  "probe_keys": [...], "every": N}.

`load_trajectory(DIR)` returns `(index_dict, {name: tensor})`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

if TYPE_CHECKING:
    from probe.train.trainer import Trainer

FORMAT = "probe.attention_trajectory/1"


class Callback:
    """Base class: `on_step(trainer, step)` runs when `step % every == 0` (step 0 = before training) and at the
    last step; `on_end(trainer)` once after training."""

    every: int = 1

    def on_step(self, trainer: Trainer, step: int) -> None:
        """Does nothing by default."""

    def on_end(self, trainer: Trainer) -> None:
        """Does nothing by default."""


def _atomic_write_bytes(path: Path, writer) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    writer(tmp)
    os.replace(tmp, path)


class AttentionTrajectory(Callback):
    """Record `hook_pattern` of chosen layers on `probe_batch` every `every` steps into `out_dir`.

    `layers` selects by layer index (default: all); `hooks` gives explicit hook names instead (e.g. the
    encoder-decoder's "decoder.0.cross_attn.hook_pattern").
    """

    def __init__(self, probe_batch: dict[str, Tensor], out_dir: str | Path, every: int = 50,
                 layers: list[int] | None = None, hooks: list[str] | None = None) -> None:
        if every < 1:
            raise ValueError(f"every={every} must be >= 1")
        self.probe_batch = {k: v.detach().cpu() for k, v in probe_batch.items()}
        self.out_dir, self.every, self.layers, self.hooks = Path(out_dir), every, layers, hooks
        self.steps: list[int] = []
        self.losses: list[float | None] = []
        self.records: dict[str, list[Tensor]] = {}

    def hook_names(self, model: Any) -> list[str]:
        if self.hooks is not None:
            return list(self.hooks)
        names = [n for n in model.hook_dict if n.endswith("hook_pattern")]
        if self.layers is not None:
            names = [n for n in names if int(n.split(".")[1]) in self.layers]
        if not names:
            raise ValueError(f"no hook_pattern hooks for layers={self.layers} in {type(model).__name__}")
        return names

    @torch.no_grad()
    def on_step(self, trainer: Trainer, step: int) -> None:
        model = trainer.model
        names = self.hook_names(model)
        was_training = model.training
        model.eval()
        batch = {k: v.to(trainer.device) for k, v in self.probe_batch.items()}
        _, cache = model.run_with_cache(**batch, return_type=None, names_filter=names)
        model.train(was_training)
        for name in names:
            self.records.setdefault(name, []).append(cache[name].detach().float().cpu())
        self.steps.append(step)
        self.losses.append(trainer.last_loss)
        if trainer.dist.is_main:
            self.write()

    def write(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tensors = {name: torch.stack(recs) for name, recs in self.records.items()}
        tensors.update({f"probe.{k}": v.contiguous() for k, v in self.probe_batch.items()})
        index = {"format": FORMAT, "steps": self.steps, "hooks": list(self.records), "loss": self.losses,
                 "probe_keys": list(self.probe_batch), "every": self.every}
        _atomic_write_bytes(self.out_dir / "trajectory.safetensors", lambda p: save_file(tensors, str(p)))
        _atomic_write_bytes(self.out_dir / "trajectory.json", lambda p: p.write_text(json.dumps(index, indent=1)))


def load_trajectory(path: str | Path) -> tuple[dict, dict[str, Tensor]]:
    """Read a trajectory written by `AttentionTrajectory`: (index, tensors)."""
    path = Path(path)
    index_file, tensor_file = path / "trajectory.json", path / "trajectory.safetensors"
    for f in (index_file, tensor_file):
        if not f.is_file():
            raise FileNotFoundError(f"{f} is missing: not an attention trajectory directory")
    index = json.loads(index_file.read_text())
    if index.get("format") != FORMAT:
        raise ValueError(f"{index_file} has format {index.get('format')!r}, expected {FORMAT!r}")
    return index, load_file(str(tensor_file))
