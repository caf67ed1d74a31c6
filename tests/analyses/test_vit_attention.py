"""analyses.vit_attention: attention rollout, position-similarity measurement, and a --quick run."""

import json

import torch

from analyses.vit_attention import attention_rollout, neighbour_vs_distant, position_similarity, run
from probe.nn.positional_2d import sincos_2d


def test_rollout_rows_sum_to_one():
    patterns = torch.randn(3, 2, 4, 7, 7).softmax(-1)
    rollout = attention_rollout(patterns)
    assert rollout.shape == (2, 7, 7)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, 7))
    assert (rollout >= 0).all()


def test_rollout_definition():
    eye = torch.eye(5).expand(2, 1, 3, 5, 5)  # every token attends to itself: information never mixes
    torch.testing.assert_close(attention_rollout(eye), torch.eye(5).expand(1, 5, 5))
    patterns = torch.randn(2, 1, 3, 5, 5).softmax(-1)
    a = [0.5 * torch.eye(5) + 0.5 * p.mean(1) for p in patterns]
    torch.testing.assert_close(attention_rollout(patterns), a[1] @ a[0])


def test_position_similarity_measure_sees_2d_layout():
    sim = position_similarity(sincos_2d(32, 4, 4))
    torch.testing.assert_close(sim.diagonal(), torch.ones(16))
    near, far = neighbour_vs_distant(sim, 4)
    assert near > far + 0.1  # a known 2-D code passes the test the analysis applies to learned embeddings
    near, far = neighbour_vs_distant(position_similarity(torch.randn(16, 32)), 4)
    assert abs(near - far) < 0.15  # random vectors do not


def test_quick_run_writes_outputs(tmp_path):
    r = run(checkpoint=None, out=tmp_path, quick=True)
    assert r.rollout_row_sum_max_error < 1e-5
    assert r.cls_lens_accuracy[-1] == r.test_accuracy  # the lens after the last block is the model itself
    assert len(r.cls_lens_accuracy) == 3
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_accuracy"] == r.test_accuracy
    for name in ("cls_attention_rollout.png", "position_similarity.png", "logit_lens.png", "report.md"):
        assert (tmp_path / name).stat().st_size > 0
    assert "Claim (a)" in (tmp_path / "report.md").read_text()
