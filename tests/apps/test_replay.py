"""The replay page's reading of measures by shape (apps/replay.py), on hand-made shapes and values."""

import numpy as np

from apps import replay


def test_classify_by_shape_not_name():
    m = replay.classify({"loss": [], "eval_loss": [], "acc.test": [], "loss_by_position": [14],
                         "fourier.spectrum": [57], "blocks.0.attn.hook_pattern": [8, 2, 15, 15],
                         "decoder.1.cross_attn.hook_pattern": [4, 2, 5, 7], "head_scores.induction": [2, 4],
                         "Z": [2, 30, 30], "embedding_svd": [16, 8], "weight_norms.embed.W_E": []})
    assert m.scalars == ["loss", "eval_loss", "acc.test", "weight_norms.embed.W_E", replay.TOTAL_NORM]
    assert m.patterns == ["blocks.0.attn.hook_pattern", "decoder.1.cross_attn.hook_pattern"]
    assert m.head_scores == ["head_scores.induction"]
    assert m.vectors == ["loss_by_position", "fourier.spectrum"]
    assert m.matrices == ["Z", "embedding_svd"]
    assert replay.TOTAL_NORM not in replay.classify({"loss": []}).scalars


def test_default_curves():
    assert replay.default_curves(["loss", "eval_loss", "weight_norms.x", "restricted", replay.TOTAL_NORM]) == [
        "loss", "eval_loss", replay.TOTAL_NORM]
    assert replay.default_curves(["a", "b", "c", "d"]) == ["a", "b", "c"]


def test_total_norm_is_the_norm_of_all_weights():
    w1, w2 = np.array([[3.0, 0.0], [0.0, 1.0]]), np.array([4.0, 2.0])
    norms = [np.array([np.linalg.norm(w1)]), np.array([np.linalg.norm(w2)])]
    np.testing.assert_allclose(replay.total_norm(norms), [np.linalg.norm(np.concatenate([w1.ravel(), w2]))])


def test_nearest_record_at_or_before_a_step():
    steps = [0, 50, 100, 150]
    assert [replay.nearest(steps, s) for s in (0, 49, 50, 120, 999, -5)] == [0, 0, 1, 2, 3, 0]


def test_pattern_inputs():
    assert replay.pattern_inputs("blocks.0.attn.hook_pattern") == ("tokens", "tokens")
    assert replay.pattern_inputs("encoder.1.attn.hook_pattern") == ("src", "src")
    assert replay.pattern_inputs("decoder.0.attn.hook_pattern") == ("tgt", "tgt")
    assert replay.pattern_inputs("decoder.0.cross_attn.hook_pattern") == ("tgt", "src")
