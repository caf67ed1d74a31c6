"""papers.reverse: the alignment measure on hand-made patterns, verdicts on hand-made tables, the --quick pipeline."""

import pandas as pd
import pytest
import torch

from analyses.papers.reverse import STUDY, alignment, verdicts
from tests.analyses.papers.helpers import check_flips, check_quick

HOLDS = {"exact_match": 1.0, "aligned_layer_0": 0.3, "aligned_layer_1": 0.9}
BREAKS = {
    "reverses": {"exact_match": 0.6},
    "cross_attention_aligned": {"aligned_layer_0": 0.2, "aligned_layer_1": 0.25},  # no layer looks up the source
}


def sweep(changes_per_seed):
    rows = [{"seed": seed, **HOLDS, **changes} for seed, changes in enumerate(changes_per_seed)]
    for row in rows:
        row["exact_match"] -= 0.002 * row["seed"]
        row["aligned_layer_1"] -= 0.01 * row["seed"]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim", list(BREAKS))
def test_verdicts(claim):
    check_flips(verdicts, sweep, claim, BREAKS[claim])


def test_alignment_by_hand():
    lengths = torch.tensor([3, 2])
    anti = torch.zeros(2, 2, 4, 3)  # [batch head query key]: 3 output steps + eos, source padded to 3
    for b, n in enumerate(lengths.tolist()):
        for i in range(n):
            anti[b, :, i, n - 1 - i] = 1.0
    assert alignment(anti, lengths) == 1.0  # every scored step (3 + 2 of them) peaks on its source token
    diag = torch.eye(3)[None, None, [0, 1, 2, 2]].expand(2, 2, 4, 3)  # step i looks at i: right only mid-row
    assert alignment(diag, lengths) == pytest.approx(1 / 5)  # b=0: step 1 -> key 1 is right; b=1: none
    mixed = anti.clone()
    mixed[:, 0] = diag[:, 0] * 0.4  # one head elsewhere, weaker: the mean over heads still peaks on the source
    assert alignment(mixed, lengths) == 1.0


def test_quick_pipeline(tmp_path):
    check_quick(STUDY, tmp_path, ["seed", "exact_match", "token_accuracy", "final_train_loss", "aligned_layer_0",
                                  "aligned_best_head"],
                rows=1, figures=["loss_curve.png", "cross_attention.png"])


def test_save_writes_a_checkpoint_that_loads(tmp_path):
    import probe
    from probe.study import run

    run(STUDY, quick=True, overrides={"save": str(tmp_path / "ckpt")})
    model = probe.load(tmp_path / "ckpt")
    meta = probe.checkpoint.read_meta(tmp_path / "ckpt")
    assert model.cfg.arch == "encoder_decoder" and meta["analysis_config"]["max_len"] == STUDY.quick.max_len
    assert meta["metrics"]["exact_match"] >= 0 and meta["task"]["name"] == "reverse"
