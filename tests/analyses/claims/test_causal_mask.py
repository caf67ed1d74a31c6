"""claims.causal_mask: verdicts on hand-made tables; the look-ahead and past-only measures by hand; quick run."""

import pandas as pd
import pytest
import torch

from analyses.claims import causal_mask
from probe import Transformer, TransformerConfig
from tests.analyses.claims.arch_cases import cases, check, quick_run

SCALES = {c.id: 0.05 if "collapses" in c.id else 0.2 if "looks_ahead" in c.id else 0.1 for c in causal_mask.CLAIMS}


def build(v: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for task in causal_mask.TASKS:
        for seed in range(3):
            rows.append(dict(task=task, masked=True, seed=seed, teacher_forced_loss=0.5, look_ahead=0.0,
                             past_only_accuracy=0.9))
            rows.append(dict(task=task, masked=False, seed=seed,
                             teacher_forced_loss=v[f"{task}_teacher_forced_loss_collapses"][seed],
                             look_ahead=v[f"{task}_looks_ahead"][seed],
                             past_only_accuracy=0.9 - v[f"{task}_generation_fails"][seed]))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim_id, outcome", cases(causal_mask.STUDY))
def test_verdicts_on_hand_made_tables(claim_id, outcome):
    check(causal_mask.STUDY, build, claim_id, outcome, SCALES)


def test_look_ahead_is_the_mass_scored_positions_put_on_later_keys():
    model = Transformer(TransformerConfig(n_layers=1, d_model=8, n_heads=2, d_vocab=5, n_ctx=5, causal_mask=False))
    pattern = torch.zeros(1, 2, 5, 5)
    pattern[0, 0] = torch.eye(5)  # head 0 looks at itself
    pattern[0, 1, torch.arange(4), torch.arange(1, 5)] = 0.75  # head 1: 3/4 on the next position
    pattern[0, 1, torch.arange(5), torch.arange(5)] += torch.tensor([0.25, 0.25, 0.25, 0.25, 1.0])
    model.blocks[0].attn.hook_pattern.add_hook(lambda t, hook: pattern, is_permanent=True)
    assert causal_mask.look_ahead(model, torch.zeros(1, 5, dtype=torch.long), slice(2, 4)) == pytest.approx(0.75)


def test_past_only_accuracy_never_lets_a_position_see_later_tokens():
    def reads_the_future(tokens):  # logits that pick the token at t + 1 (its own token at the last position)
        return torch.nn.functional.one_hot(torch.cat([tokens[:, 1:], tokens[:, -1:]], 1), 4).float()

    tokens = torch.tensor([[0, 1, 2, 3, 0, 1]])
    labels = torch.tensor([[1, 2, 3, 0, 1, -100]])
    assert reads_the_future(tokens).argmax(-1)[0, :5].tolist() == labels[0, :5].tolist()  # perfect when it sees all
    assert causal_mask.past_only_accuracy(reads_the_future, tokens, labels) == 0.0

    def echoes(tokens):  # logits that pick the current token: the same with or without the future
        return torch.nn.functional.one_hot(tokens, 4).float()

    assert causal_mask.past_only_accuracy(echoes, tokens, tokens) == 1.0


def test_quick_run(tmp_path):
    result = quick_run(causal_mask.STUDY, tmp_path, {"task", "masked", "teacher_forced_loss", "past_only_accuracy",
                                                     "look_ahead"})
    assert set(result.table["task"]) == set(causal_mask.TASKS)
