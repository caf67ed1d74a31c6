"""analyses.demo --quick: the pipeline runs end to end, its report's numbers come from the run, and a bridge that
does not reproduce our model stops the demo."""

import json

import pytest
import torch

from analyses import demo


def test_quick_demo_runs_and_reports_computed_numbers(tmp_path):
    result = demo.run(quick=True, out=tmp_path / "demo", with_reverse=False)  # reverse: tests/analyses/test_reverse
    report = (tmp_path / "demo" / "report.md").read_text()
    b = result.bridge
    assert b["max_abs_logit_diff"] <= demo.TOLERANCE and b["max_abs_pattern_diff"] <= demo.TOLERANCE
    two = result.induction.table.query("layers == 2").iloc[0]
    assert f"{b['max_abs_logit_diff']:.2e}" in report and str(two["best_head"]) in report
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert len(metrics["induction_table"]) == 2 and metrics["bridge"]["layout"] == "gpt2"
    assert (tmp_path / "demo" / "induction_2l" / "trajectory" / "trajectory.json").is_file()
    assert (tmp_path / "demo" / "induction_formation" / "report.md").is_file()


def test_a_bridge_that_differs_fails_loudly(tmp_path, monkeypatch):
    from probe.config import TransformerConfig
    from probe.interop import bridge
    from probe.models.transformer import Transformer

    model = Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_vocab=10, n_ctx=12, attn_only=True,
                                          unembed_bias=False, seed=0))
    real = bridge.boot_bridge

    def off_by_a_bit(path):
        b = real(path)
        with torch.no_grad():
            for p in b.parameters():
                p.add_(1e-2)
        return b

    monkeypatch.setattr(bridge, "boot_bridge", off_by_a_bit)
    with pytest.raises(demo.BridgeMismatch, match="does not reproduce our model"):
        demo.bridge_check(model, torch.randint(0, 10, (2, 8)), (1, 0), tmp_path)
