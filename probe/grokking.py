"""Progress measures for grokking modular addition (Nanda et al. 2023, "Progress measures for grokking via
mechanistic interpretability", section 5.1), for any model trained on `probe.data.modular`.

- `restricted_loss`: keep only the key-frequency components of the logits (for every output c, their projection
  onto the constant and cos(w_k(a + b)), sin(w_k(a + b)) over the input grid), cross-entropy on all p^2 pairs.
  The paper restricts the MLP activations and maps them through W_out W_U; projecting the logits is the same
  operation on the neuron path and also keeps the key-frequency part of the direct path, so it needs no knowledge
  of the architecture.
- `excluded_loss`: remove exactly those components from the logits, cross-entropy on the training pairs.
- `embedding_spectrum`: the Fourier spectrum of the number tokens' embedding W_E[:p] (`probe.ops.fourier`); its
  `key_frequencies` are the fewest frequencies holding a given share of the non-constant power.
- `weight_norm`: the total sum of squared weights.
- `phase_boundaries`: the three phases of training (memorisation, circuit formation, cleanup) from recorded curves,
  by the rule in its docstring, and `first_step` for events such as "test accuracy reaches 0.99".

`ProgressMeasures(task, key_freqs)` bundles them as `fn(model, step) -> dict` (one forward over all pairs), the
form `probe.train.recorder.Recorder(custom={"grokking": ProgressMeasures(...)})` records. The paper fixes the key
frequencies to the final model's; with `key_freqs=None` they are re-derived from the embedding at every call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from probe.data.modular import ModularAddition
from probe.ops.fourier import fourier_spectrum, key_frequencies, n_frequencies, sum_projection


def _grid(logits: Tensor, answers: Tensor) -> tuple[Tensor, int]:
    p = logits.shape[-1]
    if logits.shape not in ((p * p, p), (p, p, p)):
        raise ValueError(f"logits must be [p * p, p] (pair a * p + b, output c) or [p, p, p], got "
                         f"{tuple(logits.shape)}")
    if answers.shape != (p * p,):
        raise ValueError(f"answers must be [p * p] = [{p * p}], got {tuple(answers.shape)}")
    return logits.reshape(p, p, p).double(), p


def cross_entropy(logits: Float[Tensor, "pair c"], answers: Int[Tensor, " pair"]) -> float:
    return F.cross_entropy(logits.double(), answers).item()


def restricted_loss(logits: Float[Tensor, "*pairs c"], answers: Int[Tensor, " pair"], key_freqs: Sequence[int],
                    ) -> float:
    """Cross-entropy over all pairs of the logits restricted to the constant and the key frequencies' sum
    directions cos(w_k(a + b)), sin(w_k(a + b))."""
    grid, p = _grid(logits, answers)
    return cross_entropy(sum_projection(grid, [0, *key_freqs]).reshape(p * p, p), answers)


def excluded_loss(logits: Float[Tensor, "*pairs c"], answers: Int[Tensor, " pair"], key_freqs: Sequence[int],
                  train_mask: Bool[Tensor, " pair"]) -> float:
    """Cross-entropy on the training pairs of the logits with the key frequencies' sum directions removed."""
    grid, p = _grid(logits, answers)
    if train_mask.shape != (p * p,) or train_mask.dtype != torch.bool or not train_mask.any():
        raise ValueError(f"train_mask must be a bool [p * p] = [{p * p}] with at least one training pair")
    kept = (grid - sum_projection(grid, list(key_freqs))).reshape(p * p, p)
    return cross_entropy(kept[train_mask], answers[train_mask])


@torch.no_grad()
def logits_on_all_pairs(model: nn.Module, task: ModularAddition) -> Float[Tensor, "pair c"]:
    """The model's logits at the "=" position for every pair (a * p + b), in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logits = model(task.tokens.to(device), return_type="logits")[:, -1].float().cpu()
    model.train(was_training)
    if logits.shape[-1] != task.p:
        raise ValueError(f"the model has {logits.shape[-1]} outputs, expected p={task.p} (d_vocab_out)")
    return logits


def embedding_spectrum(model: nn.Module, p: int) -> Float[Tensor, " k"]:
    """`fourier_spectrum` of the number tokens' embedding rows W_E[:p] (the "=" token is left out)."""
    return fourier_spectrum(model.W_E[:p].detach().double().cpu()).float()


def weight_norm(model: nn.Module) -> float:
    """The total sum of squared weights (every parameter)."""
    return float(sum(param.detach().double().pow(2).sum() for param in model.parameters()))


class ProgressMeasures:
    """`fn(model, step) -> dict` of every progress measure on `task`:

    train_loss, train_acc, test_loss, test_acc; restricted_loss (all pairs), excluded_loss (training pairs);
    weight_norm (sum of squared weights); spectrum [p // 2 + 1] (the embedding's power per frequency, index =
    frequency, 0 = constant); key_share (share of the non-constant power in the key frequencies); key_now
    [p // 2 + 1] (1 where a frequency is key in the current embedding under `mass`).

    `key_freqs` fixes the key frequencies (the paper: the final model's); None re-derives them from the current
    embedding (`key_frequencies(spectrum, mass)`) at every call.
    """

    def __init__(self, task: ModularAddition, key_freqs: Sequence[int] | None = None, mass: float = 0.9) -> None:
        if key_freqs is not None:
            key_freqs = [int(k) for k in key_freqs]
            bad = [k for k in key_freqs if not 1 <= k <= task.p // 2]
            if bad or not key_freqs:
                raise ValueError(f"key_freqs={key_freqs} must be a non-empty list of frequencies in [1, "
                                 f"{task.p // 2}]")
        if not 0.0 < mass <= 1.0:
            raise ValueError(f"mass={mass!r} must be in (0, 1]")
        self.task, self.key_freqs, self.mass = task, key_freqs, mass

    def __call__(self, model: nn.Module, step: int) -> dict[str, float | Tensor]:
        task = self.task
        logits = logits_on_all_pairs(model, task)
        answers, train = task.answers, task.train_mask
        correct = (logits.argmax(-1) == answers).float()
        spectrum = embedding_spectrum(model, task.p)
        now = key_frequencies(spectrum, self.mass)
        keys = self.key_freqs if self.key_freqs is not None else now
        key_now = torch.zeros(n_frequencies(task.p))
        key_now[now] = 1.0
        return {
            "train_loss": cross_entropy(logits[train], answers[train]),
            "test_loss": cross_entropy(logits[~train], answers[~train]),
            "train_acc": correct[train].mean().item(),
            "test_acc": correct[~train].mean().item(),
            "restricted_loss": restricted_loss(logits, answers, keys),
            "excluded_loss": excluded_loss(logits, answers, keys, train),
            "weight_norm": weight_norm(model),
            "spectrum": spectrum,
            "key_share": float(spectrum[keys].sum() / spectrum[1:].sum()),
            "key_now": key_now,
        }


def first_step(steps: Sequence[int] | np.ndarray, condition: Sequence[bool] | np.ndarray) -> float:
    """The first recorded step at which `condition` holds, NaN when it never does (the event is censored by the
    end of the run)."""
    steps, condition = np.asarray(steps), np.asarray(condition, dtype=bool)
    if steps.shape != condition.shape or steps.ndim != 1:
        raise ValueError(f"steps {steps.shape} and condition {condition.shape} must be 1-d of the same length")
    hits = np.flatnonzero(condition)
    return float(steps[hits[0]]) if hits.size else math.nan


def phase_boundaries(steps: Sequence[int] | np.ndarray, train_acc: Sequence[float] | np.ndarray,
                     test_acc: Sequence[float] | np.ndarray, test_loss: Sequence[float] | np.ndarray, p: int,
                     acc: float = 0.99) -> dict[str, float]:
    """Where memorisation, circuit formation and cleanup (Nanda et al. 2023, section 5.2) meet, from recorded curves.

    - `memorised`: the first step with train accuracy >= `acc` (memorisation ends, circuit formation begins);
    - `generalised`: the first step with test accuracy >= `acc` (cleanup ends);
    - `cleanup`: the last step before `generalised` (and not before `memorised`) at which the test loss is at or
      above chance, ln p: from there on the model is no longer confidently wrong on the test pairs and its test
      loss falls for good (circuit formation ends, cleanup begins). When the test loss is below chance all the
      way from `memorised` to `generalised`, cleanup begins at `memorised`.

    A boundary whose event did not happen within the run is NaN (as are those after it).
    """
    steps = np.asarray(steps)
    curves = {name: np.asarray(x, dtype=float) for name, x in
              (("train_acc", train_acc), ("test_acc", test_acc), ("test_loss", test_loss))}
    for name, x in curves.items():
        if x.shape != steps.shape or steps.ndim != 1:
            raise ValueError(f"{name} {x.shape} must be 1-d like steps {steps.shape}")
    if steps.size and np.any(np.diff(steps) <= 0):
        raise ValueError("steps must increase")
    memorised = first_step(steps, curves["train_acc"] >= acc)
    generalised = first_step(steps, (curves["test_acc"] >= acc) & (steps >= memorised)) \
        if not math.isnan(memorised) else math.nan
    cleanup = math.nan
    if not math.isnan(generalised):
        window = (steps >= memorised) & (steps < generalised) & (curves["test_loss"] >= math.log(p))
        cleanup = float(steps[window][-1]) if window.any() else memorised
    return {"memorised": memorised, "cleanup": cleanup, "generalised": generalised}
