"""claims.exposure_bias: verdicts on hand-made tables, the per-position measurement, and the --quick pipeline."""

import pandas as pd
import pytest
import torch

from analyses.claims.exposure_bias import STUDY, accuracy_by_position, per_run
from tests.analyses.claims.recipe_tables import SEEDS, check_quick_run, outcomes

POSITIONS = range(6)


def table(tf_free=lambda t, s: 0.95 - 0.02 * t - 0.001 * s, ss_free=lambda t, s: 0.94 - 0.004 * t - 0.001 * s):
    """Teacher-forced accuracy 0.95 (teacher forcing) and 0.94 (scheduled sampling) at every position; free-running
    accuracy by (position, seed) from the two functions."""
    rows = []
    for method, forced, free in (("teacher_forcing", 0.95, tf_free), ("scheduled_sampling", 0.94, ss_free)):
        rows += [{"method": method, "seed": s, "position": t, "forced_acc": forced, "free_acc": free(t, s)}
                 for s in SEEDS for t in POSITIONS]
    return pd.DataFrame(rows)


def test_the_base_table_supports_every_claim():
    assert set(outcomes(STUDY, table()).values()) == {"supported"}


@pytest.mark.parametrize(("claim", "changes", "outcome"), [
    ("free_running_worse", {"tf_free": lambda t, s: 0.96 + 0.001 * s}, "refuted"),
    ("free_running_worse", {"tf_free": lambda t, s: 0.95 + 0.05 * (s - 1)}, "inconclusive"),
    ("errors_compound", {"tf_free": lambda t, s: 0.7 + 0.02 * t + 0.001 * s}, "refuted"),
    ("errors_compound", {"tf_free": lambda t, s: 0.9 + 0.02 * t * (s - 1)}, "inconclusive"),
    ("ss_narrows_gap", {"ss_free": lambda t, s: 0.94 - 0.05 * t - 0.001 * s}, "refuted"),
    ("ss_narrows_gap", {"ss_free": lambda t, s: 0.94 - 0.04 * t * s}, "inconclusive"),
    ("ss_helps_free_running", {"ss_free": lambda t, s: 0.5 - 0.001 * s}, "refuted"),
    ("ss_helps_free_running", {"ss_free": lambda t, s: 0.9 - 0.08 * t * s / 2}, "inconclusive"),
])
def test_each_claim_can_be_refuted_and_left_open(claim, changes, outcome):
    assert outcomes(STUDY, table(**changes))[claim] == outcome


def test_per_run_gap_and_slope_by_hand():
    t = pd.DataFrame({"method": ["m"] * 3, "seed": [0] * 3, "position": [0, 1, 2], "forced_acc": [1.0, 1.0, 1.0],
                      "free_acc": [1.0, 0.9, 0.8]})
    r = per_run(t).iloc[0]
    assert r["gap"] == pytest.approx(0.1) and r["slope"] == pytest.approx(0.1) and r["rows"] == [0, 1, 2]


class FakeSeq2Seq:
    """Teacher-forced predictions and a free-running decode fixed in advance."""

    def __init__(self, forced, free):
        self.forced, self.free = forced, free

    def eval(self):
        return self

    def __call__(self, src, tgt, src_mask):
        return torch.nn.functional.one_hot(self.forced, 10).float()

    def generate(self, src, max_new_tokens, src_mask):
        return self.free  # starts with bos; may stop early


def test_accuracy_by_position_by_hand():
    labels = torch.tensor([[5, 6, 2], [7, 2, -100]])
    batch = {"src": torch.zeros(2, 2, dtype=torch.long), "src_mask": torch.ones(2, 2), "tgt": labels.clamp_min(0),
             "labels": labels}
    forced = torch.tensor([[5, 6, 2], [7, 3, 9]])  # everything right except row 1, position 1
    free = torch.tensor([[1, 5, 4], [1, 7, 2]])  # stops after two tokens: row 0 misses position 1 and eos
    tf, fr = accuracy_by_position(FakeSeq2Seq(forced, free), batch)
    assert tf.tolist() == [1.0, 0.5, 1.0]  # position 2 scores row 0 only
    assert fr.tolist() == [1.0, 0.5, 0.0]


def test_quick_run(tmp_path):
    table = check_quick_run(STUDY, tmp_path, 2 * 6, {"method", "seed", "position", "forced_acc", "free_acc",
                                                     "cpu_s"})
    first = table[table["position"] == 0]
    assert (first["forced_acc"] == first["free_acc"]).all()  # the first output has no prefix to differ in
