"""Exported directories load offline in `transformers` and boot in TransformerLens' TransformerBridge with our
logits and attention patterns; `export` picks the layout and refuses models no layout represents."""

import json

import pytest
import torch
from transformer_lens.model_bridge import TransformerBridge
from transformers import AutoModelForCausalLM

from probe.interop.bridge import boot_bridge, export, layout_of, load_hf, vocab_tokenizer
from tests.interop.test_hf_gpt2 import TOL, random_model, tokens

LLAMA = {"normalization_type": "RMS", "positional_embedding_type": "rotary"}
LAYOUTS = {"gpt2": {"attn_only": True}, "llama": LLAMA,
           "llama_gqa_swiglu": {**LLAMA, "n_key_value_heads": 1, "gated_mlp": True, "act_fn": "silu"}}


@pytest.fixture(scope="module", params=list(LAYOUTS))
def booted(request, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    model = random_model(bos_token_id=1, pad_token_id=0, **LAYOUTS[request.param])
    out = export(model, tmp_path_factory.mktemp(request.param))
    bridge = boot_bridge(out)
    yield request.param, model, out, bridge
    mp.undo()


def test_export_writes_the_layout_and_the_probe_config(booted):
    layout, model, out, _ = booted
    assert layout_of(model) == layout.split("_")[0]
    info = json.loads((out / "probe_export.json").read_text())
    assert info["layout"] == layout.split("_")[0] and info["probe_config"]["d_model"] == model.cfg.d_model
    hf, tok = load_hf(out)
    assert tok("t3 t4 t28", add_special_tokens=False)["input_ids"] == [3, 4, 28]
    x = tokens(model)
    default = AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()  # sdpa attention
    with torch.no_grad():
        assert (hf(x).logits - model(x)).abs().max() < TOL
        assert (default(x).logits - model(x)).abs().max() < TOL


def test_bridge_boots_with_our_logits_and_patterns(booted):
    _, model, _, bridge = booted
    assert isinstance(bridge, TransformerBridge)
    assert bridge.cfg.n_layers == model.cfg.n_layers and bridge.cfg.d_vocab == model.cfg.d_vocab
    x = tokens(model)
    with torch.no_grad():
        logits, cache = bridge.run_with_cache(x)
        ours, our_cache = model.run_with_cache(x, names_filter=lambda n: n.endswith("hook_pattern"))
    assert (logits - ours).abs().max() < TOL
    for layer in range(model.cfg.n_layers):
        theirs = cache[f"blocks.{layer}.attn.hook_pattern"]
        assert (theirs - our_cache["pattern", layer]).abs().max() < TOL
    with torch.no_grad():  # TransformerLens' hook shapes, grouped-query key/value heads included
        _, our_cache = model.run_with_cache(x)
    for name in ("attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_z", "hook_resid_post"):
        assert cache[f"blocks.0.{name}"].shape == our_cache[f"blocks.0.{name}"].shape, name
    kv_heads = model.cfg.n_key_value_heads or model.cfg.n_heads
    assert cache["blocks.0.attn.hook_k"].shape[2] == our_cache["blocks.0.attn.hook_v"].shape[2] == kv_heads
    assert bridge.to_tokens("t5 t6", prepend_bos=False).tolist() == [[5, 6]]


def test_export_uses_the_models_tokenizer(tmp_path):
    names = ["<pad>", "<bos>", *"abcdefghijklmnopqrstuvwxyz", "."]
    model = random_model(pad_token_id=0, bos_token_id=1)
    model.tokenizer = vocab_tokenizer(names=names)
    _, tok = load_hf(export(model, tmp_path))
    assert tok("a b .", add_special_tokens=False)["input_ids"] == [2, 3, 28]
    assert tok.bos_token == "<bos>" and tok.pad_token == "<pad>"


def test_export_refuses_models_no_layout_represents(tmp_path):
    with pytest.raises(ValueError, match="GPT-2.*positional_embedding_type.*\n.*Llama.*normalization_type"):
        export(random_model(positional_embedding_type="rotary"), tmp_path)
    with pytest.raises(ValueError, match="d_vocab"):
        export(random_model(), tmp_path, tokenizer=vocab_tokenizer(5))
    assert not any(tmp_path.iterdir())  # nothing written on refusal


def test_vocab_tokenizer_checks_its_names():
    with pytest.raises(ValueError, match="distinct"):
        vocab_tokenizer(names=["a", "a"])
    with pytest.raises(ValueError, match="d_vocab"):
        vocab_tokenizer()
