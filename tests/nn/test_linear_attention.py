"""LinearAttention layer: causality, hooks (pattern / fast weights) agreeing with the fast path, recurrent decoding."""

import pytest
import torch

from probe import Transformer, TransformerConfig
from probe.nn.linear_attention import LinearAttention

MAPS = ["elu_plus_one", "identity", "dpfp", "favor_plus"]
CASES = [("elu_plus_one", "sum"), ("identity", "sum"), ("favor_plus", "sum"), ("dpfp", "delta"), ("identity", "delta")]


def cfg(feature_map="elu_plus_one", rule="sum", **kw):
    base = dict(d_model=24, n_heads=2, n_layers=2, d_vocab=13, n_ctx=160, attention="linear", feature_map=feature_map,
                update_rule=rule, dpfp_nu=2, favor_features=8)
    return TransformerConfig(**{**base, **kw})


@pytest.mark.parametrize("feature_map,rule", CASES)
def test_causal_and_streaming_equals_full_pass(feature_map, rule):
    attn = LinearAttention(cfg(feature_map, rule), causal=True).double()
    x = torch.randn(2, 139, 24, dtype=torch.float64)  # > two chunks of 64, odd length
    full = attn(x)
    x2 = x.clone()
    x2[:, 40:] = torch.randn(2, 99, 24, dtype=torch.float64)
    torch.testing.assert_close(attn(x2)[:, :40], full[:, :40])  # the future does not leak back
    cache: dict = {}
    steps = [attn(x[:, :3], cache=cache)] + [attn(x[:, t : t + 1], cache=cache) for t in range(3, 6)]
    steps.append(attn(x[:, 6:], cache=cache))
    torch.testing.assert_close(torch.cat(steps, 1), full)
    assert cache["pos"] == 139


@pytest.mark.parametrize("feature_map,rule", CASES)
def test_hooked_paths_agree_with_the_fast_path(feature_map, rule):
    """hook_pattern (A V) and hook_fast_weight (W_t phi(q_t)) views give the chunked output, also after a state."""
    model = Transformer(cfg(feature_map, rule)).double()
    tokens = torch.randint(0, 13, (2, 70))
    logits = model(tokens)
    for name in ("blocks.0.attn.hook_pattern", "blocks.0.attn.hook_fast_weight"):
        seen: list = []
        hooked = model.run_with_hooks(tokens, fwd_hooks=[(name, lambda t, hook, seen=seen: seen.append(t))])
        torch.testing.assert_close(hooked, logits)
        assert len(seen) == 1
        caches = [{} for _ in model.blocks]
        model(tokens[:, :33], caches=caches)
        after = model.run_with_hooks(tokens[:, 33:], caches=caches, fwd_hooks=[(name, lambda t, hook: None)])
        torch.testing.assert_close(after, logits[:, 33:])


@pytest.mark.parametrize("rule", ["sum", "delta"])
def test_run_with_cache_pattern_rows_are_the_equivalent_attention(rule):
    model = Transformer(cfg("dpfp", rule)).double()
    tokens = torch.randint(0, 13, (3, 41))
    _, cache = model.run_with_cache(tokens)
    pattern, v, z = cache["pattern", 1], cache["v", 1], cache["z", 1]
    assert pattern.shape == (3, 2, 41, 41) and (pattern.triu(1) == 0).all()
    torch.testing.assert_close(torch.einsum("bhqk,bkhe->bqhe", pattern, v), z)
    W, phi_q = cache["blocks.1.attn.hook_fast_weight"], cache["blocks.1.attn.hook_phi_q"]
    assert W.shape == (3, 2, 41, 12, 48)
    if rule == "delta":  # no denominator: y_t = W_t phi(q_t)
        torch.testing.assert_close(torch.einsum("bhpef,bphf->bphe", W, phi_q), z)
        assert cache["blocks.1.attn.hook_beta"].shape == (3, 41, 2)
    else:
        rows = pattern.sum(-1)  # DPFP features can be orthogonal: a row is normalised, or all zero (q.z_t = 0)
        assert (((rows - 1).abs() < 1e-4) | (pattern.abs().amax(-1) == 0)).all() and (rows > 0.5).float().mean() > 0.9


def test_pattern_intervention_changes_the_output():
    model = Transformer(cfg()).double()
    tokens = torch.randint(0, 13, (1, 20))

    def uniform(pattern, hook):
        return torch.tril(torch.ones_like(pattern)) / torch.arange(1, 21, dtype=pattern.dtype)[:, None]

    clean = model(tokens)
    patched = model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.attn.hook_pattern", uniform)])
    assert (patched - clean).abs().max() > 1e-3


@pytest.mark.parametrize("rule", ["sum", "delta"])
def test_generate_is_recurrent_with_constant_state(rule):
    model = Transformer(cfg("elu_plus_one", rule)).eval()
    prompt = torch.randint(0, 13, (2, 9))
    out = model.generate(prompt, 6)
    assert out.shape == (2, 15) and torch.equal(out[:, :9], prompt)
    assert torch.equal(out, model.generate(prompt, 6, use_cache=False))  # recurrent steps == full re-reads
    caches = [{} for _ in model.blocks]
    model(prompt, caches=caches)
    size = sum(t.numel() for t in torch.utils._pytree.tree_leaves(caches[0]["self"]["state"]))
    for _ in range(3):
        model(torch.randint(0, 13, (2, 1)), caches=caches)
        assert sum(t.numel() for t in torch.utils._pytree.tree_leaves(caches[0]["self"]["state"])) == size


def test_noncausal_sum_rule_encoder_with_padding():
    c = cfg(arch="encoder", head="classifier", d_vocab_out=3)
    model = Transformer(c).double()
    tokens = torch.randint(0, 13, (2, 10))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[0, 7:] = 0
    out = model(tokens, attention_mask=mask)
    tokens2 = tokens.clone()
    tokens2[0, 7:] = (tokens[0, 7:] + 1) % 13
    torch.testing.assert_close(model(tokens2, attention_mask=mask)[0], out[0])
    _, cache = model.run_with_cache(tokens, attention_mask=mask)
    assert cache["pattern", 0][0, :, :, 7:].abs().max() == 0


def test_no_nan_under_bf16_autocast_and_gradients_flow():
    for rule in ("sum", "delta"):
        model = Transformer(cfg("favor_plus", rule))
        tokens = torch.randint(0, 13, (2, 100))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(tokens, return_type="loss")
        loss.backward()
        assert torch.isfinite(loss)
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        if rule == "delta":
            assert model.blocks[0].attn.W_beta.grad.abs().sum() > 0


def test_unsupported_configurations_raise():
    with pytest.raises(ValueError, match="cross"):
        LinearAttention(cfg(), causal=False, cross=True)
    with pytest.raises(ValueError, match="delta"):
        LinearAttention(cfg(rule="delta"), causal=False)


def test_checkpoint_round_trip_keeps_favor_features_and_beta(tmp_path):
    import probe

    model = Transformer(cfg("favor_plus", "delta", n_layers=1))
    model.save(tmp_path / "m")
    loaded = probe.load(tmp_path / "m")
    tokens = torch.randint(0, 13, (1, 9))
    assert torch.equal(loaded.blocks[0].attn.projection, model.blocks[0].attn.projection)
    torch.testing.assert_close(loaded(tokens), model(tokens))
