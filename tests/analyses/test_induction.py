"""analyses.induction --quick: the measured claims (in-context loss, an induction head in layer 1) and its outputs."""

import json
import math

import pytest
import torch
from transformer_lens.head_detector import compute_head_attention_similarity_score

from analyses.induction import HEAD_SCORE_BOUND, LOSS_RATIO_BOUND, ideal_score, repeated_sequences, run


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return run(quick=True, out=tmp_path_factory.mktemp("induction"), progress=False)


def test_in_context_loss_on_the_repeats_is_far_below_the_first_copy(result):
    ln_s = math.log(result.config["n_symbols"])
    assert result.first_half_loss > 0.8 * ln_s  # the first copy stays unpredictable: nothing memorised
    assert result.repeated_half_loss < LOSS_RATIO_BOUND * result.first_half_loss


def test_head_detector_finds_an_induction_head_in_layer_1_fed_by_layer_0(result):
    scores = torch.tensor(result.induction_scores)
    assert scores.shape == (2, result.config["n_heads"])
    layer, head = result.best_induction_head
    assert layer == 1 and scores[layer, head] > HEAD_SCORE_BOUND * result.induction_ceiling
    assert scores[0].max() < 0.5 * scores[1].max()  # one layer cannot do induction
    previous = torch.tensor(result.previous_token_scores)
    assert previous[0].max() > previous[1].max()
    assert all(result.claims.values())


def test_outputs_are_written(result):
    from pathlib import Path

    out = Path(result.out_dir)
    for name in ("loss_curve.png", "loss_by_position.png", "head_scores.png", "induction_pattern.png"):
        assert (out / name).stat().st_size > 1000
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["repeated_half_loss"] == pytest.approx(result.repeated_half_loss)
    report = (out / "report.md").read_text()
    assert "measurement supported it" in report and f"{result.repeated_half_loss:.4f}" in report


def test_repeated_sequences_repeat_a_block():
    tokens, copy = repeated_sequences(64, n_symbols=5, min_block=2, max_block=6, length=20, seed=3)
    assert tokens.shape == copy.shape == (64, 20) and (tokens[:, 0] == 1).all() and (tokens[:, 1:] >= 3).all()
    for row, c in zip(tokens, copy):
        block = int((c == 1).sum())
        assert 2 <= block <= 6 and torch.equal(row[1 + block :], row[1 : 20 - block])
    with pytest.raises(ValueError, match="min_block"):
        repeated_sequences(4, 5, min_block=4, max_block=3, length=20)


def test_ideal_score_is_what_detect_head_gives_an_ideal_head():
    from transformer_lens.head_detector import get_induction_head_detection_pattern

    tokens, _ = repeated_sequences(1, n_symbols=50, min_block=6, max_block=6, length=13, seed=0)
    detection = get_induction_head_detection_pattern(tokens)
    ideal = detection.clone()
    ideal[ideal.sum(-1) == 0, 0] = 1.0  # rows with no target attend to bos
    ideal = ideal / ideal.sum(-1, keepdim=True)
    score = compute_head_attention_similarity_score(ideal, detection, exclude_bos=False, exclude_current_token=False,
                                                    error_measure="mul")
    assert score == pytest.approx(ideal_score(tokens[0], "induction_head"))
