"""claims.causal_mask: verdicts on hand-made tables; the look-ahead measure on a hand-made pattern; quick run."""

import pandas as pd
import pytest
import torch

from analyses.claims import causal_mask
from probe import Transformer, TransformerConfig
from tests.analyses.claims.arch_cases import cases, check, quick_run

SCALES = {"unmasked_teacher_forced_loss_collapses": 0.05, "unmasked_looks_ahead": 0.2,
          "unmasked_generation_fails": 0.1}


def build(v: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for seed in range(3):
        rows.append(dict(masked=True, seed=seed, teacher_forced_loss=0.5, look_ahead=0.0,
                         free_running_accuracy=0.9))
        rows.append(dict(masked=False, seed=seed, teacher_forced_loss=v["unmasked_teacher_forced_loss_collapses"][seed],
                         look_ahead=v["unmasked_looks_ahead"][seed],
                         free_running_accuracy=0.9 - v["unmasked_generation_fails"][seed]))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim_id, outcome", cases(causal_mask.STUDY))
def test_verdicts_on_hand_made_tables(claim_id, outcome):
    check(causal_mask.STUDY, build, claim_id, outcome, SCALES)


def test_look_ahead_is_the_mass_answer_positions_put_on_later_keys():
    model = Transformer(TransformerConfig(n_layers=1, d_model=8, n_heads=2, d_vocab=5, n_ctx=5, causal_mask=False))
    pattern = torch.zeros(1, 2, 5, 5)
    pattern[0, 0] = torch.eye(5)  # head 0 looks at itself
    pattern[0, 1, torch.arange(4), torch.arange(1, 5)] = 0.75  # head 1: 3/4 on the next position
    pattern[0, 1, torch.arange(5), torch.arange(5)] += torch.tensor([0.25, 0.25, 0.25, 0.25, 1.0])
    model.blocks[0].attn.hook_pattern.add_hook(lambda t, hook: pattern, is_permanent=True)
    assert causal_mask.look_ahead(model, torch.zeros(1, 5, dtype=torch.long), half=2) == pytest.approx(0.75)


def test_quick_run(tmp_path):
    result = quick_run(causal_mask.STUDY, tmp_path, {"masked", "teacher_forced_loss", "free_running_accuracy",
                                                     "look_ahead"})
    assert sorted(result.table["masked"]) == [False, True]
