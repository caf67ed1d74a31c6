"""probe <-> Hugging Face GPT-2: exact logits both ways on small random models; clear refusals."""

import pytest
import torch
import transformers

from probe import Transformer, TransformerConfig
from probe.interop.hf_gpt2 import from_hf_gpt2, to_hf_gpt2

TOL = 1e-4


def random_model(**kw) -> Transformer:
    base = dict(d_model=24, n_layers=2, n_heads=3, d_mlp=40, d_vocab=29, n_ctx=13, unembed_bias=False, seed=0)
    model = Transformer(TransformerConfig(**{**base, **kw})).eval()
    with torch.no_grad():  # move every weight, LN gains and biases included, off its initial value
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model


def tokens(model: Transformer, batch: int = 3) -> torch.Tensor:
    return torch.randint(0, model.cfg.d_vocab, (batch, model.cfg.n_ctx), generator=torch.Generator().manual_seed(1))


CONFIGS = {
    "default": {},
    "attn_only": {"attn_only": True},
    "tied_gelu_new": {"tie_embed": True, "act_fn": "gelu_new"},
    "sinusoidal_unscaled_relu": {"positional_embedding_type": "sinusoidal", "use_attn_scale": False,
                                 "scale_embed": True, "act_fn": "relu"},
    "no_positions_silu": {"positional_embedding_type": "none", "act_fn": "silu", "eps": 1e-6},
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_round_trip_keeps_logits(name):
    model = random_model(**CONFIGS[name])
    x = tokens(model)
    ours = model(x)
    hf = to_hf_gpt2(model)
    assert isinstance(hf, transformers.GPT2LMHeadModel) and not hf.training
    with torch.no_grad():
        theirs = hf(x).logits
    assert (theirs - ours).abs().max() < TOL
    back = from_hf_gpt2(hf)
    assert back.cfg.attn_only == model.cfg.attn_only and back.cfg.tie_embed == model.cfg.tie_embed
    assert (back(x) - ours).abs().max() < TOL


def test_import_of_a_native_gpt2_keeps_logits():
    config = transformers.GPT2Config(vocab_size=31, n_positions=11, n_embd=16, n_layer=2, n_head=4,
                                     tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model = from_hf_gpt2(hf)
    assert not model.cfg.attn_only and model.cfg.act_fn == "gelu_new" and model.cfg.d_mlp == 64
    x = torch.randint(0, 31, (2, 11))
    with torch.no_grad():
        assert (model(x) - hf(x).logits).abs().max() < TOL
        generated = model.generate(x[:, :4], max_new_tokens=5)
        hf_generated = hf.generate(x[:, :4], max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert torch.equal(generated, hf_generated)


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"norm_placement": "post"}, "norm_placement"),
        ({"normalization_type": "RMS"}, "normalization_type"),
        ({"positional_embedding_type": "rotary"}, "positional_embedding_type"),
        ({"arch": "encoder"}, "arch"),
        ({"d_head": 5}, "d_head"),
        ({"tie_embed": True, "scale_embed": True}, "scale_embed"),
        ({"attention": "linear"}, "attention"),
        ({"short_conv": 3}, "short_conv"),
        ({"gated_mlp": True}, "gated_mlp"),
        ({"n_key_value_heads": 1}, "n_key_value_heads"),
        ({"final_rms": True}, "final_rms"),
    ],
)
def test_refuses_configs_gpt2_cannot_express(kw, field):
    with pytest.raises(ValueError, match=field):
        to_hf_gpt2(random_model(**kw))


def test_refuses_a_nonzero_unembed_bias():
    model = random_model(unembed_bias=True)
    with pytest.raises(ValueError, match="b_U"):
        to_hf_gpt2(model)
    with torch.no_grad():
        model.unembed.b_U.zero_()
    to_hf_gpt2(model)  # an all-zero trainable bias is fine


def test_import_refuses_what_probe_cannot_express():
    config = transformers.GPT2Config(vocab_size=7, n_positions=5, n_embd=8, n_layer=1, n_head=2,
                                     scale_attn_by_inverse_layer_idx=True)
    with pytest.raises(ValueError, match="scale_attn_by_inverse_layer_idx"):
        from_hf_gpt2(transformers.GPT2LMHeadModel(config))
    with pytest.raises(TypeError, match="GPT2LMHeadModel"):
        from_hf_gpt2(random_model())
