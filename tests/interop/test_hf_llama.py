"""probe -> Hugging Face Llama: exact logits on small random RMSNorm + rotary models; clear refusals."""

import pytest
import torch
import transformers

from probe.interop.hf_llama import to_hf_llama
from tests.interop.test_hf_gpt2 import TOL, random_model, tokens

LLAMA = {"normalization_type": "RMS", "positional_embedding_type": "rotary"}
CONFIGS = {
    "default": {},
    "attn_only": {"attn_only": True},
    "tied_gelu_new_wide_heads": {"tie_embed": True, "act_fn": "gelu_new", "d_head": 10},
    "unscaled_silu_base500": {"use_attn_scale": False, "scale_embed": True, "act_fn": "silu", "rotary_base": 500.0},
    "swiglu_one_kv_head": {"gated_mlp": True, "act_fn": "silu", "n_key_value_heads": 1},
    "gated_gelu_new_tied_final_rms": {"gated_mlp": True, "act_fn": "gelu_new", "tie_embed": True, "final_rms": True},
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_export_keeps_logits(name):
    model = random_model(**LLAMA, **CONFIGS[name])
    x = tokens(model)
    hf = to_hf_llama(model)
    assert isinstance(hf, transformers.LlamaForCausalLM) and not hf.training
    assert hf.config.num_key_value_heads == (model.cfg.n_key_value_heads or model.cfg.n_heads)
    up = hf.model.layers[0].mlp.up_proj.weight
    assert bool(up.any()) == model.cfg.gated_mlp  # a plain MLP exports as up x = 1 exactly
    with torch.no_grad():
        assert (hf(x).logits - model(x)).abs().max() < TOL


@pytest.mark.parametrize("kw", [{}, {"gated_mlp": True, "act_fn": "silu", "n_key_value_heads": 1}])
def test_greedy_generation_agrees(kw):
    model = random_model(**LLAMA, **kw)
    x = tokens(model)[:, :5]
    hf = to_hf_llama(model)
    with torch.no_grad():
        ours = model.generate(x, max_new_tokens=6)
        theirs = hf.generate(x, max_new_tokens=6, do_sample=False, pad_token_id=0)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"normalization_type": "LN", "positional_embedding_type": "rotary"}, "normalization_type"),
        ({"normalization_type": "RMS", "positional_embedding_type": "learned"}, "positional_embedding_type"),
        ({**LLAMA, "rotary_dim": 4}, "rotary_dim"),
        ({**LLAMA, "norm_placement": "post"}, "norm_placement"),
        ({**LLAMA, "final_norm": False}, "final_norm"),
        ({**LLAMA, "unembed_bias": True}, "b_U"),
    ],
)
def test_refuses_configs_llama_cannot_express(kw, field):
    model = random_model(**kw)
    with pytest.raises(ValueError, match=field):
        to_hf_llama(model)
