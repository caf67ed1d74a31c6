"""probe.ops.calibration: ECE on a hand-computed case, the vectorised bins against the loop, bad input."""

import math

import pytest
import torch

from probe.ops.calibration import expected_calibration_error, reliability, reliability_naive


def two_class_logits(confidences, predicted):
    """Logits whose softmax puts `confidence` on the class `predicted` (two classes)."""
    rows = []
    for c, k in zip(confidences, predicted):
        p = [1 - c, 1 - c]
        p[k] = c
        rows.append([math.log(v) for v in p])
    return torch.tensor(rows, dtype=torch.float64)


def test_ece_of_a_hand_computed_case():
    # confidence 0.85 twice (one right, one wrong), 0.65 twice (both right), 10 bins:
    # bin (0.8, 0.9]: |0.5 - 0.85| * 2/4 = 0.175; bin (0.6, 0.7]: |1 - 0.65| * 2/4 = 0.175
    logits = two_class_logits([0.85, 0.85, 0.65, 0.65], [0, 0, 1, 1])
    labels = torch.tensor([0, 1, 1, 1])
    assert expected_calibration_error(logits, labels, n_bins=10) == pytest.approx(0.35)
    count, conf, acc = reliability(logits, labels, n_bins=10)
    assert count.tolist() == [0, 0, 0, 0, 0, 0, 2, 0, 2, 0]
    assert conf[8] == pytest.approx(0.85) and acc[8] == 0.5 and acc[6] == 1.0


def test_confident_and_right_is_calibrated_and_confident_and_wrong_is_not():
    logits = torch.tensor([[20.0, 0.0, 0.0]] * 5)
    assert expected_calibration_error(logits, torch.zeros(5, dtype=torch.long)) == pytest.approx(0.0, abs=1e-8)
    assert expected_calibration_error(logits, torch.ones(5, dtype=torch.long)) == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("n_bins", [1, 7, 15])
def test_vectorised_bins_match_the_loop(n_bins):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(999, 6, generator=g) * 2
    labels = torch.randint(0, 6, (999,), generator=g)
    for fast, slow in zip(reliability(logits, labels, n_bins), reliability_naive(logits, labels, n_bins)):
        torch.testing.assert_close(fast, slow)


def test_bad_input_is_refused():  # (shapes through the unannotated reference: the tests type-check annotations)
    with pytest.raises(ValueError, match="logits must be"):
        reliability_naive(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be"):
        reliability_naive(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="n_bins=0"):
        expected_calibration_error(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), n_bins=0)
    with pytest.raises(ValueError, match="at least one"):
        expected_calibration_error(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
