"""claims.attn_scale: verdicts on hand-made tables; the score statistics at initialisation; quick run."""

import pandas as pd
import pytest

from analyses.claims import attn_scale
from tests.analyses.claims.arch_cases import cases, check, quick_run

SCALES = {"unscaled_std_grows_like_sqrt": 0.05, "scaled_std_flat": 0.05, "unscaled_softmax_saturates": 0.1,
          "unscaled_qk_gradients_shrink": 0.3, "scaled_trains_faster_large": 0.3}
D_HEADS = attn_scale.CONFIG.d_heads


def build(v: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    large = max(D_HEADS)
    for seed in range(3):
        for d in D_HEADS:
            for scaled in (True, False):
                exponent = v["scaled_std_flat"][seed] if scaled else 0.5 + v["unscaled_std_grows_like_sqrt"][seed]
                entropy = 0.9 if scaled or d != large else 0.9 + v["unscaled_softmax_saturates"][seed]
                grad = 1.0 if scaled or d != large else v["unscaled_qk_gradients_shrink"][seed]
                rows.append(dict(part="init", seed=seed, d_head=d, scaled=scaled, score_std=0.7 * d**exponent,
                                 entropy=entropy, qk_grad=grad))
        for d in (min(D_HEADS), large):
            for scaled in (True, False):
                ratio = 1.0 if scaled or d != large else v["scaled_trains_faster_large"][seed]
                rows.append(dict(part="train", seed=seed, d_head=d, scaled=scaled, steps_to_threshold=100 * ratio))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim_id, outcome", cases(attn_scale.STUDY))
def test_verdicts_on_hand_made_tables(claim_id, outcome):
    check(attn_scale.STUDY, build, claim_id, outcome, SCALES)


def test_unscaled_scores_grow_like_sqrt_d_head_at_initialisation():
    small = attn_scale.init_stats(8, False, 32, 2, 16, seed=0)
    large = attn_scale.init_stats(128, False, 32, 2, 16, seed=0)
    assert large["score_std"] / small["score_std"] == pytest.approx(4.0, rel=0.35)  # sqrt(128 / 8)
    scaled = attn_scale.init_stats(128, True, 32, 2, 16, seed=0)
    assert scaled["score_std"] == pytest.approx(large["score_std"] / 128**0.5)  # the same model, scaled
    assert 0.0 <= large["entropy"] < scaled["entropy"] <= 1.0


def test_quick_run(tmp_path):
    result = quick_run(attn_scale.STUDY, tmp_path, {"part", "d_head", "scaled", "score_std", "entropy", "qk_grad",
                                                    "steps_to_threshold"})
    assert set(result.table["part"]) == {"init", "train"}
