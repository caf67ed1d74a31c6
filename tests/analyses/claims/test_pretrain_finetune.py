"""claims.pretrain_finetune: verdicts on hand-made tables (with a decoy learning rate the dev set must reject),
the word-order task, and the quick pipeline."""

import math
import random

import pandas as pd
import pytest

from analyses.claims import _text
from analyses.claims import pretrain_finetune as study
from probe.study import run

SMALL, LARGE = 64, 1024


def table(acc: dict, forgetting: dict, decoy_forgetting: dict | None = None) -> pd.DataFrame:
    """acc[(init, unfreeze, n_train)] and forgetting[unfreeze]: per-seed values at the rate the dev set prefers;
    every run also has a decoy rate with a worse dev accuracy but a perfect test accuracy, and forgetting
    `decoy_forgetting[unfreeze]` (default: the same as at the chosen rate)."""
    rows = []
    for (init, unfreeze, n), values in acc.items():
        for seed, value in enumerate(values):
            f = forgetting[unfreeze][seed] if init == "pretrained" else math.nan
            decoy = decoy_forgetting[unfreeze][seed] if decoy_forgetting and init == "pretrained" else f
            rows.append(dict(init=init, unfreeze=unfreeze, n_train=n, seed=seed, lr=3e-3, dev_acc=0.5,
                             test_acc=1.0, forgetting=decoy))
            rows.append(dict(init=init, unfreeze=unfreeze, n_train=n, seed=seed, lr=1e-3, dev_acc=0.8,
                             test_acc=value, forgetting=f))
    return pd.DataFrame(rows)


def accs(pre_small, scratch_small, grad_small, pre_large, scratch_large):
    return {("pretrained", "all", SMALL): pre_small, ("scratch", "all", SMALL): scratch_small,
            ("pretrained", "gradual", SMALL): grad_small, ("pretrained", "all", LARGE): pre_large,
            ("scratch", "all", LARGE): scratch_large, ("pretrained", "gradual", LARGE): pre_large}


CASES = {
    "supported": (accs([.90, .92, .91], [.60, .62, .61], [.89, .90, .90], [.97, .98, .97], [.90, .91, .90]),
                  {"all": [.50, .60, .55], "gradual": [.10, .12, .11]}),
    "refuted": (accs([.60, .61, .60], [.90, .91, .92], [.90, .95, .92], [.80, .81, .80], [.95, .96, .95]),
                {"all": [.10, .10, .12], "gradual": [.50, .55, .60]}),
    "inconclusive": (accs([.70, .90, .50], [.70, .70, .70], [.70, .95, .45], [.80, .95, .65], [.80, .80, .80]),
                     {"all": [.30, .50, .10], "gradual": [.30, .30, .30]}),
}


@pytest.mark.parametrize("outcome", CASES)
def test_every_claim_flips_with_the_table(outcome):
    verdicts = study.verdicts(table(*CASES[outcome]))
    assert [v.claim.id for v in verdicts] == [c.id for c in study.CLAIMS]
    assert [v.outcome for v in verdicts] == [outcome] * 5
    assert all(v.n == 3 for v in verdicts)


def test_forgetting_at_matched_rates_can_disagree_with_forgetting_at_chosen_rates():
    acc, forgetting = CASES["supported"]
    # at the chosen rate all-at-once forgets more; at the decoy rate it forgets far less than gradual
    t = table(acc, forgetting, decoy_forgetting={"all": [.1, .1, .1], "gradual": [1.0, 1.1, 1.0]})
    by_id = {v.claim.id: v for v in study.verdicts(t)}
    assert by_id["gradual_forgets_less_tuned"].outcome == "supported"
    assert by_id["gradual_forgets_less"].outcome == "refuted"
    expected = ((.50 - .10 + .1 - 1.0) + (.60 - .12 + .1 - 1.1) + (.55 - .11 + .1 - 1.0)) / 6
    assert by_id["gradual_forgets_less"].estimate == pytest.approx(expected)


def test_the_learning_rate_is_chosen_on_the_dev_set_not_the_test_set():
    t = table(*CASES["supported"])
    best = study.chosen(t)
    assert len(best) == len(t) // 2 and (best["lr"] == 1e-3).all()
    v = study.verdicts(t)[0]
    assert v.estimate == pytest.approx(0.30) and len(v.rows) == 12  # both rates of both variants at n=64


def test_word_order_task_swaps_two_different_words_and_balances_labels():
    rng = random.Random(0)
    s = "The farmer sees a red boat."
    swapped = _text.swap_two_words(s, rng)
    assert swapped != s and sorted(swapped.rstrip(".").split()) == sorted(s.rstrip(".").split())
    spec = _text.train(1000)
    data = _text.word_order_task(200, seed=5, spec=spec, n_ctx=32)
    assert data["tokens"].shape == (200, 32) and 0.35 < data["labels"].float().mean() < 0.65
    lengths = data["attention_mask"].sum(1)
    assert (data["tokens"][data["attention_mask"] == 0] == 0).all() and lengths.min() >= 4
    with pytest.raises(ValueError, match="more than n_ctx=4"):
        _text.word_order_task(5, seed=5, spec=spec, n_ctx=4)


def test_quick_run_writes_the_report(tmp_path):
    result = run(study.STUDY, quick=True, out=tmp_path)
    t = result.table
    assert set(t["init"]) == {"scratch", "pretrained"} and set(t["n_train"]) == {8, 16}
    assert len(t) == 6 and t[t["init"] == "scratch"]["forgetting"].isna().all()
    assert t[t["init"] == "pretrained"]["forgetting"].notna().all()
    assert {v.claim.id for v in result.verdicts} == {c.id for c in study.CLAIMS}
    assert (tmp_path / "report.md").is_file() and (tmp_path / "pretrain_finetune.png").is_file()
