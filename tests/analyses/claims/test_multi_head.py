"""claims.multi_head: verdicts on hand-made tables; parameter and FLOP counts; quick run."""

import pandas as pd
import pytest
import torch

from analyses.claims import multi_head
from tests.analyses.claims.arch_cases import cases, check, quick_run

SCALES = {c.id: 0.05 for c in multi_head.CLAIMS} | {"equal_cost": 5e-10}


def build(v: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for seed in range(3):
        acc1 = v["one_head_fails"][seed]
        for h in multi_head.CONFIG.heads:
            off = 1.0 if h == 1 else 1.0 + v["equal_cost"][seed]
            acc = acc1 if h == 1 else acc1 + v[f"h{h}_beats_one"][seed]
            rows.append(dict(n_heads=h, seed=seed, n_params=10_000 * off, flops=2e6, accuracy=acc))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim_id, outcome", cases(multi_head.STUDY))
def test_verdicts_on_hand_made_tables(claim_id, outcome):
    check(multi_head.STUDY, build, claim_id, outcome, SCALES)


def test_cost_counts_parameters_and_the_attention_matmuls():
    one, four = (multi_head._model(h, 32, 8, 6, seed=0) for h in (1, 4))
    tokens = torch.randint(0, 8, (1, 6))
    (p1, f1), (p4, f4) = multi_head.cost(one, tokens), multi_head.cost(four, tokens)
    assert p1 == p4 == sum(p.numel() for p in one.parameters())
    T, d, m, V = 6, 32, 128, 8  # qkv + out projections, scores + values, MLP, unembed: 2 flops per multiply-add
    assert f1 == f4 == 2 * (T * d * 3 * d + T * d * d + 2 * T * T * d + 2 * T * d * m + T * d * V)


def test_quick_run(tmp_path):
    result = quick_run(multi_head.STUDY, tmp_path, {"n_heads", "d_head", "n_params", "flops", "accuracy"})
    assert sorted(result.table["n_heads"]) == [1, 2, 4, 8]


def test_first_and_previous_read_the_pattern():
    model = multi_head._model(2, 16, 8, 5, seed=0)
    pattern = torch.zeros(1, 2, 5, 5)
    pattern[0, 0, :, 0] = 1.0  # head 0: the first position
    pattern[0, 1, 0, 0] = 1.0
    pattern[0, 1, torch.arange(1, 5), torch.arange(0, 4)] = 1.0  # head 1: the previous position
    model.blocks[0].attn.hook_pattern.add_hook(lambda t, hook: pattern, is_permanent=True)
    first, previous = multi_head.first_and_previous(model, torch.zeros(1, 5, dtype=torch.long))
    assert first.tolist() == [1.0, 0.0] and previous.tolist() == [0.0, 1.0]
