"""probe.Transformer: causality, equivariance, ablation, generation, padding, and clear errors on bad input."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe import Transformer, TransformerConfig


def small(**kw):
    base = dict(d_model=32, n_heads=4, n_layers=2, d_vocab=23, n_ctx=32)
    base.update(kw)
    return Transformer(TransformerConfig(**base)).eval()


@pytest.mark.parametrize("pos", ["learned", "sinusoidal", "rotary", "none"])
def test_changing_token_t_never_changes_outputs_before_t(pos):
    model = small(positional_embedding_type=pos)
    tokens = torch.randint(0, 23, (2, 17))
    changed = tokens.clone()
    changed[:, 9] = (changed[:, 9] + 1) % 23
    a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :9], b[:, :9])
    assert (a[:, 9:] - b[:, 9:]).abs().max() > 1e-4


def test_encoder_without_positions_is_permutation_equivariant_and_with_positions_is_not():
    tokens = torch.randint(0, 23, (2, 12))
    perm = torch.randperm(12)
    model = small(arch="encoder", head="token", positional_embedding_type="none")
    torch.testing.assert_close(model(tokens[:, perm]), model(tokens)[:, perm], atol=1e-5, rtol=1e-5)
    model = small(arch="encoder", head="token", positional_embedding_type="learned")
    assert (model(tokens[:, perm]) - model(tokens)[:, perm]).abs().max() > 1e-3


def test_zero_ablating_a_head_equals_zeroing_its_slice_of_W_O():
    model = small()
    tokens = torch.randint(0, 23, (2, 10))

    def ablate(z, hook):
        z[:, :, 2] = 0
        return z

    ablated = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.attn.hook_z", ablate)])
    with torch.no_grad():
        model.blocks[1].attn.W_O[2] = 0
    torch.testing.assert_close(ablated, model(tokens))


def test_padding_does_not_change_real_positions():
    model = small(arch="encoder", head="token", positional_embedding_type="learned")
    tokens = torch.randint(0, 23, (1, 9))
    padded = torch.cat([tokens, torch.randint(0, 23, (1, 4))], 1)
    mask = torch.cat([torch.ones(1, 9), torch.zeros(1, 4)], 1).long()
    torch.testing.assert_close(model(padded, attention_mask=mask)[:, :9], model(tokens), atol=1e-5, rtol=1e-5)


def test_classifier_head_and_mean_pooling_ignore_padding():
    model = small(arch="encoder", head="classifier", pool="mean", d_vocab_out=3)
    tokens = torch.randint(0, 23, (1, 6))
    padded = torch.cat([tokens, torch.zeros(1, 3, dtype=torch.long)], 1)
    mask = torch.tensor([[1] * 6 + [0] * 3])
    out = model(padded, attention_mask=mask)
    assert out.shape == (1, 3)
    torch.testing.assert_close(out, model(tokens), atol=1e-5, rtol=1e-5)
    loss = model(padded, attention_mask=mask, labels=torch.tensor([2]), return_type="loss")
    assert loss.ndim == 0 and loss > 0


def nll(logits, targets):
    """Mean negative log-likelihood of `targets` (a list of (row, position, token)), by hand."""
    logp = logits.double().log_softmax(-1)
    return -torch.stack([logp[b, t, tok] for b, t, tok in targets]).mean()


def test_loss_never_counts_padded_targets():
    """One loss: next-token targets at padded positions (attention_mask 0) never count, label smoothing too."""
    model = small()
    tokens = torch.randint(0, 23, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 6:] = 0  # row 1: 6 real tokens, 3 padding
    logits = model(tokens, attention_mask=mask)
    real = [(b, t, int(tokens[b, t + 1])) for b in range(2) for t in range(8) if mask[b, t + 1]]
    assert len(real) == 8 + 5
    loss = model(tokens, attention_mask=mask, return_type="loss")
    torch.testing.assert_close(loss.double(), nll(logits, real))
    labels = torch.where(mask.bool(), tokens, 0)  # per-position labels: padded ones must not count either
    per_position = [(b, t, int(labels[b, t])) for b in range(2) for t in range(9) if mask[b, t]]
    torch.testing.assert_close(model(tokens, attention_mask=mask, labels=labels, return_type="loss").double(),
                               nll(logits, per_position))
    from probe.train.trainer import smoothed_loss

    batch = {"tokens": tokens, "attention_mask": mask}
    for eps in (0.0, 0.3):
        torch.testing.assert_close(model(**batch, return_type="loss", label_smoothing=eps),
                                   smoothed_loss(logits, batch, eps))


@pytest.mark.parametrize("pos", ["learned", "rotary", "sinusoidal"])
def test_kv_cache_generation_equals_full_recompute(pos):
    model = small(positional_embedding_type=pos)
    prompt = torch.randint(0, 23, (3, 5))
    fast = model.generate(prompt, 8)
    slow = model.generate(prompt, 8, use_cache=False)
    assert fast.shape == (3, 13) and torch.equal(fast, slow)
    # the cached logits are the full forward's logits
    caches = [{} for _ in model.blocks]
    first = model(fast[:, :5], caches=caches)
    step = model(fast[:, 5:6], caches=caches)
    torch.testing.assert_close(torch.cat([first, step], 1), model(fast[:, :6]), atol=1e-5, rtol=1e-5)


def test_sampling_with_top_k_only_picks_among_the_top_k():
    model = small()
    prompt = torch.randint(0, 23, (64, 3))
    logits = model(prompt)[:, -1]
    out = model.generate(prompt, 1, temperature=1.0, top_k=2)[:, -1]
    top2 = logits.topk(2).indices
    assert (out[:, None] == top2).any(1).all()


def test_encoder_decoder_trains_and_decodes_greedily():
    model = small(arch="encoder_decoder", bos_token_id=1, eos_token_id=2)
    src = torch.randint(3, 23, (4, 7))
    tgt = torch.cat([torch.ones(4, 1, dtype=torch.long), src.flip(1)], 1)
    logits, loss = model(src, tgt[:, :-1], labels=tgt[:, 1:], return_type="both")
    assert logits.shape == (4, 7, 23) and loss.ndim == 0
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    out = model.generate(src, 6)
    assert out[:, 0].eq(1).all() and torch.equal(out, model.generate(src, 6, use_cache=False))


def test_tied_unembedding_shares_the_embedding():
    model = small(tie_embed=True)
    torch.testing.assert_close(model.W_U, model.W_E.T)
    model(torch.randint(0, 23, (1, 4)), return_type="loss").backward()
    assert model.W_E.grad is not None
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in small().parameters())


def test_dropout_is_active_in_training_only():
    model = small(dropout=0.5)
    tokens = torch.randint(0, 23, (2, 8))
    torch.testing.assert_close(model.eval()(tokens), model(tokens))
    model.train()
    assert (model(tokens) - model(tokens)).abs().max() > 0


def test_bad_input_gives_clear_errors():
    model = small()
    with pytest.raises(ValueError, match=r"ids in \[0, 23\].*d_vocab=23"):
        model(torch.tensor([[0, 23]]))
    with pytest.raises(ValueError, match="d_vocab"):
        model(torch.tensor([[-1, 2]]))
    with pytest.raises(TypeError, match="tokens"):  # under pytest, jaxtyping's checker answers first
        model(torch.zeros(1, 4))
    with pytest.raises(TypeError, match="integer tensor of token ids"):  # what users see without the checker
        model.check_tokens(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="n_ctx=32"):
        model(torch.zeros(1, 40, dtype=torch.long))
    small(positional_embedding_type="rotary")(torch.zeros(1, 40, dtype=torch.long))  # rotary extends
    with pytest.raises(KeyError, match=r"blocks\.0\.attn\.hook_pattern"):
        model.run_with_hooks(torch.zeros(1, 3, dtype=torch.long), fwd_hooks=[("blocks.0.attn.hook_patern", print)])
    with pytest.raises(KeyError, match="closest"):
        model.run_with_cache(torch.zeros(1, 3, dtype=torch.long), names_filter=["blocks.0.hook_resid_prr"])
    with pytest.raises(ValueError, match="return_type"):
        model(torch.zeros(1, 3, dtype=torch.long), return_type="probs")
    with pytest.raises(ValueError, match="attention_mask must have shape"):
        model(torch.zeros(1, 3, dtype=torch.long), attention_mask=torch.ones(1, 4))


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(d_model=30, n_heads=4), "d_model=30"),
        (dict(n_ctx=0), "n_ctx"),
        (dict(arch="seq2seq"), "arch"),
        (dict(normalization_type="BN"), "normalization_type"),
        (dict(positional_embedding_type="alibi"), "positional_embedding_type"),
        (dict(positional_embedding_type="rotary", rotary_dim=3), "rotary_dim"),
        (dict(head="classifier"), "head"),
        (dict(dropout=1.5), "dropout"),
        (dict(act_fn="swish"), "act_fn"),
        (dict(bos_token_id=99), "bos_token_id"),
    ],
)
def test_invalid_configs_fail_at_construction_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TransformerConfig(**kwargs)


def test_config_round_trips_through_a_dict():
    cfg = TransformerConfig(arch="encoder_decoder", positional_embedding_type="sinusoidal", dtype=torch.float64)
    again = TransformerConfig.from_dict(cfg.to_dict())
    assert again == cfg
    with pytest.raises(ValueError, match="unknown fields"):
        TransformerConfig.from_dict({**cfg.to_dict(), "d_modle": 3})


configs = st.fixed_dictionaries(
    dict(
        arch=st.sampled_from(["decoder", "encoder", "encoder_decoder"]),
        n_layers=st.integers(1, 2),
        n_heads=st.sampled_from([1, 2, 4]),
        d_head=st.sampled_from([4, 8]),
        attn_only=st.booleans(),
        act_fn=st.sampled_from(["relu", "gelu", "linear"]),
        normalization_type=st.sampled_from(["LN", "RMS", None]),
        norm_placement=st.sampled_from(["pre", "post"]),
        positional_embedding_type=st.sampled_from(["sinusoidal", "learned", "rotary", "none"]),
        tie_embed=st.booleans(),
        scale_embed=st.booleans(),
    )
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kw=configs, batch=st.integers(1, 3), pos=st.integers(1, 9))
def test_random_valid_configs_build_run_backward_and_hooks_have_documented_shapes(kw, batch, pos):
    cfg = TransformerConfig(d_model=16, d_vocab=11, n_ctx=12, bos_token_id=0, **kw)
    model = Transformer(cfg)
    tokens = torch.randint(0, 11, (batch, pos))
    args = (tokens, tokens) if cfg.arch == "encoder_decoder" else (tokens,)
    labels = torch.randint(0, 11, (batch, pos)) if cfg.arch == "encoder" else None
    logits, cache = model.run_with_cache(*args, labels=labels, return_type="both")
    logits[1].backward()
    assert logits[0].shape == (batch, pos, 11)
    assert all(p.grad is not None for p in model.parameters())
    H, E, D = cfg.n_heads, cfg.d_head, 16
    prefix = "decoder" if cfg.arch == "encoder_decoder" else "blocks"
    assert cache[f"{prefix}.0.attn.hook_q"].shape == (batch, pos, H, E)
    assert cache[f"{prefix}.0.attn.hook_pattern"].shape == (batch, H, pos, pos)
    assert cache[f"{prefix}.0.attn.hook_result"].shape == (batch, pos, H, D)
    assert cache[f"{prefix}.{cfg.n_layers - 1}.hook_resid_post"].shape == (batch, pos, D)
    assert cache["hook_embed"].shape == (batch, pos, D)
    if cfg.positional_embedding_type in ("learned", "sinusoidal"):
        assert cache["hook_pos_embed"].shape == (batch, pos, D)
    if not cfg.attn_only:
        assert cache[f"{prefix}.0.mlp.hook_post"].shape == (batch, pos, cfg.d_mlp)
    if cfg.positional_embedding_type == "rotary":
        assert cache[f"{prefix}.0.attn.hook_rot_q"].shape == (batch, pos, H, E)
    torch.testing.assert_close(logits[0], model(*args), atol=1e-5, rtol=1e-4)  # caching changes nothing
