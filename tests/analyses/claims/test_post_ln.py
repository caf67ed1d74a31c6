"""claims.post_ln: verdicts on hand-made tables (supported / refuted / inconclusive for every claim); quick run."""

import pandas as pd
import pytest

from analyses.claims import post_ln
from tests.analyses.claims.arch_cases import cases, check, quick_run

SCALES = {c.id: 0.5 if "_grad_" in c.id else 0.05 for c in post_ln.CLAIMS}


def build(values: dict[str, list[float]]) -> pd.DataFrame:
    """Init rows whose per-block gradient norms grow geometrically by the given factor; train rows whose loss
    without warmup exceeds the loss with it by the given difference."""
    rows = []
    for claim in post_ln.CLAIMS:
        placement = claim.id.split("_")[0]
        for seed, value in enumerate(values[claim.id]):
            if "_grad_" in claim.id:
                depth = int(claim.id.rsplit("_", 1)[1])
                rows += [dict(part="init", placement=placement, n_layers=depth, seed=seed, layer=i,
                              grad_norm=0.3 * value ** (i / (depth - 1))) for i in range(depth)]
            else:
                lr = float(claim.id.rsplit("_lr", 1)[1])
                rows += [dict(part="train", placement=placement, lr=lr, warmup=w, seed=seed,
                              final_loss=2.0 + (0.0 if w else value)) for w in (True, False)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim_id, outcome", cases(post_ln.STUDY))
def test_verdicts_on_hand_made_tables(claim_id, outcome):
    check(post_ln.STUDY, build, claim_id, outcome, SCALES)


def test_growth_reads_the_log_linear_fit_per_seed():
    table = build({c.id: [2.0, 3.0, 4.0] for c in post_ln.CLAIMS})
    values, rows = post_ln.growth(table, "post", 12)
    assert values == pytest.approx([2.0, 3.0, 4.0]) and len(rows) == 36


def test_quick_run(tmp_path):
    result = quick_run(post_ln.STUDY, tmp_path, {"part", "placement", "layer", "grad_norm", "final_loss", "cpu_s"})
    assert set(result.table["part"]) == {"init", "train"}
