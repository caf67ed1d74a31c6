"""claims.dot_vs_additive: verdicts on hand-made tables; quick run."""

import pandas as pd
import pytest

from analyses.claims import dot_vs_additive as dva
from tests.analyses.claims.arch_cases import cases, check, quick_run

SCALES = {c.id: 0.025 if c.id.startswith("similar") else 0.3 if c.id.startswith("dot_faster") else 0.1
          for c in dva.CLAIMS}


def build(v: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for seed in range(3):
        for d in (dva.SMALL, dva.LARGE):
            additive = 0.8
            dot = additive - v[f"similar_accuracy_{d}"][seed]
            unscaled = additive - v[f"additive_beats_unscaled_{dva.LARGE}"][seed] if d == dva.LARGE else 0.7
            for kind, acc in (("dot", dot), ("dot_unscaled", unscaled), ("additive", additive)):
                rows.append(dict(part="train", kind=kind, d_head=d, seed=seed, accuracy=acc))
            rows.append(dict(part="timing", kind="dot", d_head=d, seed=seed, step_s=0.01))
            rows.append(dict(part="timing", kind="additive", d_head=d, seed=seed,
                             step_s=0.01 * v[f"dot_faster_{d}"][seed]))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim_id, outcome", cases(dva.STUDY))
def test_verdicts_on_hand_made_tables(claim_id, outcome):
    check(dva.STUDY, build, claim_id, outcome, SCALES)


def test_similar_accuracy_is_judged_on_the_absolute_difference():
    values = {c.id: [0.0, 0.0, 0.0] for c in dva.CLAIMS}
    values |= {f"dot_faster_{d}": [2.0, 2.1, 2.2] for d in dva.CONFIG.d_heads}
    values[f"additive_beats_unscaled_{dva.LARGE}"] = [0.1, 0.2, 0.3]
    values[f"similar_accuracy_{dva.SMALL}"] = [-0.3, -0.31, -0.32]  # dot far above additive: not similar
    verdict = {v.claim.id: v for v in dva.verdicts(build(values))}[f"similar_accuracy_{dva.SMALL}"]
    assert verdict.outcome == "refuted" and verdict.estimate == pytest.approx(0.31)


def test_quick_run(tmp_path):
    result = quick_run(dva.STUDY, tmp_path, {"part", "kind", "d_head", "accuracy", "step_s"})
    assert set(result.table["kind"]) == set(dva.KINDS)
