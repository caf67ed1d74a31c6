"""`Recorder`: a Trainer callback that records training dynamics to disk as the run goes.

Every `every` steps (and before the first step, and at the last) it takes one record of the chosen measures and
appends it to a `probe.trajectory` recording (safetensors shards + a JSON index; read back with
`probe.load_trajectory`). Nothing of a record stays in memory once written; a resumed run (`Trainer(...,
resume_from=...)`) continues the same recording, dropping the records the interrupted run made after its checkpoint.
The measures follow Olsson et al. 2022 ("In-context learning and induction heads") and Nanda et al. 2023 (progress
measures): anything a study wants over training.

Built-in measures (names as stored):

- "loss": the mean training loss over the steps since the previous record (NaN at step 0);
- "eval_loss": `trainer.evaluate()` (reused when the trainer evaluated at the same step);
- "loss_by_position" [pos]: the loss at each position of the probe batch (next-token, or against its `labels`);
- "head_scores" -> "head_scores.previous_token" / ".induction" / ".duplicate" [layer, head]: TransformerLens'
  head-detector scores on the probe batch (`probe.circuits.detector_scores`);
- "patterns" -> every `*.hook_pattern` [batch, head, query_pos, key_pos] on the probe batch;
- "weight_norms" -> "weight_norms.<parameter name>": the Frobenius norm of every parameter.

`custom={"name": fn}` adds `fn(model, step) -> float | Tensor | dict[str, float | Tensor]` (a dict gives
"name.key" measures), called in eval mode without gradients.

What each model kind records by default (`measures=None`; asking for one that does not apply raises):

| kind | default measures |
| --- | --- |
| decoder (softmax attention, or linear attention whose rows are distributions: the normalised sum rule) | all |
| decoder with delta-rule or identity-feature linear attention (signed pattern rows) | all but head_scores |
| encoder (token head), encoder-decoder (patterns: encoder, decoder and cross-attention) | all but head_scores |
| encoder with a classifier head, ViT | loss, eval_loss, patterns, weight_norms |
| models without attention patterns (CNN) | loss, eval_loss, weight_norms |

"eval_loss" is a default only when the trainer has eval data. Head detectors are defined on causal
self-attention over tokens, so only decoders get them. Measures that read the probe batch need one; a decoder
without one gets `default_probe_batch(cfg)` (a random block repeated, the induction detector's test sequence).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from probe.circuits import HEAD_KINDS, detection_pattern, match_score
from probe.train.callbacks import Callback
from probe.trajectory import TrajectoryWriter

MEASURES = ("loss", "eval_loss", "loss_by_position", "head_scores", "patterns", "weight_norms")
PROBE_MEASURES = ("loss_by_position", "head_scores", "patterns")
Custom = Callable[[Any, int], Any]


def default_probe_batch(cfg: Any, n: int = 8, length: int = 64, seed: int = 0) -> dict[str, Tensor]:
    """`n` sequences [bos?, r, r]: a block r of random token ids (not pad / bos / eos) repeated once, the whole at
    most `length` and `cfg.n_ctx` long, with `cfg.bos_token_id` in front when the config has one."""
    specials = {cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id} - {None}
    ids = torch.tensor([i for i in range(cfg.d_vocab) if i not in specials])
    if len(ids) < 2:
        raise ValueError(f"d_vocab={cfg.d_vocab} leaves fewer than 2 ordinary token ids for a probe batch")
    bos = cfg.bos_token_id is not None
    block = (min(length, cfg.n_ctx) - bos) // 2
    if block < 2:
        raise ValueError(f"n_ctx={cfg.n_ctx} is too short for a repeated probe sequence; pass probe_batch")
    g = torch.Generator().manual_seed(seed)
    r = ids[torch.randint(0, len(ids), (n, block), generator=g)]
    parts = ([torch.full((n, 1), cfg.bos_token_id)] if bos else []) + [r, r]
    return {"tokens": torch.cat(parts, 1)}


def _pattern_hooks(model: Any) -> list[str]:
    return [name for name in model.hook_dict if name.endswith("hook_pattern")]


def _kind(model: Any) -> dict[str, bool]:
    """What the model is, as the measures need it."""
    cfg = getattr(model, "cfg", None)
    arch = getattr(cfg, "arch", None)
    decoder = arch == "decoder" and getattr(cfg, "head", "lm") == "lm"
    distributions = all(getattr(block.attn, "normalize", True) for block in getattr(model, "blocks", []))
    token_encoder = arch == "encoder" and getattr(cfg, "head", None) == "token"
    return {"decoder": decoder, "head_scores": decoder and distributions,
            "positions": arch in ("decoder", "encoder_decoder") or token_encoder,
            "patterns": bool(_pattern_hooks(model))}


def _position_losses(logits: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
    """[pos] mean loss at each position over the batch (NaN where no example has a target)."""
    labels = batch.get("labels")
    if labels is not None and labels.shape == logits.shape[:2]:
        target = labels
    else:
        key = "tokens" if "tokens" in batch else "tgt"
        target, logits = batch[key][:, 1:], logits[:, :-1]
        mask = batch.get("attention_mask" if key == "tokens" else "tgt_mask")
        if mask is not None:
            target = target.masked_fill(mask[:, 1:] == 0, -100)
    ce = F.cross_entropy(logits.float().transpose(1, 2), target, ignore_index=-100, reduction="none")
    valid = (target != -100).float()
    return (ce * valid).sum(0) / valid.sum(0)


class Recorder(Callback):
    """Record `measures` (default: what applies to the model, see the module docstring) and `custom` measures every
    `every` steps into the directory `out_dir`, on `probe_batch` (a dict of model inputs, as the Trainer feeds)."""

    def __init__(self, out_dir: str | Path, every: int = 50, probe_batch: Mapping[str, Tensor] | None = None,
                 measures: Sequence[str] | None = None, custom: Mapping[str, Custom] | None = None,
                 meta: Mapping[str, Any] | None = None, pattern_dtype: torch.dtype = torch.float32) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every={every!r} must be an integer >= 1")
        if measures is not None:
            if isinstance(measures, str):
                raise TypeError(f"measures={measures!r} must be a sequence of names, e.g. ({measures!r},)")
            unknown = sorted(set(measures) - set(MEASURES))
            if unknown:
                raise ValueError(f"unknown measures {unknown}; built-in measures are {MEASURES}")
        custom = dict(custom or {})
        for name, fn in custom.items():
            if not callable(fn):
                raise TypeError(f"custom measure {name!r} must be a function fn(model, step)")
            if name in MEASURES or name.split(".")[0] in MEASURES or not name:
                raise ValueError(f"custom measure name {name!r} is empty or clashes with a built-in {MEASURES}")
        if pattern_dtype not in (torch.float32, torch.float16):
            raise ValueError(f"pattern_dtype={pattern_dtype} must be torch.float32 or torch.float16")
        self.out_dir, self.every, self.custom = Path(out_dir), every, custom
        self.requested = None if measures is None else tuple(measures)
        self.probe_batch = None if probe_batch is None else {k: v.detach().cpu() for k, v in probe_batch.items()}
        self.extra_meta, self.pattern_dtype = dict(meta or {}), pattern_dtype
        self.measures: tuple[str, ...] = ()
        self._started = False
        self.writer: TrajectoryWriter | None = None
        self._detection: dict[str, Tensor] = {}
        self._loss_mark: tuple[float, int] | None = None

    # ---- setup ----------------------------------------------------------------------------------------------------
    def _resolve(self, trainer: Any) -> tuple[str, ...]:
        model, kind = trainer.model, _kind(trainer.model)
        has_eval = getattr(trainer, "eval_data", None) is not None
        applies = {"loss": True, "eval_loss": has_eval, "loss_by_position": kind["positions"],
                   "head_scores": kind["head_scores"], "patterns": kind["patterns"], "weight_norms": True}
        if self.requested is None:
            chosen = tuple(m for m in MEASURES if applies[m])
        else:
            bad = [m for m in self.requested if not applies[m]]
            if bad:
                why = {"eval_loss": "the trainer has no eval_data",
                       "loss_by_position": "its outputs have no positions (a classifier)",
                       "head_scores": "head detectors apply to decoders whose attention rows are distributions",
                       "patterns": "it has no hook_pattern hooks"}
                raise ValueError(f"measures {bad} do not apply to {type(model).__name__}: "
                                 + "; ".join(f"{m}: {why[m]}" for m in bad))
            chosen = self.requested
        if self.probe_batch is None and any(m in PROBE_MEASURES for m in chosen):
            if not kind["decoder"]:
                need = [m for m in chosen if m in PROBE_MEASURES]
                raise ValueError(f"measures {need} need a probe_batch for {type(model).__name__} "
                                 f"(arch={getattr(model.cfg, 'arch', None)!r}); pass probe_batch={{...}}")
            self.probe_batch = default_probe_batch(model.cfg)
        return chosen

    def _meta(self, trainer: Any) -> dict[str, Any]:
        model = trainer.model
        cfg = getattr(model, "cfg", None)
        meta: dict[str, Any] = {
            "recorder": {"every": self.every, "measures": list(self.measures), "custom": sorted(self.custom)},
            "model": {"class": f"{type(model).__module__}:{type(model).__name__}",
                      "config": cfg.to_dict() if hasattr(cfg, "to_dict") else None},
        }
        if hasattr(trainer, "cfg") and hasattr(trainer.cfg, "to_dict"):
            meta["train_config"] = trainer.cfg.to_dict()
        tokenizer = getattr(trainer, "tokenizer", None) or getattr(model, "tokenizer", None)
        if tokenizer is not None and self.probe_batch is not None:
            meta["probe_token_labels"] = {k: [[_token_name(tokenizer, int(t)) for t in row] for row in v]
                                          for k, v in self.probe_batch.items()
                                          if k in ("tokens", "src", "tgt") and v.ndim == 2}
        return {**meta, **self.extra_meta}

    def on_start(self, trainer: Any) -> None:
        self._started = True
        self.measures = self._resolve(trainer)
        if "head_scores" in self.measures:
            tokens = self.probe_batch["tokens"]
            self._detection = {k: detection_pattern(tokens, k) for k in HEAD_KINDS}
        self._loss_mark = None
        if not _is_main(trainer):
            return
        start = int(getattr(trainer, "step", 0) or 0)
        self.writer = TrajectoryWriter(self.out_dir, self._meta(trainer), probe=self.probe_batch,
                                       resume=start if start > 0 else None)

    # ---- one record -----------------------------------------------------------------------------------------------
    def _train_loss(self, trainer: Any) -> float:
        total, count = getattr(trainer, "loss_total", None), getattr(trainer, "loss_count", 0)
        if total is None:
            return math.nan
        total = float(total)
        mark, self._loss_mark = self._loss_mark, (total, count)
        if mark is None or count == mark[1]:
            return total / count if mark is None and count else math.nan
        return (total - mark[0]) / (count - mark[1])

    def _eval_loss(self, trainer: Any, step: int) -> float:
        for record in reversed(trainer.history[-4:]):
            if record.get("step") == step and "eval_loss" in record:
                return record["eval_loss"]
        return trainer.evaluate()

    @torch.no_grad()
    def record(self, trainer: Any, step: int) -> dict[str, Any]:
        """The measures at `step` ({name: value}); `on_step` writes them."""
        model, out = trainer.model, {}
        if "loss" in self.measures:
            out["loss"] = self._train_loss(trainer)
        if "eval_loss" in self.measures:
            out["eval_loss"] = self._eval_loss(trainer, step)
        was_training = model.training
        model.eval()
        try:
            if any(m in PROBE_MEASURES for m in self.measures):
                out.update(self._probe_measures(model))
            if "weight_norms" in self.measures:
                names, params = zip(*[(n, p) for n, p in model.named_parameters()])
                norms = torch.stack([p.detach().float().norm() for p in params]).cpu()
                out.update({f"weight_norms.{n}": v for n, v in zip(names, norms)})
            for name, fn in self.custom.items():
                value = fn(model, step)
                if isinstance(value, Mapping):
                    out.update({f"{name}.{k}": v for k, v in value.items()})
                else:
                    out[name] = value
        finally:
            model.train(was_training)
        return out

    def _probe_measures(self, model: Any) -> dict[str, Tensor]:
        device = next(model.parameters()).device
        batch = {k: v.to(device) for k, v in self.probe_batch.items()}
        hooks = _pattern_hooks(model) if {"patterns", "head_scores"} & set(self.measures) else []
        logits, cache = model.run_with_cache(**batch, return_type="logits", names_filter=hooks)
        out: dict[str, Tensor] = {}
        if "loss_by_position" in self.measures:
            out["loss_by_position"] = _position_losses(logits, batch)
        if "patterns" in self.measures:
            out.update({name: cache[name].to(self.pattern_dtype) for name in hooks})
        if "head_scores" in self.measures:
            layers = [cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(len(model.blocks))]
            for kind, det in self._detection.items():
                out[f"head_scores.{kind}"] = torch.stack([match_score(p, det.to(device)) for p in layers])
        return out

    def on_step(self, trainer: Any, step: int) -> None:
        if not self._started:  # driven by hand rather than by Trainer.fit
            self.on_start(trainer)
        if self.writer is not None:
            self.writer.append(step, self.record(trainer, step))

    def on_end(self, trainer: Any) -> None:
        if self.writer is not None:
            self.writer.close()


def _is_main(trainer: Any) -> bool:
    dist = getattr(trainer, "dist", None)
    return True if dist is None else bool(dist.is_main)


def _token_name(tokenizer: Any, i: int) -> str:
    if hasattr(tokenizer, "id_to_token"):
        name = tokenizer.id_to_token(i)
    else:
        name = tokenizer.convert_ids_to_tokens(i)
    return str(i) if name is None else str(name)
