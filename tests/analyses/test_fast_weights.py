"""analyses.fast_weights --quick: forms agree to the claimed tolerances; the toy stream shows sum vs delta."""

import json

from analyses.fast_weights import TOL, run, toy_stream


def test_quick_run_supports_the_equivalence_claim(tmp_path):
    res = run(quick=True, out=tmp_path)
    assert res.max_diff["float64"] <= TOL["float64"] and res.max_diff["float32"] <= TOL["float32"], res.max_diff
    assert {r["form"] for r in res.rows} == {"parallel", "chunked", "attention", "fast_weight"}
    assert {r["rule"] for r in res.rows} == {"sum", "delta"}
    assert all(r["L"] % r["chunk"] for r in res.rows)  # chunk sizes that do not divide the length
    assert res.supported
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["supported"] and len(metrics["rows"]) == len(res.rows)
    assert (tmp_path / "fast_weights.png").stat().st_size > 0 and (tmp_path / "equivalence.png").exists()
    assert "Supported: yes" in (tmp_path / "report.md").read_text()


def test_toy_stream_sum_accumulates_delta_replaces():
    W_sum, keys, values = toy_stream("sum")
    W_delta, _, _ = toy_stream("delta")
    # after writing (k1, v1) then (k1, v4): the sum rule reads v1 + v4, the delta rule reads v4
    assert (W_sum[-1] @ keys[0]).tolist() == (values[0] + values[3]).tolist()
    assert (W_delta[-1] @ keys[0]).tolist() == values[3].tolist()
    assert (W_delta[-1] @ keys[1]).tolist() == values[1].tolist()  # other slots untouched
