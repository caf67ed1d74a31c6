"""claims.qk_separate: verdicts on hand-made tables; the self / previous attention measure; quick run."""

import pandas as pd
import pytest
import torch

from analyses.claims import qk_separate
from probe import Transformer, TransformerConfig
from tests.analyses.claims.arch_cases import cases, check, quick_run

SCALES = {"tied_fails": 0.05, "untied_beats_tied": 0.05, "tied_attends_to_itself": 0.1}


def build(v: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for seed in range(3):
        tied_acc = v["tied_fails"][seed]
        rows.append(dict(tied=True, seed=seed, accuracy=tied_acc, attn_self=0.4 + v["tied_attends_to_itself"][seed],
                         attn_previous=0.4))
        rows.append(dict(tied=False, seed=seed, accuracy=tied_acc + v["untied_beats_tied"][seed], attn_self=0.0,
                         attn_previous=1.0))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim_id, outcome", cases(qk_separate.STUDY))
def test_verdicts_on_hand_made_tables(claim_id, outcome):
    check(qk_separate.STUDY, build, claim_id, outcome, SCALES)


def test_self_and_previous_read_the_pattern_diagonals():
    model = Transformer(TransformerConfig(arch="encoder", head="token", n_layers=1, d_model=8, n_heads=2, d_vocab=5,
                                          n_ctx=4, seed=0))
    pattern = torch.zeros(1, 2, 4, 4)
    pattern[0, 0] = torch.eye(4)  # head 0: itself
    pattern[0, 1, torch.arange(1, 4), torch.arange(0, 3)] = 1.0  # head 1: the previous position
    model.blocks[0].attn.hook_pattern.add_hook(lambda t, hook: pattern, is_permanent=True)
    own, previous = qk_separate.self_and_previous(model, torch.zeros(1, 4, dtype=torch.long))
    assert own.tolist() == [1.0, 0.0] and previous.tolist() == [0.0, 1.0]


def test_quick_run(tmp_path):
    result = quick_run(qk_separate.STUDY, tmp_path, {"tied", "accuracy", "attn_self", "attn_previous"})
    assert sorted(result.table["tied"]) == [False, True]
