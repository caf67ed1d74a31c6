"""claims.residual: verdicts on hand-made tables; the unigram baseline by hand; quick run."""

import math

import pandas as pd
import pytest
import torch

from analyses.claims import residual
from probe.train.batches import DictDataset
from tests.analyses.claims.arch_cases import cases, check, quick_run

SCALES = {c.id: 0.05 if "grad" in c.id else 0.2 for c in residual.CLAIMS}


def build(v: dict[str, list[float]]) -> pd.DataFrame:
    deep, shallow = max(residual.CONFIG.depths), min(residual.CONFIG.depths)
    rows = []
    for depth in residual.CONFIG.depths:
        for seed in range(3):
            share = {deep: v[f"nores_deep_fails_{deep}"], shallow: v[f"nores_shallow_trains_{shallow}"]}
            no_res_loss = 3.0 - share[depth][seed] if depth in share else 2.5
            ratio = {True: v[f"res_grad_reaches_first_{deep}"][seed], False: v[f"nores_grad_vanishes_{deep}"][seed]}
            for res in (True, False):
                rows.append(dict(residual=res, n_layers=depth, seed=seed, unigram_loss=3.0,
                                 final_loss=2.0 if res else no_res_loss,
                                 grad_ratio=ratio[res] if depth == deep else 1.0))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim_id, outcome", cases(residual.STUDY))
def test_verdicts_on_hand_made_tables(claim_id, outcome):
    check(residual.STUDY, build, claim_id, outcome, SCALES)


def test_unigram_loss_by_hand():
    train = DictDataset(labels=torch.tensor([[0, 0, 1, -100]]))
    held_out = DictDataset(labels=torch.tensor([[1, 2, -100]]))
    p = torch.tensor([3.0, 2.0, 1.0]) / 6  # add-one smoothed counts of 0, 1, 2
    expected = -(math.log(p[1]) + math.log(p[2])) / 2
    assert residual.unigram_loss(train, held_out, 3) == pytest.approx(expected)


def test_quick_run(tmp_path):
    result = quick_run(residual.STUDY, tmp_path, {"residual", "n_layers", "grad_ratio", "final_loss", "unigram_loss"})
    assert len(result.table) == 6
