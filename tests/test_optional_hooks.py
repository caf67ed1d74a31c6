"""TransformerLens' optional hooks on probe's blocks: per-head residual inputs (`use_split_qkv_input`, `use_attn_in`)
and the MLP's input (`use_hook_mlp_in`), behind their config flags and `set_use_*` switches."""

import pytest
import torch

from probe import Transformer, TransformerConfig, ViT, ViTConfig

FLAGS = ("use_split_qkv_input", "use_attn_in", "use_hook_mlp_in")
OPTIONAL = ("attn.hook_q_input", "attn.hook_k_input", "attn.hook_v_input", "attn.hook_attn_in", "hook_mlp_in")


def decoder(**kw):
    cfg = {"d_model": 24, "n_heads": 4, "n_layers": 2, "d_vocab": 13, "n_ctx": 16, "dtype": torch.float64, "seed": 0}
    return Transformer(TransformerConfig(**{**cfg, **kw})).eval()


def perturbed(model):
    """Non-trivial norm weights and biases (fresh ones are 1 and 0)."""
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def test_optional_hooks_fire_only_with_their_flag_and_refuse_a_hook_while_off():
    model = decoder(n_key_value_heads=2)
    tokens = torch.randint(0, 13, (2, 7))
    assert {f"blocks.0.{name}" for name in OPTIONAL} <= set(model.hook_dict)
    _, cache = model.run_with_cache(tokens)  # a sweep over every hook skips the ones that never fire
    assert not [name for name in cache if name.endswith(OPTIONAL)]
    for name, setter in [("blocks.0.attn.hook_q_input", "set_use_split_qkv_input"),
                         ("blocks.1.attn.hook_attn_in", "set_use_attn_in"),
                         ("blocks.0.hook_mlp_in", "set_use_hook_mlp_in")]:
        with pytest.raises(ValueError, match=rf"{name}.*model\.{setter}\(True\)"):
            model.run_with_hooks(tokens, fwd_hooks=[(name, lambda x, hook: None)])
        with pytest.raises(ValueError, match=setter):
            model.run_with_cache(tokens, names_filter=[name])
    model.set_use_split_qkv_input(True)
    model.set_use_hook_mlp_in(True)
    _, cache = model.run_with_cache(tokens)
    assert cache["blocks.1.attn.hook_q_input"].shape == (2, 7, 4, 24)  # [batch pos head d_model]
    assert cache["blocks.1.attn.hook_k_input"].shape == (2, 7, 2, 24)  # [batch pos kv_head d_model]
    assert cache["blocks.1.attn.hook_v_input"].shape == (2, 7, 2, 24)
    assert cache["blocks.1.hook_mlp_in"].shape == (2, 7, 24)
    assert "blocks.0.attn.hook_attn_in" not in cache
    model.set_use_split_qkv_input(False)
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: "input" in name)
    assert not cache


KINDS = [{}, {"norm_placement": "post"}, {"normalization_type": "RMS"}, {"positional_embedding_type": "rotary"},
         {"n_key_value_heads": 2}, {"attention": "linear", "update_rule": "delta", "feature_map": "dpfp"},
         {"attention": "linear", "arch": "encoder", "head": "token"},
         {"arch": "encoder", "head": "classifier", "d_vocab_out": 3}, {"arch": "encoder_decoder", "bos_token_id": 1}]


@pytest.mark.parametrize("kw, per_head", [(kw, flag) for kw in KINDS for flag in ("use_split_qkv_input", "use_attn_in")
                                          if not (flag == "use_attn_in" and "n_key_value_heads" in kw)])  # refused
def test_the_flags_change_no_output(kw, per_head):
    """Per-head copies through ln1 and per-head projections compute what the fused block computes; so does the MLP
    on hook_mlp_in (also while generating through a KV cache)."""
    model = perturbed(decoder(**kw))
    tokens = torch.randint(0, 13, (2, 7))
    inputs = (tokens, torch.randint(0, 13, (2, 5))) if kw.get("arch") == "encoder_decoder" else (tokens,)
    plain = model(*inputs)
    generated = model.generate(tokens, 4) if kw.get("arch", "decoder") != "encoder" else None
    getattr(model, f"set_{per_head}")(True)
    model.set_use_hook_mlp_in(True)
    hooked, cache = model.run_with_cache(*inputs)
    assert any(name.endswith(("_input", "attn_in")) for name in cache) and any("mlp_in" in name for name in cache)
    torch.testing.assert_close(hooked, plain, atol=1e-10, rtol=1e-10)
    if generated is not None:
        assert torch.equal(model.generate(tokens, 4), generated)


def test_each_head_reads_its_own_copy_of_the_residual_stream():
    model = perturbed(decoder())
    model.set_use_split_qkv_input(True)
    tokens = torch.randint(0, 13, (2, 7))
    _, cache = model.run_with_cache(tokens)
    for name in ("q_input", "k_input", "v_input"):  # every copy is resid_pre, hooked before ln1 (TransformerLens)
        copies = cache[f"blocks.1.attn.hook_{name}"]
        torch.testing.assert_close(copies, cache["blocks.1.hook_resid_pre"][:, :, None].expand_as(copies))

    def bump(x, hook):  # in place: each head's copy is its own memory
        x[:, :, 2] += torch.linspace(-1.0, 1.0, x.shape[-1], dtype=x.dtype)  # not a constant shift, which LN removes

    for name, changed in [("q_input", "hook_q"), ("k_input", "hook_k"), ("v_input", "hook_v")]:
        with model.hooks(fwd_hooks=[(f"blocks.1.attn.hook_{name}", bump)]):
            _, edited = model.run_with_cache(tokens)
        delta = (edited[f"blocks.1.attn.{changed}"] - cache[f"blocks.1.attn.{changed}"]).abs().amax((0, 1, 3))
        assert delta[2] > 1e-3 and torch.all(delta[[0, 1, 3]] == 0), name  # only head 2's projection moved
        for other in {"hook_q", "hook_k", "hook_v"} - {changed}:
            torch.testing.assert_close(edited[f"blocks.1.attn.{other}"], cache[f"blocks.1.attn.{other}"])
    model.set_use_split_qkv_input(False)
    model.set_use_attn_in(True)
    with model.hooks(fwd_hooks=[("blocks.0.attn.hook_attn_in", bump)]):
        _, edited = model.run_with_cache(tokens, names_filter=["blocks.0.attn.hook_q", "blocks.0.attn.hook_v"])
    _, clean = model.run_with_cache(tokens, names_filter=["blocks.0.attn.hook_q", "blocks.0.attn.hook_v"])
    for name in edited:  # one copy feeds the head's query, key and value
        delta = (edited[name] - clean[name]).abs().amax((0, 1, 3))
        assert delta[2] > 1e-3 and torch.all(delta[[0, 1, 3]] == 0), name


def test_hook_mlp_in_is_a_copy_before_ln2():
    model = perturbed(decoder())
    model.set_use_hook_mlp_in(True)
    tokens = torch.randint(0, 13, (2, 7))
    _, cache = model.run_with_cache(tokens)
    torch.testing.assert_close(cache["blocks.0.hook_mlp_in"], cache["blocks.0.hook_resid_mid"])
    shift = torch.linspace(-1.0, 1.0, 24, dtype=torch.float64)
    with model.hooks(fwd_hooks=[("blocks.0.hook_mlp_in", lambda x, hook: x.add_(shift))]):  # in place, on the copy
        _, edited = model.run_with_cache(tokens)
    torch.testing.assert_close(edited["blocks.0.hook_resid_mid"], cache["blocks.0.hook_resid_mid"])
    torch.testing.assert_close(edited["blocks.0.hook_resid_post"] - edited["blocks.0.hook_mlp_out"],
                               cache["blocks.0.hook_resid_mid"])  # the skip path kept the unedited stream
    assert not torch.allclose(edited["blocks.0.hook_mlp_out"], cache["blocks.0.hook_mlp_out"])  # the MLP read it
    ln2 = model.blocks[0].ln2  # ln2 normalises the hooked copy
    torch.testing.assert_close(edited["blocks.0.ln2.hook_normalized"] * ln2.w + ln2.b,
                               ln2(cache["blocks.0.hook_resid_mid"] + shift))


def test_set_use_switches_validate_like_the_config_and_touch_only_the_models_config():
    cfg = TransformerConfig(d_model=24, n_heads=4, n_layers=1, d_vocab=13, n_ctx=16)
    model = Transformer(cfg)
    model.set_use_split_qkv_input(True)
    assert model.cfg.use_split_qkv_input and not cfg.use_split_qkv_input
    with pytest.raises(ValueError, match="use_attn_in.*use_split_qkv_input"):
        model.set_use_attn_in(True)
    assert not model.cfg.use_attn_in
    with pytest.raises(TypeError, match="use_hook_mlp_in"):
        model.set_use_hook_mlp_in("yes")
    with pytest.raises(ValueError, match="use_hook_mlp_in.*attn_only"):
        decoder(attn_only=True).set_use_hook_mlp_in(True)
    with pytest.raises(ValueError, match="use_split_qkv_input.*short_conv"):
        decoder(short_conv=3).set_use_split_qkv_input(True)
    model.set_use_attn_result(True)  # recorded for TransformerLens' tools, which set and restore it
    assert model.cfg.use_attn_result
    vit = ViT(ViTConfig(d_model=16, n_heads=2))
    vit.set_use_attn_in(True)
    _, cache = vit.run_with_cache(torch.rand(1, 1, 8, 8))
    assert cache["blocks.1.attn.hook_attn_in"].shape == (1, 17, 2, 16)
