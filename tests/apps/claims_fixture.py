"""A small runs/claims: two quick claims studies (one with three seeds, so verdicts differ) and the lab's index,
as `python -m analyses.claims` writes them, built once per test session."""

from __future__ import annotations

from pathlib import Path

from analyses.claims import _index, params_vs_time, tokenizers
from probe.study import run


def build(runs: Path) -> Path:
    root = runs / "claims"
    run(tokenizers.STUDY, quick=True, seeds=3, out=root / "tokenizers")
    run(params_vs_time.STUDY, quick=True, out=root / "params_vs_time")
    _index.write(root, [("claims.tokenizers", root / "tokenizers"), ("claims.params_vs_time", root / "params_vs_time")])
    return runs
