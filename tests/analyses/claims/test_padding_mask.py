"""claims.padding_mask: verdicts on hand-made tables; left padding by hand; quick run."""

import pandas as pd
import pytest
import torch

from analyses.claims import padding_mask
from tests.analyses.claims.arch_cases import cases, check, quick_run

SCALES = {"masked_equals_unpadded": 5e-6, "encoder_drifts_unmasked": 5e-4, "decoder_left_drifts_unmasked": 5e-4,
          "decoder_right_needs_no_mask": 5e-6}


def build(v: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for seed in range(3):
        for arch in ("encoder", "decoder"):
            for side in ("right", "left"):
                masked_drift = v["masked_equals_unpadded"][seed] if (arch, side) == ("encoder", "left") else 0.0
                rows.append(dict(arch=arch, side=side, masked=True, seed=seed, drift=0.0, drift_max=masked_drift))
                if (arch, side) == ("decoder", "right"):
                    drift = v["decoder_right_needs_no_mask"][seed]
                elif arch == "encoder":
                    drift = v["encoder_drifts_unmasked"][seed] if side == "right" else 0.1
                else:
                    drift = v["decoder_left_drifts_unmasked"][seed]
                rows.append(dict(arch=arch, side=side, masked=False, seed=seed, drift=drift, drift_max=drift))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim_id, outcome", cases(padding_mask.STUDY))
def test_verdicts_on_hand_made_tables(claim_id, outcome):
    check(padding_mask.STUDY, build, claim_id, outcome, SCALES)


def test_left_padding_moves_the_real_tokens_to_the_end():
    batch = {"tokens": torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 0],
                                                                                                  [1, 1, 0, 0]])}
    left = padding_mask.pad(batch, "left")
    assert left["tokens"].tolist() == [[0, 5, 6, 7], [0, 0, 8, 9]]
    assert left["attention_mask"].tolist() == [[0, 1, 1, 1], [0, 0, 1, 1]]
    assert padding_mask.pad(batch, "right")["tokens"] is batch["tokens"]


def test_quick_run(tmp_path):
    result = quick_run(padding_mask.STUDY, tmp_path, {"arch", "side", "masked", "drift", "drift_max"})
    assert len(result.table) == 8
