"""claims.mlm: verdicts on hand-made tables, the attention measurements on hand-computed patterns, the quick run."""

import pandas as pd
import pytest
import torch

from analyses.claims import mlm as study
from probe.study import run


def table(mass, enc_acc, blocked, causal_acc) -> pd.DataFrame:
    rows = []
    for seed in range(3):
        rows.append(dict(attention="bidirectional", seed=seed, right_mass=mass[seed], masked_acc=enc_acc[seed],
                         blocked_acc=blocked[seed]))
        rows.append(dict(attention="causal", seed=seed, right_mass=0.0, masked_acc=causal_acc[seed],
                         blocked_acc=causal_acc[seed]))
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "args, outcome",
    [
        (([.45, .46, .44], [.60, .62, .61], [.40, .41, .42], [.40, .42, .41]), "supported"),
        (([.05, .06, .04], [.40, .41, .42], [.50, .52, .51], [.60, .62, .61]), "refuted"),
        (([.05, .45, .25], [.50, .60, .40], [.50, .50, .50], [.50, .50, .50]), "inconclusive"),
    ],
)
def test_every_claim_flips_with_the_table(args, outcome):
    verdicts = study.verdicts(table(*args))
    assert [v.claim.id for v in verdicts] == [c.id for c in study.CLAIMS]
    assert [v.outcome for v in verdicts] == [outcome] * 3


def test_right_mass_and_block_future_on_hand_computed_patterns():
    uniform = torch.full((1, 1, 4, 4), 0.25)
    assert study.right_mass(uniform) == pytest.approx((3 + 2 + 1 + 0) / 4 / 4)
    causal = torch.tensor([[1.0, 0, 0], [0.5, 0.5, 0], [0.2, 0.3, 0.5]])[None, None]
    assert study.right_mass(causal) == 0.0
    scores = torch.zeros(2, 1, 3, 3)
    blocked = study.block_future(scores, None)
    assert torch.isinf(blocked[0, 0, 0, 1:]).all() and torch.isfinite(blocked[0, 0, 2]).all()
    assert torch.allclose(blocked.softmax(-1)[0, 0, 1], torch.tensor([0.5, 0.5, 0.0]))
    logits = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]])
    assert study.masked_accuracy(logits, torch.tensor([[1, -100, 1]])) == 0.5


def test_blocking_the_future_makes_an_encoder_causal():
    from probe import Transformer, TransformerConfig

    enc = Transformer(TransformerConfig(arch="encoder", head="token", d_model=16, n_heads=2, n_layers=2, d_vocab=9,
                                        n_ctx=8, seed=0)).eval()
    tokens = torch.randint(0, 9, (2, 6))
    changed = tokens.clone()
    changed[:, 4] = (changed[:, 4] + 1) % 9
    hooks = [(lambda n: n.endswith("hook_attn_scores"), study.block_future)]
    a, b = enc.run_with_hooks(tokens, fwd_hooks=hooks), enc.run_with_hooks(changed, fwd_hooks=hooks)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert (enc(tokens)[:, :4] - enc(changed)[:, :4]).abs().max() > 1e-4


def test_quick_run_writes_the_report(tmp_path):
    result = run(study.STUDY, quick=True, out=tmp_path)
    t = result.table
    assert sorted(t["attention"]) == ["bidirectional", "causal"]
    assert t[t["attention"] == "causal"]["right_mass"].item() == 0.0
    causal = t[t["attention"] == "causal"]
    assert causal["blocked_acc"].item() == causal["masked_acc"].item()  # a decoder is already causal
    assert (tmp_path / "mlm.png").is_file() and len(result.verdicts) == 3
