"""analyses.reverse --quick: greedy decoding reverses fresh sequences; outputs are written."""

import json
from pathlib import Path

from analyses.reverse import QUICK, run


def test_quick_run_reverses_fresh_sequences_and_writes_its_outputs(tmp_path):
    result = run(quick=True, out=tmp_path, progress=False)
    assert result.exact_match >= QUICK.bound and result.token_accuracy >= result.exact_match
    assert result.losses[-1][1] < 0.1 * result.losses[0][1]
    out = Path(result.out_dir)
    assert json.loads((out / "metrics.json").read_text())["exact_match"] == result.exact_match
    assert "measurement supported it" in (out / "report.md").read_text()
    for name in ("loss_curve.png", "cross_attention.png"):
        assert (out / name).stat().st_size > 1000
