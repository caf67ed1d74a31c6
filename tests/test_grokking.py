"""probe.grokking: restricted and excluded loss on hand-built logits, the spectrum and weight norm of a model,
and ProgressMeasures as a recordable fn(model, step) -> dict."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from probe.config import TransformerConfig
from probe.data.modular import modular_addition
from probe.grokking import (
    ProgressMeasures,
    embedding_spectrum,
    excluded_loss,
    first_step,
    logits_on_all_pairs,
    phase_boundaries,
    restricted_loss,
    weight_norm,
)
from probe.models.transformer import Transformer

P = 13


def trig_logits(p, freqs, scale=4.0):
    """logits[a * p + b, c] = scale * sum_k cos(w_k (a + b - c)) + 1: the grokked algorithm's output."""
    a, b = torch.arange(p).repeat_interleave(p), torch.arange(p).repeat(p)
    c = torch.arange(p)
    angle = 2 * math.pi * ((a + b)[:, None] - c[None]).double() / p
    logits = sum(scale * torch.cos(k * angle) for k in freqs) + 1.0
    return logits, (a + b) % p


def test_restricted_loss_of_key_frequency_logits_equals_the_full_loss():
    logits, answers = trig_logits(P, [2, 5])
    full = F.cross_entropy(logits, answers).item()
    assert restricted_loss(logits, answers, [2, 5]) == pytest.approx(full, rel=1e-9)
    assert restricted_loss(logits, answers, [2, 5, 6]) == pytest.approx(full, rel=1e-9)  # extra ones change nothing
    # keeping only frequency 2 drops the k = 5 term: the loss of scale * cos(w_2 (a + b - c)) alone
    only_2, _ = trig_logits(P, [2])
    assert restricted_loss(logits, answers, [2]) == pytest.approx(F.cross_entropy(only_2, answers).item(), rel=1e-9)


def test_restricted_loss_removes_what_is_not_a_function_of_a_plus_b():
    logits, answers = trig_logits(P, [3])
    a = torch.arange(P).repeat_interleave(P)
    memorised = 5.0 * (a[:, None] == torch.arange(P)[None]).double()  # a lookup "c = a": a function of a only
    assert restricted_loss(logits + memorised, answers, [3]) == pytest.approx(
        F.cross_entropy(logits + 5.0 / P, answers).item(), rel=1e-9)  # only its mean over (a, b) survives


def test_excluded_loss_is_chance_without_the_key_frequencies_and_unchanged_without_others():
    logits, answers = trig_logits(P, [2, 5])
    train = torch.zeros(P * P, dtype=torch.bool)
    train[::3] = True
    # removing both key frequencies leaves the constant: uniform logits, loss ln p
    assert excluded_loss(logits, answers, [2, 5], train) == pytest.approx(math.log(P), rel=1e-9)
    # removing an unused frequency leaves the training loss unchanged
    full_train = F.cross_entropy(logits[train], answers[train]).item()
    assert excluded_loss(logits, answers, [4], train) == pytest.approx(full_train, rel=1e-9)
    # removing one of two lowers the margin: the loss rises
    assert excluded_loss(logits, answers, [5], train) > full_train + 0.1


def test_losses_refuse_bad_shapes():
    logits, answers = trig_logits(P, [1])
    with pytest.raises(ValueError, match="logits must be"):
        restricted_loss(logits[:-1], answers[:-1], [1])
    with pytest.raises(ValueError, match="train_mask"):
        excluded_loss(logits, answers, [1], torch.zeros(P * P, dtype=torch.bool))


def small_model(task, seed=0):
    return Transformer(TransformerConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32, act_fn="relu",
                                         normalization_type=None, seed=seed, **task.model_fields()))


def test_model_measures_read_the_number_embedding_and_every_weight():
    task = modular_addition(P, 0.3)
    model = small_model(task)
    x = torch.arange(P, dtype=torch.float32)
    with torch.no_grad():
        model.W_E.zero_()
        model.W_E[:P, 0] = torch.cos(2 * math.pi * 4 * x / P)
        model.W_E[P, :] = 100.0  # the "=" token is not a number: left out of the spectrum
    spectrum = embedding_spectrum(model, P)
    assert spectrum.argmax().item() == 4 and spectrum[4].item() == pytest.approx(P / 2, rel=1e-5)
    assert spectrum.sum().item() == pytest.approx(P / 2, rel=1e-5)
    assert weight_norm(model) == pytest.approx(sum(p.pow(2).sum().item() for p in model.parameters()), rel=1e-6)
    logits = logits_on_all_pairs(model, task)
    assert logits.shape == (P * P, P)
    torch.testing.assert_close(logits[7 * P + 2], model(torch.tensor([[7, 2, P]]))[0, -1])


def test_progress_measures_are_a_recordable_dict_and_agree_with_the_functions():
    task = modular_addition(P, 0.3)
    model = small_model(task)
    fixed = ProgressMeasures(task, key_freqs=[1, 3])(model, step=0)
    logits = logits_on_all_pairs(model, task)
    assert fixed["restricted_loss"] == pytest.approx(restricted_loss(logits, task.answers, [1, 3]))
    assert fixed["excluded_loss"] == pytest.approx(excluded_loss(logits, task.answers, [1, 3], task.train_mask))
    train = task.train_mask
    assert fixed["train_acc"] == pytest.approx((logits[train].argmax(-1) == task.answers[train]).float().mean().item())
    assert fixed["spectrum"].shape == (P // 2 + 1,) and fixed["key_now"].shape == (P // 2 + 1,)
    share = fixed["spectrum"][[1, 3]].sum() / fixed["spectrum"][1:].sum()
    assert fixed["key_share"] == pytest.approx(float(share))
    online = ProgressMeasures(task, mass=0.5)(model, step=0)
    keys = online["key_now"].nonzero().flatten().tolist()
    assert online["restricted_loss"] == pytest.approx(restricted_loss(logits, task.answers, keys))
    assert online["key_share"] >= 0.5
    with pytest.raises(ValueError, match="key_freqs"):
        ProgressMeasures(task, key_freqs=[0])


def test_first_step_finds_the_event_or_nan():
    assert first_step([0, 10, 20, 30], [False, False, True, True]) == 20
    assert math.isnan(first_step([0, 10], [False, False]))
    with pytest.raises(ValueError, match="same length"):
        first_step([0, 10], [True])


STEPS = np.arange(0, 1000, 100)
#                   0     100   200   300   400   500   600   700   800   900
TRAIN_ACC = np.array([0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
TEST_ACC = np.array([0.0, 0.0, 0.05, 0.05, 0.06, 0.08, 0.3, 0.9, 1.0, 1.0])
TEST_LOSS = np.array([2.5, 9.0, 15.0, 3.0, 14.0, 6.0, 1.5, 0.2, 0.01, 0.01])  # chance ln(13) = 2.56


def test_phase_boundaries_follow_the_stated_rule():
    phases = phase_boundaries(STEPS, TRAIN_ACC, TEST_ACC, TEST_LOSS, p=13)
    # memorised: train acc reaches 0.99 at 200; generalised: test acc at 800; cleanup: the test loss is above
    # chance for the last time before 800 at 500 (the dip to 3.0 at 300 is followed by another rise)
    assert phases == {"memorised": 200.0, "cleanup": 500.0, "generalised": 800.0}


def test_phase_boundaries_of_runs_that_never_generalise_or_never_memorise_are_nan():
    never = phase_boundaries(STEPS, TRAIN_ACC, np.minimum(TEST_ACC, 0.5), TEST_LOSS, p=13)
    assert never["memorised"] == 200 and math.isnan(never["cleanup"]) and math.isnan(never["generalised"])
    unfit = phase_boundaries(STEPS, TRAIN_ACC * 0.9, TEST_ACC, TEST_LOSS, p=13)
    assert all(math.isnan(v) for v in unfit.values())


def test_cleanup_starts_at_memorisation_when_the_test_loss_stays_below_chance():
    phases = phase_boundaries(STEPS, TRAIN_ACC, TEST_ACC, np.full(10, 1.0), p=13)
    assert phases["cleanup"] == phases["memorised"] == 200


def test_losses_take_the_logits_as_a_grid_too():
    logits, answers = trig_logits(P, [2, 5])
    train = torch.arange(P * P) % 2 == 0
    assert restricted_loss(logits.reshape(P, P, P), answers, [2]) == pytest.approx(
        restricted_loss(logits, answers, [2]))
    assert excluded_loss(logits.reshape(P, P, P), answers, [2], train) == pytest.approx(
        excluded_loss(logits, answers, [2], train))
