"""Hand-made result tables for the verdict tests of the positions / embedding / training-recipe claims."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from probe.study import OUTCOMES, Study, read_result, run

SEEDS = (0, 1, 2)


def setv(table: pd.DataFrame, metric: str, values: Sequence[float], **where) -> pd.DataFrame:
    """A copy of `table` with `metric` set to `values` (one per seed, in seed order) in the rows matching `where`."""
    t = table.copy()
    mask = np.ones(len(t), dtype=bool)
    for key, value in where.items():
        mask &= (t[key] == value).to_numpy()
    index = t[mask].sort_values("seed", kind="stable").index
    if len(index) != len(values):
        raise ValueError(f"{where} selects {len(index)} rows, got {len(values)} values")
    t.loc[index, metric] = list(values)
    return t


def outcomes(study: Study, table: pd.DataFrame) -> dict[str, str]:
    verdicts = study.verdicts(table)
    assert sorted(v.claim.id for v in verdicts) == sorted(c.id for c in study.claims)
    return {v.claim.id: v.outcome for v in verdicts}


def check_quick_run(study: Study, out: Path, n_rows: int, columns: set[str]) -> pd.DataFrame:
    """Run `study` quick into `out` and check the pipeline: files, table shape and columns, verdict fields."""
    result = run(study, quick=True, out=out)
    for name in ("report.md", "metrics.json", "table.csv"):
        assert (out / name).is_file(), name
    assert result.figures and all(Path(p).stat().st_size > 0 for p in result.figures)
    assert len(result.table) == n_rows
    assert columns <= set(result.table.columns), columns - set(result.table.columns)
    data = read_result(out)
    assert data["quick"] and [v.claim.id for v in data["verdicts"]] == [c.id for c in study.claims]
    for v in result.verdicts:
        assert v.outcome in OUTCOMES and v.n >= 1 and v.rows
    return result.table
