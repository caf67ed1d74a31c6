"""claims.positions: verdicts on hand-made tables, the measurement functions, and the --quick pipeline."""

import pandas as pd
import pytest
import torch

from analyses.claims import positions as study
from analyses.claims.positions import (
    STUDY,
    bag_of_tokens_accuracy,
    model_config,
    offset_attention,
    offset_task,
    permutation_error,
)
from probe import Transformer
from tests.analyses.claims.recipe_tables import SEEDS, check_quick_run, outcomes, setv

BEYOND = {"none": 0.1, "sinusoidal": 0.5, "learned": 0.1, "rotary": 0.9}


def base() -> pd.DataFrame:
    """Every claim supported: the encoder fails without positions, the decoder does not, rotary and sinusoidal
    extrapolate better than learned."""
    rows = []
    for arch in study.ARCHS:
        for pos in study.POSITIONS:
            for s in SEEDS:
                blind = arch == "encoder" and pos == "none"
                rows.append({"arch": arch, "position": pos, "seed": s, "accuracy": 0.1 + 0.01 * s if blind else 1.0,
                             "accuracy_beyond": BEYOND[pos] + 0.01 * s, "permutation_error": 1e-7 if blind else 0.4})
    return pd.DataFrame(rows)


def test_the_base_table_supports_every_claim():
    assert set(outcomes(STUDY, base()).values()) == {"supported"}


ENC_NONE = {"arch": "encoder", "position": "none"}
DEC_NONE = {"arch": "decoder", "position": "none"}


@pytest.mark.parametrize(("claim", "metric", "where", "refuting", "straddling"), [
    ("encoder_equivariant", "permutation_error", ENC_NONE, [0.1, 0.2, 0.1], [1e-6, 1e-3, 1e-6]),
    ("encoder_fails_without", "accuracy", ENC_NONE, [0.9, 0.95, 0.92], [0.1, 0.5, 0.3]),
    ("decoder_learns_without", "accuracy", DEC_NONE, [0.2, 0.25, 0.3], [0.5, 1.0, 0.95]),
    ("rotary_extrapolates_encoder", "accuracy_beyond", {"arch": "encoder", "position": "rotary"},
     [0.0, 0.01, 0.02], [0.3, 0.0, 0.2]),
    ("rotary_extrapolates_decoder", "accuracy_beyond", {"arch": "decoder", "position": "rotary"},
     [0.0, 0.01, 0.02], [0.3, 0.0, 0.2]),
    ("sinusoidal_extrapolates_encoder", "accuracy_beyond", {"arch": "encoder", "position": "sinusoidal"},
     [0.0, 0.01, 0.02], [0.3, 0.0, 0.2]),
    ("sinusoidal_extrapolates_decoder", "accuracy_beyond", {"arch": "decoder", "position": "sinusoidal"},
     [0.0, 0.01, 0.02], [0.3, 0.0, 0.2]),
])
def test_each_claim_can_be_refuted_and_left_open(claim, metric, where, refuting, straddling):
    assert outcomes(STUDY, setv(base(), metric, refuting, **where))[claim] == "refuted"
    assert outcomes(STUDY, setv(base(), metric, straddling, **where))[claim] == "inconclusive"


def test_offset_task_labels_the_token_offset_places_back():
    data = offset_task(5, 6, 4, offset=2, seed=0)[:]
    assert (data["labels"][:, :2] == -100).all()
    assert torch.equal(data["labels"][:, 2:], data["tokens"][:, :-2])
    with pytest.raises(ValueError, match="offset=6"):
        offset_task(5, 6, 4, offset=6, seed=0)


def test_offset_attention_reads_the_best_head():
    pattern = torch.zeros(1, 2, 4, 4)
    pattern[0, 0] = torch.eye(4)  # head 0 attends to itself
    pattern[0, 1, 1:, :-1] = torch.eye(3) * 0.5  # head 1 puts half its weight one place back
    assert offset_attention([pattern], 1) == pytest.approx(0.5)
    assert offset_attention([pattern, torch.zeros(1, 2, 4, 4)], 1, first=2) == pytest.approx(0.5)


def test_permutation_error_is_zero_without_positions_only():
    cfg = study.Config(d_model=16, n_heads=2, length=8)
    tokens = offset_task(4, 8, cfg.n_symbols, 1, seed=0)[:]["tokens"]
    blind = Transformer(model_config(cfg, "encoder", "none", seed=0)).eval()
    sighted = Transformer(model_config(cfg, "encoder", "learned", seed=0)).eval()
    assert permutation_error(blind, tokens) < 1e-5
    assert permutation_error(sighted, tokens) > 1e-3


def test_bag_of_tokens_accuracy_by_hand():
    # tokens 0 0 1, offset 1: position 1 sees others {0, 1} (a tie, label 0: 1/2); position 2 sees {0, 0} (hit)
    batch = {"tokens": torch.tensor([[0, 0, 1]]), "labels": torch.tensor([[-100, 0, 0]])}
    assert bag_of_tokens_accuracy(batch) == pytest.approx(0.75)


def test_quick_run(tmp_path):
    table = check_quick_run(STUDY, tmp_path, 8, {"arch", "position", "seed", "accuracy", "accuracy_beyond",
                                                 "offset_attention", "permutation_error", "cpu_s"})
    assert table.loc[(table.arch == "encoder") & (table.position == "none"), "permutation_error"].item() < 1e-4
