"""claims.components: verdicts on hand-made tables; the attention ablation really removes attention; quick run."""

import pandas as pd
import pytest
import torch

from analyses.claims import _arch, components
from probe import Transformer, TransformerConfig
from tests.analyses.claims.arch_cases import cases, check, quick_run

SCALES = {c.id: 0.1 for c in components.CLAIMS}


def build(v: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for seed in range(3):
        rows.append(dict(variant="complete", seed=seed, final_loss=2.0))
        for claim in components.CLAIMS:
            rows.append(dict(variant=claim.id.removesuffix("_costs_loss"), seed=seed,
                             final_loss=2.0 + v[claim.id][seed]))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim_id, outcome", cases(components.STUDY))
def test_verdicts_on_hand_made_tables(claim_id, outcome):
    check(components.STUDY, build, claim_id, outcome, SCALES)


def test_zeroed_attention_output_makes_each_position_blind_to_the_others():
    model = Transformer(TransformerConfig(n_layers=2, d_model=16, n_heads=2, d_vocab=9, n_ctx=8, seed=0))
    _arch.with_hooks(model, [(f"blocks.{i}.hook_attn_out", _arch.zero_hook) for i in range(2)])
    tokens = torch.randint(0, 9, (1, 6))
    changed = tokens.clone()
    changed[0, 0] = (changed[0, 0] + 1) % 9
    torch.testing.assert_close(model(tokens)[:, 1:], model(changed)[:, 1:])  # no token sees another


def test_quick_run(tmp_path):
    result = quick_run(components.STUDY, tmp_path, {"variant", "final_loss", "n_params"})
    assert set(result.table["variant"]) == set(components.ABLATIONS)
