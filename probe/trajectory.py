"""Recordings over training: one on-disk format, one writer, one reader (`probe.load_trajectory`).

A training-dynamics study needs measurements every N steps, not just at the end (Olsson et al. 2022; Nanda et al.
2023); TransformerLens keeps such telemetry in notebook memory. Here a recording goes to disk as the run goes, and
what the writer holds in memory is bounded by one record, not by the run's length.

Format "probe.trajectory/1", a directory:

- `trajectory.json`: {"format", "meta" (free JSON: model config, study, token labels of the probe batch, ...),
  "measures": {name: {"shape": [...], "dtype": "float32"}}, "probe": ["tokens", ...]}.
- `probe.safetensors`: the probe batch the measures were taken on (absent when there is none).
- `shards/STEP.safetensors` (one record) or `shards/FIRST-LAST.safetensors` (a compacted run of records): every
  measure present in those records stacked over them, [k, *shape], and "__step__" [k] (int64).

Writes are atomic (a temporary file renamed into place): a reader sees each record whole or not at all. A measure
missing from some records (e.g. one that starts later) reads as NaN there. `TrajectoryWriter.compact()` merges
single-record shards into files of at most `max_bytes` (holding at most that much in memory).

`load_trajectory(dir)` returns a `Trajectory`: `.steps` [n] (numpy int64), `.names`, `traj[name]` (a tensor stacked
over records, [n, *shape]), `.probe` (the probe batch), `.meta`, `traj.group("weight_norms")`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

FORMAT = "probe.trajectory/1"
INDEX, PROBE, SHARDS = "trajectory.json", "probe.safetensors", "shards"
STEP = "__step__"


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _as_tensor(name: str, value: Any) -> Tensor:
    if isinstance(value, Tensor):
        t = value.detach()
    elif isinstance(value, (bool, int, float, np.number, np.ndarray)):
        t = torch.as_tensor(value)
    else:
        raise TypeError(f"measure {name!r} is a {type(value).__name__}; expected a tensor, an array or a number")
    if t.dtype in (torch.float64, torch.bfloat16):  # float16 stays float16 (a compact pattern store)
        t = t.float()
    return t.cpu().contiguous()


def _shard_steps(path: Path) -> tuple[int, int]:
    first, _, last = path.stem.partition("-")
    return int(first), int(last or first)


def _shard_files(root: Path) -> list[Path]:
    """The shard files in step order; where a compaction was interrupted (a merged file beside the files it
    replaces), the merged file wins."""
    files = sorted((p for p in (root / SHARDS).glob("*.safetensors") if not p.name.startswith(".")),
                   key=lambda p: (_shard_steps(p)[0], -_shard_steps(p)[1]))
    out: list[Path] = []
    for f in files:
        first, last = _shard_steps(f)
        if out and first <= _shard_steps(out[-1])[1]:
            continue  # covered by the wider file before it
        out.append(f)
    return out


class TrajectoryWriter:
    """Append records `{measure name: tensor or number}` at increasing steps to the recording in `out_dir`.

    `resume=None` starts a new recording (an existing one in `out_dir` is replaced); `resume=STEP` continues the one
    there, dropping its records after STEP (those a resumed run records again). `probe` is the probe batch, saved
    once. Each record is written when appended; nothing of it stays in memory.
    """

    def __init__(self, out_dir: str | Path, meta: Mapping[str, Any] | None = None,
                 probe: Mapping[str, Tensor] | None = None, resume: int | None = None) -> None:
        self.root = Path(out_dir)
        self.meta: dict[str, Any] = {}
        self.measures: dict[str, dict[str, Any]] = {}
        self.last_step: int | None = None
        if resume is not None and (self.root / INDEX).is_file():
            index = _read_index(self.root)
            self.meta, self.measures = dict(index["meta"]), dict(index["measures"])
            self._truncate(resume)
        else:
            if resume is not None and resume < 0:
                raise ValueError(f"resume={resume} must be a step >= 0")
            self._clear()
        self.meta.update(dict(meta or {}))
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / SHARDS).mkdir(exist_ok=True)
        self.probe_keys = sorted(probe) if probe is not None else self._probe_keys()
        if probe is not None:
            tensors = {k: _as_tensor(f"probe.{k}", v) for k, v in probe.items()}
            _atomic(self.root / PROBE, lambda p: save_file(tensors, str(p)))
        self._write_index()

    def _probe_keys(self) -> list[str]:
        if not (self.root / PROBE).is_file():
            return []
        with safe_open(str(self.root / PROBE), "pt") as f:
            return sorted(f.keys())

    def _clear(self) -> None:
        """Remove a previous recording's files (only those this format writes)."""
        if (self.root / SHARDS).is_dir():
            shutil.rmtree(self.root / SHARDS)
        for name in (INDEX, PROBE):
            (self.root / name).unlink(missing_ok=True)

    def _truncate(self, step: int) -> None:
        for f in _shard_files(self.root):
            first, last = _shard_steps(f)
            if first > step:
                f.unlink()
            elif last > step:  # a compacted shard across the resume point: keep its records up to `step`
                tensors = load_file(str(f))
                keep = tensors[STEP] <= step
                kept = {k: v[keep].contiguous() for k, v in tensors.items()}
                new_last = int(kept[STEP][-1])
                target = f.with_name(f"{first:09d}-{new_last:09d}.safetensors" if new_last > first
                                     else f"{first:09d}.safetensors")
                _atomic(target, lambda p, kept=kept: save_file(kept, str(p)))
                f.unlink()
        files = _shard_files(self.root)
        self.last_step = _shard_steps(files[-1])[1] if files else None

    def _write_index(self) -> None:
        index = {"format": FORMAT, "meta": self.meta, "measures": self.measures, "probe": self.probe_keys}
        text = json.dumps(index, default=_json_default)
        _atomic(self.root / INDEX, lambda p: p.write_text(text))

    def update_meta(self, **items: Any) -> None:
        self.meta.update(items)
        self._write_index()

    def append(self, step: int, record: Mapping[str, Any]) -> None:
        """Write one record taken at `step` (steps must increase). A measure's shape and dtype are fixed by its
        first record; a later record that differs raises, naming it."""
        if not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"step={step!r} must be an integer >= 0")
        step = int(step)
        if self.last_step is not None and step <= self.last_step:
            raise ValueError(f"step {step} is not after the last recorded step {self.last_step}; steps must increase")
        if not record:
            raise ValueError(f"record at step {step} is empty")
        tensors: dict[str, Tensor] = {}
        new = False
        for name, value in record.items():
            if not isinstance(name, str) or not name or name == STEP:
                raise ValueError(f"measure name {name!r} must be a non-empty string other than {STEP!r}")
            t = _as_tensor(name, value)
            spec = {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
            known = self.measures.get(name)
            if known is None:
                self.measures[name] = spec
                new = True
            elif known != spec:
                raise ValueError(f"measure {name!r} at step {step} has shape {spec['shape']} and dtype "
                                 f"{spec['dtype']}; earlier records have {known['shape']} and {known['dtype']}")
            tensors[name] = t[None]
        tensors[STEP] = torch.tensor([step], dtype=torch.int64)
        if new:  # the index names a measure before any shard holds it: a reader never meets an unknown one
            self._write_index()
        _atomic(self.root / SHARDS / f"{step:09d}.safetensors", lambda p: save_file(tensors, str(p)))
        self.last_step = step

    def compact(self, max_bytes: int = 32 * 2**20) -> None:
        """Merge consecutive shards that hold the same measures into files of at most `max_bytes` each (a single
        larger record stays alone; a measure recorded only now and then stays sparse); memory use is bounded by
        `max_bytes`."""
        groups: list[list[Path]] = []
        size, keys = 0, None
        for f in _shard_files(self.root):
            n = f.stat().st_size
            with safe_open(str(f), "pt") as h:
                names = set(h.keys())
            if groups and size + n <= max_bytes and names == keys:
                groups[-1].append(f)
                size += n
            else:
                groups.append([f])
                size, keys = n, names
        for group in groups:
            if len(group) == 1:
                continue
            parts = [load_file(str(f)) for f in group]
            merged = {name: torch.cat([p[name] for p in parts]) for name in parts[0]}
            first, last = _shard_steps(group[0])[0], _shard_steps(group[-1])[1]
            _atomic(self.root / SHARDS / f"{first:09d}-{last:09d}.safetensors",
                    lambda p, merged=merged: save_file(merged, str(p)))
            for f in group:
                f.unlink()

    def close(self) -> None:
        self.compact()


def _column(part: dict[str, Tensor], name: str, measures: Mapping[str, Mapping[str, Any]]) -> Tensor:
    """`part[name]`, or NaN rows of the measure's shape where the shard lacks it."""
    if name in part:
        return part[name]
    spec = measures[name]
    dtype = getattr(torch, spec["dtype"])
    if not dtype.is_floating_point:
        raise ValueError(f"measure {name!r} ({spec['dtype']}) is missing from some records and cannot be NaN-filled")
    return torch.full((len(part[STEP]), *spec["shape"]), math.nan, dtype=dtype)


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    if isinstance(x, (Path, torch.dtype, torch.device)):
        return str(x)
    if isinstance(x, (tuple, set)):
        return list(x)
    raise TypeError(f"meta value {x!r} ({type(x).__name__}) is not JSON-serialisable")


def _read_index(root: Path) -> dict[str, Any]:
    index_file = root / INDEX
    if not index_file.is_file():
        raise FileNotFoundError(f"{index_file} is missing: {root} is not a trajectory directory "
                                "(record one with probe.train.recorder.Recorder or probe.trajectory.TrajectoryWriter)")
    index = json.loads(index_file.read_text())
    if index.get("format") != FORMAT:
        raise ValueError(f"{index_file} has format {index.get('format')!r}, expected {FORMAT!r}")
    return index


class Trajectory:
    """A recording read back: `.steps`, `.names`, `traj[name]` [n, *shape], `.probe`, `.meta`. Measures are read
    from disk when first asked for and then kept."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        index = _read_index(self.path)
        self.meta: dict[str, Any] = index["meta"]
        self.measures: dict[str, dict[str, Any]] = index["measures"]
        self._scan()
        self.names = list(self.measures)
        self._cache: dict[str, Tensor] = {}
        probe_file = self.path / PROBE
        self.probe: dict[str, Tensor] = load_file(str(probe_file)) if probe_file.is_file() else {}

    def _scan(self, attempts: int = 3) -> None:
        try:
            self._scan_once()
        except FileNotFoundError:  # a shard was merged away between listing and opening it
            if attempts <= 1:
                raise
            self._scan(attempts - 1)

    def _scan_once(self) -> None:
        self._files = _shard_files(self.path)
        self._steps: list[Tensor] = []
        self._keys: list[set[str]] = []
        for f in self._files:
            with safe_open(str(f), "pt") as h:
                self._steps.append(h.get_tensor(STEP))
                self._keys.append(set(h.keys()) - {STEP})
        self.steps = (torch.cat(self._steps) if self._steps else torch.zeros(0, dtype=torch.int64)).numpy()

    def __len__(self) -> int:
        return len(self.steps)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __getitem__(self, name: str) -> Tensor:
        if name not in self._cache:
            if name not in self.names:
                raise KeyError(f"no measure {name!r} in {self.path}; measures: {self.names}")
            n = len(self.steps)
            try:
                value = self._read(name)
            except FileNotFoundError:  # the writer compacted its shards since we looked: look again
                self._scan()
                value = self._read(name)
            if len(value) != n:
                raise RuntimeError(f"{self.path} changed while being read ({n} records, now {len(value)}); "
                                   "load it again")
            self._cache[name] = value
        return self._cache[name]

    def _read(self, name: str) -> Tensor:
        parts = []
        for f, keys, steps in zip(self._files, self._keys, self._steps):
            if name in keys:
                with safe_open(str(f), "pt") as h:
                    parts.append(h.get_tensor(name))
            else:
                parts.append(_column({STEP: steps}, name, self.measures))
        return torch.cat(parts) if parts else _column({STEP: torch.zeros(0)}, name, self.measures)

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self.names else default

    def group(self, prefix: str) -> dict[str, Tensor]:
        """Every measure named "PREFIX.KEY", as {KEY: tensor} (e.g. traj.group("head_scores")["induction"])."""
        return {n[len(prefix) + 1:]: self[n] for n in self.names if n.startswith(prefix + ".")}

    def __repr__(self) -> str:
        return f"Trajectory({str(self.path)!r}, {len(self)} records, measures={self.names})"


def load_trajectory(path: str | Path) -> Trajectory:
    """Read the recording in directory `path` (written by `Recorder` or `TrajectoryWriter`)."""
    return Trajectory(path)
