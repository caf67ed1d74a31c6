"""The training loop: `Trainer(model, train_data, eval_data, TrainConfig).fit()`.

Follows the shape of nanoGPT's train.py: bf16 autocast on CUDA, optional `torch.compile`, gradient accumulation,
gradient clipping, a schedule applied by hand to every parameter group, DDP under torchrun
(`probe.train.distributed`). The hot loop makes no host-device synchronisation except at log, eval, save and
callback steps: losses and the first non-finite step are accumulated on the device.

Determinism: batch order is a function of (seed, batch index) and the global RNG is reseeded from
(seed, rank, step) before every step (dropout), so a run is reproducible on CPU given its seed and a resumed run
repeats the losses of an uninterrupted one. Checkpoints (`probe.checkpoint`) carry the optimizer state as
`trainer_state.safetensors` + `trainer_state.json` beside the model files; nothing is pickled.

Models are called as `model(**batch, return_type="loss")`; with `label_smoothing > 0` probe's models get
`label_smoothing=...` and a model without that argument is asked for logits and scored by `smoothed_loss`. Both use
the one loss of `probe.ops.loss` (padded targets never count).

Layout of `out_dir`: the final checkpoint is `out_dir` itself (`probe.load(out_dir)`), step checkpoints are
`out_dir/step-N`, the log is `out_dir/metrics.jsonl`.

A callback can end training early with `trainer.request_stop(reason)` (`probe.train.EarlyStopping` does, at a
target value or a plateau of a measured quantity); the loop then finishes as after its last step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from probe.ops.loss import cross_entropy, mask_padding, next_token_labels
from probe.train import distributed
from probe.train.batches import BatchStream, count_tokens, first_batches, to_device
from probe.train.callbacks import Callback
from probe.train.optim import OPTIMIZERS, make_optimizer, param_groups
from probe.train.schedules import SCHEDULES, make_schedule


class NonFiniteLossError(RuntimeError):
    """Raised when the training loss becomes NaN or infinite."""


@dataclass
class TrainConfig:
    """Everything the loop needs. `batch_size` is the global batch per optimizer step (split over
    `grad_accum` micro-batches and over processes); for an iterable of ready batches it is ignored."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_groups: dict[str, float] = field(default_factory=dict)  # regex on parameter names -> lr
    schedule: str = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    label_smoothing: float = 0.0
    grad_clip: float | None = 1.0
    grad_accum: int = 1
    device: str | None = None  # None: cuda, then mps, then cpu
    amp: bool = True  # bf16 autocast on CUDA
    compile: bool | str = False  # True: torch.compile with the default backend; a string names the backend
    seed: int = 0
    shuffle: bool = True
    log_every: int = 50
    eval_every: int = 0  # 0: evaluate at the end only
    eval_batches: int = 8
    save_every: int = 0  # 0: save at the end only (when out_dir is set)
    out_dir: str | None = None
    log_file: str | None = None  # default OUT_DIR/metrics.jsonl
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "log_every", "eval_batches"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainConfig.{name}={value!r} must be an integer >= 1")
        for name in ("eval_every", "save_every", "warmup_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"TrainConfig.{name}={value!r} must be an integer >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainConfig.optimizer={self.optimizer!r} is not one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig.schedule={self.schedule!r} is not one of {SCHEDULES}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr={self.lr!r} must be > 0")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"TrainConfig.label_smoothing={self.label_smoothing!r} must be in [0, 1)")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig.grad_clip={self.grad_clip!r} must be > 0 or None")
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size={self.batch_size} must be divisible by grad_accum={self.grad_accum}")
        self.betas = tuple(self.betas)
        make_schedule(self.schedule, self.steps, self.warmup_steps, self.min_lr_ratio)  # validates

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"TrainConfig: unknown fields {unknown}; expected a subset of {sorted(known)}")
        return cls(**data)


def select_device(name: str | None = None) -> torch.device:
    """`name` if given, else cuda, then mps, then cpu."""
    if name is not None:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={name!r} requested but CUDA is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def smoothed_loss(logits: Tensor, batch: dict[str, Tensor], label_smoothing: float) -> Tensor:
    """The loss probe's models compute (`probe.ops.loss`), for a model that takes no `label_smoothing`: against
    `labels` (-100 ignored) when given, else next-token prediction on `tokens` (or `tgt`); padded targets
    (`attention_mask`, or `tgt_mask` for `tgt`, 0) never count."""
    key = "tokens" if "tokens" in batch or "tgt" not in batch else "tgt"
    mask = batch.get("attention_mask" if key == "tokens" else "tgt_mask")
    if "labels" in batch:
        return cross_entropy(logits, mask_padding(batch["labels"], mask), label_smoothing)
    return cross_entropy(logits[:, :-1], next_token_labels(batch[key], mask), label_smoothing)


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, Tensor], info: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for name, value in info["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else g for g in info["param_groups"]]
    return {"state": state, "param_groups": groups}


class Trainer:
    """Train `model` on `train_data` (a `DictDataset`, any map-style dataset of dict examples, or an iterable of
    dict batches such as a DataLoader); evaluate on `eval_data`; log to JSONL; checkpoint to `out_dir`."""

    def __init__(self, model: nn.Module, train_data: Any, eval_data: Any = None, config: TrainConfig | None = None,
                 callbacks: Sequence[Callback] = (), tokenizer: Any = None, resume_from: str | Path | None = None,
                 ) -> None:
        self.cfg = cfg = config or TrainConfig()
        self.device = select_device(cfg.device)
        self.dist = distributed.init(self.device.type)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        self._takes_smoothing = "label_smoothing" in inspect.signature(model.forward).parameters
        self.callbacks = list(callbacks)
        self.eval_data = eval_data
        self.micro_batch = cfg.batch_size // cfg.grad_accum
        self.stream = BatchStream(train_data, self.micro_batch, seed=cfg.seed, rank=self.dist.rank,
                                  world=self.dist.world, shuffle=cfg.shuffle)
        groups = param_groups(model, cfg.lr, cfg.weight_decay, cfg.lr_groups)
        self.optimizer = make_optimizer(cfg.optimizer, groups, cfg.lr, cfg.weight_decay, cfg.betas, cfg.eps,
                                        cfg.momentum)
        self.schedule = make_schedule(cfg.schedule, cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio)
        self.forward_model: nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile:
            backend = cfg.compile if isinstance(cfg.compile, str) else "inductor"
            self.forward_model = torch.compile(self.forward_model, backend=backend)
        self._first_bad = torch.full((), -1, dtype=torch.long, device=self.device)
        self._bad_value = torch.zeros((), device=self.device)
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.last_loss: float | None = None
        self.loss_total = torch.zeros((), device=self.device)  # sum of the step losses this trainer ran
        self.loss_count = 0  # (callbacks difference these to get the mean loss between two of their calls)
        self.last_good_checkpoint: Path | None = None
        self.stop_reason: str | None = None  # set by `request_stop`
        self.log_path = Path(cfg.log_file) if cfg.log_file else (
            Path(cfg.out_dir) / "metrics.jsonl" if cfg.out_dir else None)
        if resume_from is not None:
            self.resume(resume_from)

    # ---- pieces ---------------------------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        if self.cfg.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def compute_loss(self, batch: dict[str, Tensor], model: nn.Module | None = None) -> Tensor:
        model = model if model is not None else self.forward_model
        if self.cfg.label_smoothing > 0 and model.training:
            if self._takes_smoothing:
                return model(**batch, return_type="loss", label_smoothing=self.cfg.label_smoothing)
            logits = model(**batch, return_type="logits")
            return smoothed_loss(logits, batch, self.cfg.label_smoothing)
        return model(**batch, return_type="loss")

    @torch.no_grad()
    def evaluate(self, data: Any = None) -> float:
        """Mean loss over the first `eval_batches` batches of `data` (default eval_data), dropout off."""
        data = data if data is not None else self.eval_data
        if data is None:
            raise ValueError("evaluate() needs eval_data (none was given to the Trainer)")
        was_training = self.model.training
        self.model.eval()
        losses = []
        for batch in first_batches(data, self.micro_batch, self.cfg.eval_batches):
            with self.autocast():
                losses.append(self.compute_loss(to_device(batch, self.device), self.model).float())
        self.model.train(was_training)
        return torch.stack(losses).mean().item()

    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.log_path is not None and self.dist.is_main:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    def _check_finite(self) -> None:
        bad = int(self._first_bad.item())
        if bad >= 0:
            value = self._bad_value.item()
            where = (f"the last good checkpoint is {self.last_good_checkpoint}" if self.last_good_checkpoint
                     else "no checkpoint was saved before it (set save_every and out_dir to keep one)")
            self._log({"step": bad + 1, "event": "non_finite_loss", "loss": str(value)})
            raise NonFiniteLossError(
                f"training loss became {value} at step {bad + 1}; training stopped. {where}. "
                "Try a lower lr, a warmup, gradient clipping or amp=False.")

    # ---- checkpoints ------------------------------------------------------------------------------------------
    def save(self, path: str | Path | None = None) -> Path:
        """Model checkpoint + optimizer state (default `out_dir/step-N`); refuses to save a model that has seen a
        non-finite loss."""
        from probe.checkpoint import save

        self._check_finite()
        path = Path(path) if path is not None else Path(self.cfg.out_dir) / f"step-{self.step}"
        tensors, info = _flatten_optimizer(self.optimizer)
        info["step"] = self.step
        metrics: dict[str, Any] = {}
        for record in self.history:  # the latest value of every logged quantity
            metrics.update({k: v for k, v in record.items() if k not in ("step", "event")})
        meta = {"train_config": self.cfg.to_dict(), "step": self.step, "metrics": metrics}
        if self.dist.is_main:
            save(self.model, path, meta=meta, tokenizer=self.tokenizer,
                 extra={"trainer_state.safetensors": tensors, "trainer_state.json": info})
        distributed.barrier(self.dist)
        self.last_good_checkpoint = path
        return path

    def resume(self, path: str | Path) -> None:
        """Load weights, optimizer state and step from a checkpoint written by `save`."""
        from safetensors.torch import load_file

        from probe.checkpoint import load_state_dict

        path = Path(path)
        state_json, state_tensors = path / "trainer_state.json", path / "trainer_state.safetensors"
        if not state_json.is_file() or not state_tensors.is_file():
            raise FileNotFoundError(f"{path} has no trainer_state.json/.safetensors: it is a model checkpoint, "
                                    "not a training checkpoint (save it with Trainer.save to resume from it)")
        load_state_dict(self.model, path)
        info = json.loads(state_json.read_text())
        self.optimizer.load_state_dict(_unflatten_optimizer(load_file(str(state_tensors)), info))
        self.step = int(info["step"])
        self.last_good_checkpoint = path

    # ---- the loop -----------------------------------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """Ask `fit` to stop after the current step (a callback's early stopping; at step 0, before the first): the
        step's callbacks finish, then the loop logs, evaluates, saves and calls `on_end` as after its last step."""
        if not isinstance(reason, str) or not reason:
            raise ValueError(f"request_stop needs a reason (a non-empty string), got {reason!r}")
        self.stop_reason = reason

    def _seed_step(self, step: int) -> None:
        # the generators themselves: torch.manual_seed visits every backend and costs ~0.5 ms
        seed = (self.cfg.seed * 1_000_003 + self.dist.rank) * 1_000_003 + step
        torch.default_generator.manual_seed(seed)
        if self.device.type == "cuda":
            torch.cuda.default_generators[self.device.index or 0].manual_seed(seed)
        elif self.device.type == "mps":
            torch.mps.manual_seed(seed)

    def _run_callbacks(self, step: int, force: bool = False) -> None:
        for cb in self.callbacks:
            if force or step % cb.every == 0:
                if self.step > 0:
                    self._check_finite()
                cb.on_step(self, step)

    def fit(self) -> list[dict[str, Any]]:
        cfg, model, opt = self.cfg, self.forward_model, self.optimizer
        accum = cfg.grad_accum
        params = [p for p in self.model.parameters() if p.requires_grad]
        loss_sum = torch.zeros((), device=self.device)
        grad_norm = torch.zeros((), device=self.device)
        n_since, tokens_since, t_last = 0, 0, time.perf_counter()
        self.model.train()
        batches = self.stream.iterate(self.step * accum)
        for cb in self.callbacks:
            cb.on_start(self)
        if self.step == 0:
            self._run_callbacks(0)
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not (cfg.progress and self.dist.is_main),
                   desc="train", dynamic_ncols=True)

        def log_train() -> None:  # the mean training loss of the steps since the last record
            nonlocal n_since, tokens_since, t_last
            self._check_finite()
            mean = distributed.mean_across(loss_sum / n_since, self.dist).item()
            now = time.perf_counter()
            self.last_loss = mean
            self._log({"step": self.step, "loss": mean, "lr": opt.param_groups[0]["lr"],
                       "grad_norm": float(grad_norm), "tokens_per_s": tokens_since / (now - t_last)})
            bar.update(self.step - bar.n)
            bar.set_postfix(loss=f"{mean:.4f}", refresh=False)
            loss_sum.zero_()
            n_since, tokens_since, t_last = 0, 0, time.perf_counter()

        try:
            for step in range(self.step, cfg.steps):
                if self.stop_reason is not None:  # asked before the first step
                    self._log({"step": self.step, "event": "stop", "reason": self.stop_reason})
                    break
                self._seed_step(step)
                factor = self.schedule(step)
                for group in opt.param_groups:
                    group["lr"] = group["initial_lr"] * factor
                step_loss = torch.zeros((), device=self.device)
                for micro in range(accum):
                    batch = to_device(next(batches), self.device)
                    tokens_since += count_tokens(batch)
                    sync = micro == accum - 1 or not self.dist.enabled
                    with (contextlib.nullcontext() if sync else self.forward_model.no_sync()), self.autocast():
                        loss = self.compute_loss(batch, model)
                    (loss / accum).backward()
                    step_loss += loss.detach().float()
                if cfg.grad_clip is not None:
                    grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                opt.zero_grad(set_to_none=True)
                step_loss /= accum
                bad = ~torch.isfinite(step_loss) & (self._first_bad < 0)
                self._first_bad = torch.where(bad, step, self._first_bad)
                self._bad_value = torch.where(bad, step_loss, self._bad_value)
                loss_sum += step_loss
                self.loss_total += step_loss
                self.loss_count += 1
                n_since += 1
                self.step = step + 1
                last = self.step == cfg.steps
                if self.step % cfg.log_every == 0 or last:
                    log_train()
                if self.eval_data is not None and cfg.eval_every and self.step % cfg.eval_every == 0 and not last:
                    self._check_finite()
                    self._log({"step": self.step, "eval_loss": self.evaluate()})
                if cfg.out_dir and cfg.save_every and self.step % cfg.save_every == 0 and not last:
                    self.save()
                self._run_callbacks(self.step, force=last)
                if self.stop_reason is not None:
                    if n_since:
                        log_train()
                    self._log({"step": self.step, "event": "stop", "reason": self.stop_reason})
                    break
        finally:
            bar.close()
        if self.eval_data is not None:
            self._log({"step": self.step, "eval_loss": self.evaluate()})
        if cfg.out_dir:
            self.save(cfg.out_dir)  # the run directory is the final checkpoint; step-N/ sit inside it
        for cb in self.callbacks:
            cb.on_end(self)
        return self.history

    def losses(self) -> list[float]:
        return [r["loss"] for r in self.history if "loss" in r and "event" not in r]


def train(model: nn.Module, train_data: Iterable, eval_data: Any = None, **config: Any) -> list[dict[str, Any]]:
    """Shorthand: `Trainer(model, train_data, eval_data, TrainConfig(**config)).fit()`."""
    return Trainer(model, train_data, eval_data, TrainConfig(**config)).fit()


