"""vision.vit_attention: attention rollout, the position-layout measure, measurements on the model's device,
verdicts on hand-made tables, the --quick pipeline."""

import pandas as pd
import pytest
import torch

from analyses.vision._common import vit_digits
from analyses.vision.vit_attention import (
    STUDY,
    attention_rollout,
    measure,
    neighbour_vs_distant,
    position_layout,
    position_similarity,
    verdicts,
)
from probe.models.vit import ViT
from probe.nn.positional_2d import sincos_2d
from tests.analyses.papers.helpers import check_flips, check_quick

HOLDS = {"accuracy": 0.97, "cls_lens_0": 0.10, "cls_lens_1": 0.55, "cls_lens_2": 0.97, "pos_layout_gap": 0.05}
BREAKS = {
    "lens_sharpens": {"cls_lens_2": 0.05, "accuracy": 0.05},  # the lens at the end is below the embeddings' lens
    "lens_exact_at_end": {"accuracy": 0.98},  # the lens after the last block is not the model
    "positions_recover_2d": {"pos_layout_gap": -0.05},  # distant patches more alike than adjacent ones
}


def sweep(changes_per_seed):
    rows = []
    for seed, changes in enumerate(changes_per_seed):
        row = {"seed": seed, **HOLDS, **changes}
        row["pos_layout_gap"] += 0.002 * seed
        row["cls_lens_0"] += 0.002 * seed
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("claim", list(BREAKS))
def test_verdicts(claim):
    check_flips(verdicts, sweep, claim, BREAKS[claim])


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


def test_neighbour_vs_distant_by_hand():
    # a 2x2 grid: patches 0 1 / 2 3; adjacent pairs (0,1) (0,2) (1,3) (2,3), distance >= 2: (0,3) (1,2)
    sim = torch.zeros(4, 4)
    for i, j, v in ((0, 1, 1.0), (0, 2, 0.5), (1, 3, 0.25), (2, 3, 0.25), (0, 3, -1.0), (1, 2, 3.0)):
        sim[i, j] = sim[j, i] = v
    near, far = neighbour_vs_distant(sim, 2)
    assert near.item() == pytest.approx(0.5) and far.item() == pytest.approx(1.0)


def test_position_similarity_measure_sees_2d_layout():
    sim = position_similarity(sincos_2d(32, 4, 4))
    torch.testing.assert_close(sim.diagonal(), torch.ones(16))
    near, far = neighbour_vs_distant(sim, 4)
    assert near > far + 0.1  # a known 2-D code passes the test the study applies to learned embeddings
    near, far = neighbour_vs_distant(position_similarity(torch.randn(16, 32, generator=torch.Generator()
                                                                     .manual_seed(0))), 4)
    assert abs(near - far) < 0.15  # random vectors do not


def test_position_layout_of_an_untrained_model_is_its_init():
    layout = position_layout(ViT(vit_digits(3)))
    assert layout["pos_cos_to_init"] == pytest.approx(1.0)
    assert layout["pos_layout_gap"] == pytest.approx(layout["pos_adjacent_cos"] - layout["pos_distant_cos"])
    with pytest.raises(ValueError, match="not learned"):
        position_layout(ViT(vit_digits(0, positional_embedding_type="none")))


def test_measure_runs_on_the_models_device():
    """CPU inputs, a model elsewhere ("meta": shapes only): every input follows the model, nothing is computed on
    the CPU (the former study moved the model to CUDA and kept the images on the CPU)."""
    model = ViT(vit_digits(0)).to("meta")
    m = measure(model, torch.rand(5, 1, 8, 8), torch.randint(0, 10, (5,)))
    assert all(v.device.type == "meta" for v in m.values())
    assert m["patterns"].shape == (2, 5, 4, 17, 17) and m["lens"].shape == (3, 5, 17, 10)


def test_lens_after_the_last_block_is_the_model():
    model, x = ViT(vit_digits(0)), torch.rand(16, 1, 8, 8)
    m = measure(model, x, torch.randint(0, 10, (16,)))
    with torch.no_grad():
        torch.testing.assert_close(m["lens"][-1, :, 0], model(x))
    assert m["cls_lens_accuracy"][-1].item() == m["accuracy"].item()
    assert m["rollout_row_error"].item() < 1e-5


def test_quick_pipeline(tmp_path):
    table = check_quick(STUDY, tmp_path, ["seed", "accuracy", "cls_lens_0", "cls_lens_2", "patch_lens_1",
                                          "pos_layout_gap", "pos_cos_to_init", "rollout_row_error"], rows=1,
                        figures=["cls_attention_rollout.png", "position_similarity.png", "logit_lens.png"])
    assert table["rollout_row_error"].item() < 1e-5


@pytest.mark.gpu
def test_quick_run_on_cuda(tmp_path):
    """The former study crashed on any GPU machine (model on CUDA, images on the CPU)."""
    from probe.study import run

    result = run(STUDY, quick=True, out=tmp_path, overrides={"device": "cuda"})
    assert result.outcome.artifacts["model"].W_pos.device.type == "cuda"
    assert result.table["rollout_row_error"].item() < 1e-5
