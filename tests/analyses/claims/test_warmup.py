"""claims.warmup: verdicts on hand-made tables, the largest-stable-lr rule, and the --quick pipeline."""

import math

import numpy as np
import pandas as pd
import pytest

from analyses.claims.warmup import STUDY, max_lr, trains, warmup_steps
from analyses.claims.warmup import Config as WarmupConfig
from tests.analyses.claims.recipe_tables import SEEDS, check_quick_run, outcomes

LRS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
BASE = {("post", False): [3e-3] * 3, ("post", True): [3e-2] * 3, ("pre", False): [1e-2] * 3,
        ("pre", True): [3e-2] * 3}


def table(largest: dict) -> pd.DataFrame:
    """Runs train (loss 1.2) up to the given largest lr per (norm, warmup) and seed; above it they end at the
    unigram loss (3.0), and at the top lr they diverge."""
    rows = []
    for (norm, warm), per_seed in largest.items():
        for seed, top in zip(SEEDS, per_seed):
            for lr in LRS:
                finite = lr < LRS[-1]
                nll = (1.2 + 0.01 * seed if lr <= top else 3.0) if finite else math.nan
                rows.append({"norm": norm, "warmup": warm, "lr": lr, "seed": seed, "nll": nll, "finite": finite,
                             "unigram_loss": 3.0})
    return pd.DataFrame(rows)


def test_the_base_table_supports_every_claim():
    assert set(outcomes(STUDY, table(BASE)).values()) == {"supported"}


@pytest.mark.parametrize(("claim", "change", "outcome"), [
    ("warmup_raises_max_lr_post", {("post", False): [3e-2] * 3}, "refuted"),
    ("warmup_raises_max_lr_post", {("post", False): [3e-2, 3e-3, 3e-2]}, "inconclusive"),
    ("warmup_raises_max_lr_pre", {("pre", False): [3e-2] * 3}, "refuted"),
    ("warmup_raises_max_lr_pre", {("pre", False): [3e-2, 1e-2, 3e-2]}, "inconclusive"),
    ("post_ln_needs_it_more", {("post", False): [1e-2] * 3, ("pre", False): [3e-3] * 3}, "refuted"),
    ("post_ln_needs_it_more", {("post", False): [1e-2, 3e-3, 3e-4]}, "inconclusive"),
])
def test_each_claim_can_be_refuted_and_left_open(claim, change, outcome):
    assert outcomes(STUDY, table({**BASE, **change}))[claim] == outcome


def test_trains_uses_the_midpoint_to_the_best_run_of_the_seed():
    t = pd.DataFrame({"seed": [0, 0, 0, 1], "nll": [1.0, 1.9, 2.1, 2.5], "finite": [True, True, True, True],
                      "unigram_loss": [3.0] * 4})
    # seed 0: threshold (3 + 1) / 2 = 2; seed 1: its own best 2.5 -> threshold 2.75
    assert trains(t).tolist() == [True, True, False, True]


def test_max_lr_reads_the_grid_and_falls_one_step_below_when_nothing_trains():
    t = table({("post", False): [1e-2, 1e-3, 3e-4], ("post", True): [3e-2] * 3})
    m = max_lr(t).set_index(["warmup", "seed"])["log10_max_lr"]
    step = np.log10(3e-3) - np.log10(1e-3)
    assert m[(False, 0)] == pytest.approx(-2) and m[(False, 1)] == pytest.approx(-3)
    assert m[(False, 2)] == pytest.approx(-3 - step)
    assert m[(True, 0)] == pytest.approx(np.log10(3e-2))


def test_warmup_lasts_two_over_one_minus_beta2():
    assert warmup_steps(WarmupConfig()) == 100
    assert warmup_steps(WarmupConfig(steps=50)) == 25


def test_quick_run(tmp_path):
    check_quick_run(STUDY, tmp_path, 2 * 2 * 2, {"norm", "warmup", "lr", "seed", "nll", "finite", "unigram_loss",
                                                 "cpu_s"})
