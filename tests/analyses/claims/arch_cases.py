"""Hand-made per-seed values for the architecture claims' verdict tests: for a claim `quantity op bound`, three
seeds' values that lie wholly on the predicted side (supported), wholly on the other (refuted) or straddle the bound
(inconclusive), under the t interval and under the exact (range) method alike."""

from __future__ import annotations

from probe.study import OUTCOMES, Claim, Study, run


def values(claim: Claim, outcome: str, scale: float) -> list[float]:
    b, s = claim.bound, scale
    above, below = [b + s, b + 1.1 * s, b + 1.2 * s], [b - s, b - 0.9 * s, b - 0.8 * s]
    if outcome == "inconclusive":
        return [b - s, b + 0.1 * s, b + 1.2 * s]
    predicted_above = claim.op in (">", ">=")
    return (above if predicted_above else below) if outcome == "supported" else (below if predicted_above else above)


def cases(study: Study) -> list[tuple[str, str]]:
    """(claim id, outcome) for every claim and outcome, for pytest.mark.parametrize."""
    return [(c.id, o) for c in study.claims for o in OUTCOMES]


def check(study: Study, build, claim_id: str, outcome: str, scales: dict[str, float]) -> None:
    """Build a table where every claim is supported except `claim_id`, which gets `outcome`; check the verdicts
    come out so (the other claims staying supported shows each verdict reads only its own rows)."""
    per_claim = {c.id: values(c, "supported", scales[c.id]) for c in study.claims}
    per_claim[claim_id] = values(study.claim(claim_id), outcome, scales[claim_id])
    verdicts = {v.claim.id: v for v in study.verdicts(build(per_claim))}
    assert set(verdicts) == {c.id for c in study.claims}
    assert verdicts[claim_id].outcome == outcome, verdicts[claim_id]
    for other, v in verdicts.items():
        if other != claim_id:
            assert v.outcome == "supported", v
    assert verdicts[claim_id].n >= 3


def quick_run(study: Study, tmp_path, columns: set[str]):
    """The --quick pipeline writes its report, metrics, table and figures; the table has the expected columns."""
    result = run(study, quick=True, out=tmp_path)
    for name in ("report.md", "metrics.json", "table.csv"):
        assert (tmp_path / name).is_file()
    assert result.figures and all(p.is_file() and p.stat().st_size > 1000 for p in result.figures)
    assert columns <= set(result.table.columns), columns - set(result.table.columns)
    assert {v.claim.id for v in result.verdicts} == {c.id for c in study.claims}
    assert all(v.outcome in OUTCOMES and v.n >= 1 for v in result.verdicts)
    return result
