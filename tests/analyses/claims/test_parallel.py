"""claims.parallel: the growth exponent on a hand-made table, verdicts flipping, and the quick run."""

import math

import pandas as pd
import pytest

from analyses.claims import parallel as study
from probe.study import run


def table(lstm_exp, tf_exp, gen_exp, cache_ratio) -> pd.DataFrame:
    """Times following power laws size**exponent, per seed."""
    rows = []
    for seed in range(3):
        for model, e in (("lstm", lstm_exp[seed]), ("transformer", tf_exp[seed])):
            for size in (32, 256):
                rows.append(dict(kind="train", model=model, size=size, seed=seed, seconds=0.01 * (size / 32) ** e))
        for size in (32, 128):
            cached = 0.05 * (size / 32) ** gen_exp[seed]
            rows.append(dict(kind="generate", model="kv_cache", size=size, seed=seed, seconds=cached))
            rows.append(dict(kind="generate", model="no_cache", size=size, seed=seed,
                             seconds=cached * (cache_ratio[seed] if size == 128 else 1.0)))
    return pd.DataFrame(rows)


def test_exponent_recovers_a_power_law():
    t = table([1.0, 1.0, 1.0], [0.3, 0.5, 0.7], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    values, rows = study.exponent(t, "train", "transformer")
    assert values == pytest.approx([0.3, 0.5, 0.7]) and len(rows) == 6
    with pytest.raises(ValueError, match="no rows"):
        study.exponent(t, "train", "gru")


@pytest.mark.parametrize(
    "args, outcome",
    [
        (([1.0, 1.1, 1.0], [0.3, 0.4, 0.35], [1.0, 0.95, 1.05], [2.5, 2.6, 2.4]), "supported"),
        (([0.8, 0.85, 0.8], [1.0, 1.1, 1.05], [0.1, 0.15, 0.2], [0.6, 0.7, 0.65]), "refuted"),
        (([1.0, 0.5, 0.75], [0.75, 0.75, 0.75], [0.2, 0.9, 0.5], [0.5, 1.5, 1.0]), "inconclusive"),
    ],
)
def test_every_claim_flips_with_the_table(args, outcome):
    verdicts = study.verdicts(table(*args))
    assert [v.claim.id for v in verdicts] == [c.id for c in study.CLAIMS]
    assert [v.outcome for v in verdicts] == [outcome] * 3
    assert verdicts[2].estimate == pytest.approx(sum(args[3]) / 3)


def test_quick_run_writes_the_report(tmp_path):
    result = run(study.STUDY, quick=True, out=tmp_path)
    t = result.table
    assert set(zip(t["kind"], t["model"])) == {("train", "lstm"), ("train", "transformer"),
                                               ("generate", "kv_cache"), ("generate", "no_cache")}
    assert len(t) == 8 and (t["seconds"] > 0).all() and all(math.isfinite(v.estimate) for v in result.verdicts)
    params = t[t["kind"] == "train"].groupby("model")["params"].first()
    assert abs(params["lstm"] / params["transformer"] - 1) < 0.1  # equal widths, 3 LSTM layers vs 2 blocks
    assert (tmp_path / "parallel.png").is_file()
