"""Scheduled sampling for encoder-decoders, in the two-pass form for Transformers.

Teacher forcing trains the decoder on gold prefixes but it decodes from its own (001 §5.4: "train and test
mismatch; one wrong step, every step wrong"). Scheduled sampling (Bengio, Vinyals, Jaitly & Shazeer 2015) feeds the
decoder its own predictions with a probability that grows during training. A Transformer decoder reads every
position at once, so Mihaylova & Martins 2019 ("Scheduled Sampling for Transformers") run it twice:

1. pass one, teacher-forced and without gradient: the prediction for every target position;
2. mix: each decoder input after bos is replaced by pass one's prediction for it with probability p (else gold);
3. pass two on the mixed inputs, trained against the gold labels (gradients flow through this pass only).

Use: `ss = ScheduledSampling(model, inverse_sigmoid(k))`, then `Trainer(ss, data, config=..., callbacks=[ss])`.
The wrapper is the Trainer's model and also its callback: before each optimizer step `on_step` sets
p = schedule(step). In eval mode (the Trainer's `evaluate`) it is the plain teacher-forced model. A training
forward before any `on_step` raises rather than silently training without the schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from probe.train.callbacks import Callback

MODES = ("argmax", "sample")


def linear(max_prob: int | float, steps: int) -> Callable[[int], float]:
    """p rises linearly from 0 at step 0 to `max_prob` at `steps` and stays there."""
    _check_prob("max_prob", max_prob)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be an integer >= 1")
    return lambda step: max_prob * min(1.0, step / steps)


def inverse_sigmoid(k: int | float) -> Callable[[int], float]:
    """Bengio et al. 2015's inverse sigmoid decay of the teacher-forcing probability, eps_i = k / (k + exp(i / k)),
    as the probability of a model token: p = 1 - eps_i. It crosses 1/2 at step k ln k."""
    if not isinstance(k, (int, float)) or not k >= 1:
        raise ValueError(f"k={k!r} must be a number >= 1 (eps_0 = k / (k + 1))")
    return lambda step: 1.0 - k / (k + math.exp(min(step / k, 700.0)))


def midpoint_k(step: int | float) -> float:
    """The k of `inverse_sigmoid` whose probability crosses 1/2 at `step` (solves k ln k = step)."""
    if not step > 1:
        raise ValueError(f"step={step!r} must be > 1")
    k = step / math.log(step)
    for _ in range(50):  # Newton on f(k) = k ln k - step
        k -= (k * math.log(k) - step) / (math.log(k) + 1.0)
    return max(k, 1.0)


def _check_prob(name: str, p: Any) -> None:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}={p!r} must be a probability in [0, 1]")


def mix_predictions(
    tgt: Int[Tensor, "batch pos"],
    logits: Float[Tensor, "batch pos vocab"],
    labels: Int[Tensor, "batch pos"],
    prob: float,
    mode: str = "argmax",
    generator: torch.Generator | None = None,
) -> Int[Tensor, "batch pos"]:
    """The second pass's decoder input: `tgt` where position t >= 1 holds, with probability `prob`, the first pass's
    prediction for it (made at t - 1: its argmax, or a sample from its softmax) instead of the gold token. Only
    positions whose gold token was a training target (labels[t - 1] != -100) are replaced; bos never is."""
    _check_prob("prob", prob)
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {MODES}")
    if logits.shape[:2] != tgt.shape or labels.shape != tgt.shape:
        raise ValueError(f"tgt {tuple(tgt.shape)}, labels {tuple(labels.shape)} and logits "
                         f"{tuple(logits.shape)} must share [batch, pos]")
    if mode == "argmax":
        predicted = logits[:, :-1].argmax(-1)
    else:
        flat = logits[:, :-1].float().softmax(-1).flatten(0, 1)
        predicted = torch.multinomial(flat, 1, generator=generator).view(tgt.shape[0], -1)
    coin = torch.rand(predicted.shape, generator=generator, device=tgt.device) < prob
    use = coin & (labels[:, :-1] != -100)
    out = tgt.clone()
    out[:, 1:] = torch.where(use, predicted.to(tgt.dtype), tgt[:, 1:])
    return out


class ScheduledSampling(nn.Module, Callback):
    """Wrap an encoder-decoder `probe.Transformer` so training batches take the two-pass scheduled-sampling path.

    `schedule(step) -> p` (e.g. `inverse_sigmoid(k)` or `linear(p, steps)`); `mode` "argmax" (greedy, as at test
    time) or "sample". Pass the wrapper to the Trainer as the model and in `callbacks`.
    """

    every = 1

    def __init__(self, model: nn.Module, schedule: Callable[[int], float], mode: str = "argmax") -> None:
        super().__init__()
        cfg = getattr(model, "cfg", None)
        if getattr(cfg, "arch", None) != "encoder_decoder":
            raise ValueError("ScheduledSampling needs an encoder-decoder probe.Transformer (cfg.arch="
                             f"'encoder_decoder'), got {type(model).__name__} with arch={getattr(cfg, 'arch', None)!r}")
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not one of {MODES}")
        if not callable(schedule):
            raise TypeError(f"schedule must be a function step -> probability, got {type(schedule).__name__}")
        self.model, self.schedule, self.mode = model, schedule, mode
        self.prob: float | None = None

    @property
    def cfg(self) -> Any:
        return self.model.cfg

    def on_step(self, trainer: Any, step: int) -> None:
        """Set the probability for the coming optimizer step."""
        p = self.schedule(step)
        _check_prob(f"schedule({step})", p)
        self.prob = float(p)

    def forward(
        self,
        src: Int[Tensor, "batch src_pos"],
        tgt: Int[Tensor, "batch pos"],
        labels: Int[Tensor, "batch pos"] | None = None,
        src_mask: Int[Tensor, "batch src_pos"] | None = None,
        return_type: str | None = "loss",
        label_smoothing: float = 0.0,
    ) -> Any:
        kwargs = dict(src=src, src_mask=src_mask, return_type=return_type, label_smoothing=label_smoothing)
        if not self.training:
            return self.model(tgt=tgt, labels=labels, **kwargs)
        if self.prob is None:
            raise RuntimeError("ScheduledSampling has no sampling probability yet: pass the wrapper in the "
                               "Trainer's callbacks too (Trainer(ss, data, callbacks=[ss])), or set ss.prob")
        if labels is None:
            raise ValueError("scheduled sampling needs labels (the gold targets of every decoder position)")
        if self.prob == 0.0:
            return self.model(tgt=tgt, labels=labels, **kwargs)
        with torch.no_grad():
            first = self.model(src=src, tgt=tgt, src_mask=src_mask, return_type="logits")
        mixed = mix_predictions(tgt, first, labels, self.prob, self.mode)
        return self.model(tgt=mixed, labels=labels, **kwargs)
