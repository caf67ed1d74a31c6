"""probe.study: intervals, verdicts on hand-made tables, the grid, the report and the index."""

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from probe.study import (
    Claim,
    Outcome,
    Study,
    Verdict,
    _jsonable,
    column,
    cpu_seconds,
    grid,
    interval,
    judge,
    not_measured,
    paired,
    parse_overrides,
    per_seed,
    read_result,
    run,
    select,
    write_index,
)

GT = Claim("gap", "A beats B", "test §1", "loss(B) - loss(A)", ">", 0.5)
LT = Claim("ratio", "A is cheap", "test §2", "time(A) / time(B)", "<", 1.0)


def test_t_interval_matches_the_textbook_formula():
    est, lo, hi = interval([1.0, 2.0, 3.0])
    assert est == 2.0
    assert hi - est == pytest.approx(4.302652729911275 * 1.0 / math.sqrt(3))  # t_{0.975, 2} * sd / sqrt(n)
    assert est - lo == pytest.approx(hi - est)


def test_one_value_has_an_unbounded_t_interval_but_an_exact_one():
    assert interval([0.7]) == (0.7, -math.inf, math.inf)
    assert interval([0.7], method="exact") == (0.7, 0.7, 0.7)
    assert interval([1.0, 3.0], method="exact") == (2.0, 1.0, 3.0)


def test_bootstrap_interval_is_inside_the_range_and_deterministic():
    x = [0.1, 0.4, 0.35, 0.2, 0.3]
    est, lo, hi = interval(x, method="bootstrap")
    assert min(x) <= lo < est < hi <= max(x)
    assert interval(x, method="bootstrap") == (est, lo, hi)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_interval_refuses_empty_or_non_finite(bad):
    with pytest.raises(ValueError, match="at least one value|non-finite"):
        interval(bad)


def test_interval_refuses_unknown_method():
    with pytest.raises(ValueError, match="method='median'"):
        interval([1.0], method="median")


@pytest.mark.parametrize(
    ("claim", "values", "outcome"),
    [
        (GT, [0.9, 1.0, 1.1], "supported"),  # interval well above 0.5
        (GT, [0.1, 0.2, 0.15], "refuted"),  # well below
        (GT, [0.2, 0.9, 0.5], "inconclusive"),  # straddles
        (GT, [0.9], "inconclusive"),  # one seed: unbounded t interval
        (LT, [0.5, 0.6, 0.55], "supported"),
        (LT, [1.5, 1.6, 1.4], "refuted"),
        (LT, [0.5, 1.5, 1.0], "inconclusive"),
    ],
)
def test_judge_flips_between_the_three_outcomes(claim, values, outcome):
    v = judge(claim, values, rows=[0, 1])
    assert v.outcome == outcome
    assert v.n == len(values) and v.rows == (0, 1) and v.estimate == pytest.approx(np.mean(values))


def test_exact_measurement_is_judged_on_its_range():
    assert judge(LT, [0.2, 0.3], method="exact").outcome == "supported"
    assert judge(LT, [0.2, 1.3], method="exact").outcome == "inconclusive"
    assert judge(Claim("z", "s", "src", "q", "<=", 0.0), [0.0], method="exact").outcome == "supported"


def test_claim_validation():
    with pytest.raises(ValueError, match="op='=='"):
        Claim("a", "s", "src", "q", "==", 1.0)
    with pytest.raises(ValueError, match="bound"):
        Claim("a", "s", "src", "q", ">", float("nan"))
    with pytest.raises(ValueError, match="statement"):
        Claim("a", "", "src", "q", ">", 1.0)
    assert GT.prediction == "loss(B) - loss(A) > 0.5"


def test_a_claim_without_measurements_is_inconclusive_with_n_0():
    v = not_measured(GT, rows=[3])
    assert v.outcome == "inconclusive" and v.n == 0 and v.rows == (3,) and math.isnan(v.estimate)
    back = Verdict.from_dict(json.loads(json.dumps(_jsonable(v.to_dict()))))
    assert back.outcome == "inconclusive" and math.isnan(back.estimate) and back.low == -math.inf


def test_verdict_round_trips_through_json():
    v = judge(GT, [0.9])  # infinite interval
    back = Verdict.from_dict(json.loads(json.dumps(v.to_dict())))
    assert back == v
    empty = Verdict(GT, "inconclusive", math.nan, -math.inf, math.inf, 0, "t")  # nothing to judge
    back = Verdict.from_dict(json.loads(json.dumps(_jsonable(empty.to_dict()))))
    assert math.isnan(back.estimate) and back.n == 0 and back.outcome == "inconclusive"


TABLE = pd.DataFrame(
    [
        {"variant": "a", "seed": 1, "loss": 1.0},
        {"variant": "a", "seed": 0, "loss": 2.0},
        {"variant": "b", "seed": 0, "loss": 3.0},
        {"variant": "b", "seed": 1, "loss": 5.0},
    ]
)


def test_select_and_column_order_by_seed_and_name_what_is_missing():
    values, rows = column(TABLE, "loss", variant="a")
    assert values.tolist() == [2.0, 1.0] and rows == [1, 0]
    with pytest.raises(KeyError, match="no column 'layer'"):
        select(TABLE, layer=1)
    with pytest.raises(ValueError, match="variant in \\['a', 'b'\\]"):
        select(TABLE, variant="c")


def test_paired_difference_and_ratio_match_seeds():
    diff, rows = paired(TABLE, "loss", {"variant": "b"}, {"variant": "a"})
    assert diff.tolist() == [1.0, 4.0] and sorted(rows) == [0, 1, 2, 3]
    ratio, _ = paired(TABLE, "loss", {"variant": "b"}, {"variant": "a"}, how="ratio")
    assert ratio.tolist() == [1.5, 5.0]
    with pytest.raises(ValueError, match="seeds differ"):
        paired(TABLE.drop(index=3), "loss", {"variant": "b"}, {"variant": "a"})
    with pytest.raises(ValueError, match="several rows per seed"):
        paired(pd.concat([TABLE, TABLE]), "loss", {"variant": "b"}, {"variant": "a"})


def test_per_seed_aggregates_within_each_seed():
    t = pd.DataFrame({"seed": [1, 0, 1, 0, 0], "n": [4, 4, 8, 8, 8], "loss": [1.0, 2.0, 3.0, 6.0, 7.0]})
    assert per_seed(t, "loss", "min")[0].tolist() == [2.0, 1.0]
    assert per_seed(t, "loss", "max", n=8)[0].tolist() == [7.0, 3.0]
    values, rows = per_seed(t, "loss", lambda x: (x > 2.5).mean())
    assert values.tolist() == pytest.approx([2 / 3, 0.5]) and sorted(rows) == [0, 1, 2, 3, 4]
    assert per_seed(t, "loss", "median", n=8)[0].tolist() == [6.5, 3.0]
    with pytest.raises(ValueError, match="how='mode'"):
        per_seed(t, "loss", "mode")
    with pytest.raises(KeyError, match="no column 'acc'"):
        per_seed(t, "acc")


def measure(width, seed, layers=1):
    return {"loss": 1.0 / width + 0.01 * seed}


def per_layer(width, seed):
    return [{"layer": i, "norm": width * (i + 1)} for i in range(2)]


def test_grid_makes_one_row_per_run_with_wall_time():
    t = grid(measure, [{"width": 2}, {"width": 4, "layers": 2}], seeds=[0, 1], progress=False)
    assert len(t) == 4 and set(t.columns) == {"width", "layers", "seed", "loss", "wall_s"}
    assert t.loc[3, "loss"] == pytest.approx(0.26) and (t["wall_s"] >= 0).all()
    long = grid(per_layer, [{"width": 3}], seeds=[0], progress=False)
    assert long["norm"].tolist() == [3, 6]


def test_grid_refuses_clashing_measurements_and_seed_variants():
    with pytest.raises(ValueError, match="rename the measurement"):
        grid(lambda width, seed: {"width": 1}, [{"width": 2}], seeds=[0], progress=False)
    with pytest.raises(ValueError, match="'seed' field"):
        grid(measure, [{"width": 2, "seed": 3}], seeds=[0], progress=False)


def test_grid_in_worker_processes_gives_the_same_table():
    variants = [{"width": 2}, {"width": 4}]
    one = grid(measure, variants, seeds=[0, 1], progress=False).drop(columns="wall_s")
    two = grid(measure, variants, seeds=[0, 1], progress=False, workers=2).drop(columns="wall_s")
    pd.testing.assert_frame_equal(one, two)


def spin(width, seed):
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    return {"spun": 1}


def test_cpu_seconds_counts_the_grid_workers():
    """A study's `wrote ... s CPU` and the demo's CPU time include the worker processes, not only this one."""
    start, own = cpu_seconds(), time.process_time()
    grid(spin, [{"width": 1}, {"width": 2}], seeds=[0], progress=False, workers=2)
    assert cpu_seconds() - start >= 0.55 and time.process_time() - own < 0.5


@dataclass
class ToyConfig:
    widths: tuple[int, ...] = (2, 8)
    seeds: tuple[int, ...] = (0, 1, 2)


def toy_experiment(cfg):
    table = grid(measure, [{"width": w} for w in cfg.widths], cfg.seeds, progress=False)
    return Outcome(table, summary={"widest": max(cfg.widths)})


def toy_verdicts(table):
    small, large = min(table["width"]), max(table["width"])
    values, rows = paired(table, "loss", {"width": small}, {"width": large})
    return [judge(GT, values, rows)]


def toy_figures(outcome, out):
    path = out / "loss.png"
    path.write_bytes(b"\x89PNG")
    return [path]


TOY = Study("tests.toy", "A toy study", (GT,), ToyConfig(), ToyConfig(widths=(2, 4), seeds=(0,)), toy_experiment,
            toy_verdicts, toy_figures, description="Wider is better.")


def test_run_writes_a_generated_report(tmp_path):
    result = run(TOY, out=tmp_path)
    assert result.verdict("gap").outcome == "refuted"  # 1/2 - 1/8 = 0.375 < 0.5 for every seed
    data = read_result(tmp_path)
    assert data["verdicts"] == result.verdicts and data["seeds"] == [0, 1, 2] and not data["quick"]
    assert data["figures"] == ["loss.png"] and len(data["table"]) == 6
    assert data["summary"] == {"widest": 8}
    report = (tmp_path / "report.md").read_text()
    assert "![loss](loss.png)" in report and "**refuted**" in report and "| widest | 8 |" in report
    assert pd.read_csv(tmp_path / "table.csv", index_col="row").shape == (6, 4)


def test_quick_seeds_and_overrides_reach_the_experiment(tmp_path):
    assert run(TOY, quick=True).verdict("gap").outcome == "inconclusive"  # one seed
    r = run(TOY, quick=True, seeds=3, overrides={"widths": [1, 100]})
    assert r.config == ToyConfig(widths=(1, 100), seeds=(0, 1, 2))
    assert r.verdict("gap").outcome == "supported"  # 1 - 0.01 > 0.5
    with pytest.raises(ValueError, match="no config fields \\['width'\\]"):
        run(TOY, overrides={"width": 3})


def test_a_verdict_function_must_judge_exactly_the_study_claims():
    other = Claim("other", "s", "src", "q", ">", 0.0)
    with pytest.raises(ValueError, match="judged no claim \\['gap'\\]"):
        run(Study("t", "t", (GT,), ToyConfig(), ToyConfig(), toy_experiment, lambda t: []))
    with pytest.raises(ValueError, match="not one of the study's"):
        run(Study("t", "t", (GT,), ToyConfig(), ToyConfig(), toy_experiment, lambda t: [judge(other, [1.0])]))


def test_index_collects_every_verdict_with_links(tmp_path):
    run(TOY, out=tmp_path / "a")
    run(TOY, out=tmp_path / "b", overrides={"widths": [1, 100]})
    path = write_index(tmp_path / "index", "Two toys", [("toy.a", tmp_path / "a"), ("toy.b", tmp_path / "b")])
    text = path.read_text()
    assert "[gap](../a/report.md)" in text and "1 supported, 1 refuted, 0 inconclusive" in text
    rows = json.loads((tmp_path / "index" / "metrics.json").read_text())["claims"]
    assert [r["outcome"] for r in rows] == ["refuted", "supported"]


def test_parse_overrides():
    assert parse_overrides(["steps=100", "lrs=[0.1, 1]", "name=abc"]) == {"steps": 100, "lrs": [0.1, 1],
                                                                          "name": "abc"}
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        parse_overrides(["steps"])


def test_index_can_group_claims_and_links_every_figure(tmp_path):
    run(TOY, out=tmp_path / "a")
    run(TOY, quick=True, out=tmp_path / "b")
    path = write_index(tmp_path / "index", "Lab", [("toy.a", tmp_path / "a"), ("toy.b", tmp_path / "b")],
                       group_of=lambda name: name.upper())
    text = path.read_text()
    assert "| group | claim | statement |" in text and "| TOY.A | [gap](../a/report.md) |" in text
    assert "[loss](../a/loss.png) |" in text and "1 of the studies are quick runs" in text
    rows = json.loads((tmp_path / "index" / "metrics.json").read_text())["claims"]
    assert [r["group"] for r in rows] == ["TOY.A", "TOY.B"] and rows[1]["figures"] == ["../b/loss.png"]
    assert [r["quick"] for r in rows] == [False, True]


def test_figures_link_relative_to_the_report_when_out_is_a_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(TOY, out=Path("runs") / "toy")
    data = read_result(tmp_path / "runs" / "toy")
    assert data["figures"] == ["loss.png"]
    assert "![loss](loss.png)" in (tmp_path / "runs" / "toy" / "report.md").read_text()
    write_index(Path("runs"), "Index", [("toy", Path("runs") / "toy")])
    assert "[loss](toy/loss.png)" in (tmp_path / "runs" / "report.md").read_text()
