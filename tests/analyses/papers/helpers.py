"""Shared by the paper studies' tests: outcomes by claim id, and the --quick pipeline check."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import pandas as pd

from probe.study import OUTCOMES, Study, read_result, run


def outcomes(verdicts) -> dict[str, str]:
    return {v.claim.id: v.outcome for v in verdicts}


def check_flips(verdicts, sweep, claim: str, breaks) -> None:
    """Every claim holds on `sweep([{}] * 3)`; `breaks` (the changes that refute `claim`) refutes it when applied to
    every seed and leaves it inconclusive when applied to one seed of three."""
    assert set(outcomes(verdicts(sweep([{}] * 3))).values()) == {"supported"}
    assert outcomes(verdicts(sweep([breaks] * 3)))[claim] == "refuted"
    assert outcomes(verdicts(sweep([breaks, {}, {}])))[claim] == "inconclusive"


def check_quick(study: Study, tmp_path, columns: Iterable[str], rows: int | None = None,
                figures: Sequence[str] = ()) -> pd.DataFrame:
    """Run the study's quick configuration into tmp_path and check what the pipeline wrote (not the science)."""
    result = run(study, quick=True, out=tmp_path)
    table = result.table
    assert set(columns) <= set(table.columns), sorted(set(columns) - set(table.columns))
    if rows is not None:
        assert len(table) == rows
    assert sorted(table["seed"].unique()) == list(study.quick.seeds)
    assert [v.claim.id for v in result.verdicts] == [c.id for c in study.claims]
    for v in result.verdicts:
        assert v.outcome in OUTCOMES and v.n >= 1 and v.rows and len(v.values) == v.n
    written = read_result(tmp_path)
    assert written["quick"] and len(written["table"]) == len(table) and written["verdicts"] == result.verdicts
    assert json.loads((tmp_path / "metrics.json").read_text())["study"] == study.name
    for name in figures:
        assert (tmp_path / name).stat().st_size > 0, name
    assert written["figures"] == list(figures)
    report = (tmp_path / "report.md").read_text()
    assert report.startswith(f"# {study.title}") and all(f"![{name[:-4]}]({name})" in report for name in figures)
    return table
