"""Configs: one validation shared by TransformerConfig and ViTConfig; every field is implemented or refused by name."""

import pytest
import torch

from probe import CNNConfig, Transformer, TransformerConfig, ViT, ViTConfig
from probe.config import ScanSnapConfig
from probe.nn.norm import RMSNorm

BLOCK_CONFIGS = {"transformer": TransformerConfig, "vit": ViTConfig}

# (field, bad value): each must be refused the same way by every config built from probe.nn blocks
BAD_BLOCK_VALUES = [
    ("d_mlp", -3),
    ("d_head", 0),
    ("n_heads", 0),
    ("act_fn", "tanh"),
    ("normalization_type", "layer"),
    ("norm_placement", "middle"),
    ("dropout", 1.0),
    ("eps", 0.0),
    ("n_key_value_heads", 3),  # does not divide n_heads=4
    ("n_key_value_heads", 0),
    ("layer_norm_folding", True),
    ("dtype", torch.int64),
]
WRONG_TYPES = [("n_layers", 1.5), ("init_range", "big"), ("gated_mlp", "yes"), ("use_attn_scale", 1)]


@pytest.mark.parametrize("field, value", BAD_BLOCK_VALUES)
@pytest.mark.parametrize("kind", list(BLOCK_CONFIGS))
def test_every_block_config_refuses_the_same_bad_values(kind, field, value):
    with pytest.raises(ValueError, match=field):
        BLOCK_CONFIGS[kind](**{"d_model": 16, "n_heads": 4, field: value})


@pytest.mark.parametrize("field, value", WRONG_TYPES)
@pytest.mark.parametrize("kind", list(BLOCK_CONFIGS))
def test_every_block_config_refuses_wrong_types(kind, field, value):
    cfg = BLOCK_CONFIGS[kind](d_model=16, n_heads=4)
    setattr(cfg, field, value)  # past the constructor (the test suite type-checks constructor calls itself)
    with pytest.raises(TypeError, match=field):
        cfg.check_blocks()


@pytest.mark.parametrize(
    "fields, name",
    [
        ({"tokenizer_name": "gpt2"}, "tokenizer_name"),
        ({"attention": "linear", "n_key_value_heads": 2}, "n_key_value_heads"),
        ({"gated_mlp": True, "attn_only": True}, "gated_mlp"),
        ({"final_rms": True, "norm_placement": "post"}, "final_rms"),
        ({"final_rms": True, "normalization_type": None}, "final_rms"),
        ({"final_rms": True, "final_norm": False}, "final_rms"),
        ({"pool": "mean"}, "pool"),
        ({"rotary_base": 500.0}, "rotary_base"),
        ({"rotary_dim": 2}, "rotary_dim"),
        ({"feature_map": "dpfp"}, "feature_map"),
        ({"update_rule": "delta"}, "update_rule"),
        ({"n_decoder_layers": 3}, "n_decoder_layers"),
        ({"default_prepend_bos": True}, "bos_token_id"),
        ({"device": "gpu:0"}, "device"),
        ({"use_attn_in": True, "use_split_qkv_input": True}, "use_attn_in"),
        ({"use_attn_in": True, "n_key_value_heads": 2}, "use_attn_in"),
        ({"use_split_qkv_input": True, "short_conv": 3}, "use_split_qkv_input"),
        ({"use_attn_in": True, "short_conv": 3}, "use_attn_in"),
        ({"use_hook_mlp_in": True, "attn_only": True}, "use_hook_mlp_in"),
    ],
)
def test_transformer_config_refuses_fields_it_would_ignore(fields, name):
    with pytest.raises(ValueError, match=name):
        TransformerConfig(d_model=16, n_heads=4, **fields)


def test_vit_config_refuses_what_a_vit_cannot_do():
    with pytest.raises(ValueError, match="default_prepend_bos"):
        ViTConfig(default_prepend_bos=True)
    with pytest.raises(ValueError, match="attention"):
        ViTConfig(attention="linear")


@pytest.mark.parametrize("cfg, field, value", [(CNNConfig(), "seed", 1.5), (ScanSnapConfig(), "normalize", "yes"),
                                               (TransformerConfig(), "d_vocab", 12.0)])
def test_every_config_checks_types(cfg, field, value):
    setattr(cfg, field, value)
    with pytest.raises(TypeError, match=field):
        cfg.__post_init__()


def test_accepted_fields_take_effect():
    cfg = TransformerConfig(d_model=16, n_heads=4, d_vocab=11, n_ctx=8, final_rms=True, dtype=torch.float64,
                            device="meta")
    model = Transformer(cfg)
    assert isinstance(model.ln_final, RMSNorm)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert {p.device.type for p in model.parameters()} == {"meta"} and model.cfg.device == "meta"
    vit = ViT(ViTConfig(d_model=16, n_heads=4, final_rms=True, dtype=torch.float64))
    assert isinstance(vit.ln_final, RMSNorm) and vit.W_U.dtype == torch.float64


def test_default_prepend_bos_prepends_bos_in_to_tokens():
    from probe.interop.bridge import vocab_tokenizer

    cfg = TransformerConfig(d_model=16, n_heads=4, d_vocab=11, n_ctx=8, bos_token_id=1)
    with_bos = Transformer(cfg.replace(default_prepend_bos=True), tokenizer=vocab_tokenizer(11))
    without = Transformer(cfg, tokenizer=vocab_tokenizer(11))
    assert with_bos.to_tokens("t5 t6").tolist() == [[1, 5, 6]]
    assert without.to_tokens("t5 t6").tolist() == [[5, 6]]
    assert with_bos.to_single_token("t7") == 7


def test_n_params_counts_gated_and_grouped_weights():
    cfg = TransformerConfig(d_model=24, n_heads=4, n_key_value_heads=2, gated_mlp=True, d_mlp=40, n_layers=2)
    model = Transformer(cfg)
    assert model.W_gate.shape == (2, 24, 40) and model.W_K.shape == (2, 2, 24, 6) and model.W_Q.shape == (2, 4, 24, 6)
    weights = [p for n, p in model.named_parameters() if n.startswith("blocks.") and ".W_" in n]
    assert cfg.n_params == sum(p.numel() for p in weights)
