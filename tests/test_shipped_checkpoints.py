"""The checkpoints shipped in checkpoints/ load with probe.load and still do their job on fresh data."""

import json
import math
from pathlib import Path

import pytest
import torch

import probe
from analyses.induction import LOSS_RATIO_BOUND, half_losses, repeated_sequences, token_losses
from analyses.papers.reverse import Config, data, decode_accuracy

ROOT = Path(__file__).resolve().parents[1] / "checkpoints"


def meta(name: str) -> dict:
    return json.loads((ROOT / name / "meta.json").read_text())


SHIPPED = [("induction_2l", "analyses.induction", "--save checkpoints/induction_2l"),
           ("reverse_encdec", "analyses run papers.reverse", "--set save=checkpoints/reverse_encdec")]


@pytest.mark.parametrize("name, module, flag", SHIPPED)
def test_meta_records_the_command_and_a_cpu_budget(name, module, flag):
    info = meta(name)
    assert info["command"].startswith(f"python -m {module} ") and flag in info["command"]
    assert info["train_seconds"] < 120
    assert sum(f.stat().st_size for f in (ROOT / name).iterdir()) < 2_000_000


def test_induction_checkpoint_learns_in_context_on_fresh_sequences():
    model = probe.load(ROOT / "induction_2l")
    task = meta("induction_2l")["analysis_config"]
    assert model.cfg.attn_only and model.cfg.n_layers == 2 and model.tokenizer is not None
    tokens, copy = repeated_sequences(256, task["n_symbols"], task["min_block"], task["block"], task["length"],
                                      seed=12345)
    first, repeated = half_losses(token_losses(model, tokens), copy)
    assert first > 0.8 * math.log(task["n_symbols"])
    assert repeated < LOSS_RATIO_BOUND * first


def test_reverse_checkpoint_reverses_fresh_sequences():
    model = probe.load(ROOT / "reverse_encdec")
    c = Config(**meta("reverse_encdec")["analysis_config"])
    exact, token = decode_accuracy(model, data(c, 256, seed=12345)[:])
    assert exact >= 0.95 and token >= 0.98


def test_induction_checkpoint_exports_to_gpt2_exactly():
    from probe.interop.hf_gpt2 import to_hf_gpt2

    model = probe.load(ROOT / "induction_2l")
    task = meta("induction_2l")["analysis_config"]
    tokens, _ = repeated_sequences(4, task["n_symbols"], task["min_block"], task["block"], task["length"], seed=1)
    with torch.no_grad():
        assert (to_hf_gpt2(model)(tokens).logits - model(tokens)).abs().max() < 1e-4
