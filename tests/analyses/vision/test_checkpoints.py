"""The shipped digits checkpoints were made by analyses/vision/_checkpoints.py with the studies' own recipe."""

import json
from pathlib import Path

import pytest

import probe
from analyses.vision._common import accuracy, n_params, train_config
from analyses.vision.cnn_vs_vit import Config as CNNvsViTConfig
from analyses.vision.vit_attention import Config as ViTAttentionConfig
from probe.data.images import digits

ROOT = Path(__file__).resolve().parents[3] / "checkpoints"
STEPS = {"vit": ViTAttentionConfig().steps, "cnn": CNNvsViTConfig().steps}


@pytest.mark.parametrize("which", ["vit", "cnn"])
def test_checkpoint_is_the_studies_recipe(which):
    meta = json.loads((ROOT / f"{which}_digits" / "meta.json").read_text())
    assert meta["command"] == f"python -m analyses.vision._checkpoints --model {which}"
    recipe = train_config(STEPS[which], seed=0, n_examples=len(digits("train")), device="cpu").to_dict()
    assert meta["train_config"] == json.loads(json.dumps(recipe))  # the model the studies train with seed 0
    model = probe.load(ROOT / f"{which}_digits")
    assert n_params(model) == meta["n_params"]
    assert accuracy(model, digits("test")) == pytest.approx(meta["metrics"]["test_accuracy"])
    assert meta["metrics"]["test_accuracy"] >= 0.95
