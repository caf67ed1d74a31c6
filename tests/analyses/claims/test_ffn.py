"""claims.ffn: verdicts on hand-made tables, the facts task, parameter matching, and the --quick pipeline."""

import pandas as pd
import pytest
import torch

from analyses.claims.ffn import STUDY, Config, best, facts, matched_layers, model_config
from probe import Transformer
from tests.analyses.claims.recipe_tables import SEEDS, check_quick_run, outcomes, setv

ACC = {"attn_only": 0.1, "attn_only_matched": 0.2, "ffn_relu": 0.99, "ffn_gelu": 1.0}


def base() -> pd.DataFrame:
    """Every variant best at lr 3e-3 (lowest final loss); FFN models lose the table when ablated."""
    rows = []
    for v, acc in ACC.items():
        for lr in (1e-3, 3e-3):
            for s in SEEDS:
                good = lr == 3e-3
                rows.append({"variant": v, "lr": lr, "seed": s, "final_loss": 0.1 if good else 1.0,
                             "accuracy": acc - 0.001 * s if good else 0.05, "ablated_accuracy": 0.03})
    return pd.DataFrame(rows)


def test_the_base_table_supports_every_claim():
    assert set(outcomes(STUDY, base()).values()) == {"supported"}


def at_best(variant):
    return {"variant": variant, "lr": 3e-3}


@pytest.mark.parametrize(("claim", "metric", "where", "refuting", "straddling"), [
    ("ffn_adds_lookup", "accuracy", at_best("attn_only"), [0.9, 0.95, 0.9], [0.1, 0.9, 0.5]),
    ("ffn_beats_matched_attention", "accuracy", at_best("attn_only_matched"), [0.9, 0.95, 0.9], [0.1, 0.9, 0.5]),
    ("table_lives_in_ffn", "ablated_accuracy", at_best("ffn_gelu"), [0.9, 0.95, 0.9], [0.1, 0.9, 0.5]),
    ("gelu_matches_relu", "accuracy", at_best("ffn_relu"), [1.0, 1.0, 1.0], [0.9, 1.0, 1.0]),
])
def test_each_claim_can_be_refuted_and_left_open(claim, metric, where, refuting, straddling):
    table = base()
    if claim == "gelu_matches_relu":  # GELU below ReLU: lower GELU, then set ReLU
        table = setv(table, "accuracy", [0.9, 0.9, 0.9], **at_best("ffn_gelu"))
    assert outcomes(STUDY, setv(table, metric, refuting, **where))[claim] == "refuted"
    assert outcomes(STUDY, setv(table, metric, straddling, **where))[claim] == "inconclusive"


def test_best_picks_the_rate_by_final_training_loss():
    t = base().assign(row=lambda d: d.index)
    assert best(t, "ffn_gelu")["lr"].unique().tolist() == [3e-3]
    t = setv(t, "final_loss", [0.01] * 3, variant="ffn_gelu", lr=1e-3)
    assert best(t, "ffn_gelu")["lr"].unique().tolist() == [1e-3]


def test_facts_cover_every_pair_once():
    data = facts(3, 4, 5, seed=1)[:]
    assert data["tokens"].shape == (12, 2) and (data["labels"][:, 0] == -100).all()
    pairs = {tuple(t) for t in data["tokens"].tolist()}
    assert pairs == {(a, 3 + b) for a in range(3) for b in range(4)}
    assert data["labels"][:, 1].min() >= 7 and data["labels"][:, 1].max() < 12
    assert torch.equal(facts(3, 4, 5, seed=1)[:]["labels"], data["labels"])


def test_matched_attention_has_about_the_parameters_of_one_full_layer():
    cfg = Config(d_model=32, n_heads=4)
    assert matched_layers(cfg) == 3
    counts = {v: sum(p.numel() for p in Transformer(model_config(cfg, v, 0)).blocks.parameters())
              for v in ("attn_only_matched", "ffn_gelu")}
    assert abs(counts["attn_only_matched"] / counts["ffn_gelu"] - 1) < 0.05


def test_quick_run(tmp_path):
    table = check_quick_run(STUDY, tmp_path, 4, {"variant", "lr", "seed", "accuracy", "ablated_accuracy",
                                                 "attention_to_key", "n_params", "final_loss", "cpu_s"})
    attn = table[table["variant"] == "attn_only"]
    assert (attn["ablated_accuracy"] == attn["accuracy"]).all()  # nothing to ablate without an FFN
