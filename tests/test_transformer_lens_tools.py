"""TransformerLens' own tools, called unchanged on probe models: ActivationCache helpers, patching, head detection,
FactoredMatrix circuits."""

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformer_lens import ActivationCache, FactoredMatrix, patching
from transformer_lens.head_detector import detect_head

from probe import Transformer, TransformerConfig


@pytest.fixture
def model():
    cfg = TransformerConfig(d_model=32, n_heads=4, n_layers=3, d_vocab=29, n_ctx=24, act_fn="relu")
    torch.manual_seed(1)
    return Transformer(cfg).eval()


def test_run_with_cache_returns_an_activation_cache(model):
    tokens = torch.randint(0, 29, (2, 11))
    logits, cache = model.run_with_cache(tokens)
    assert isinstance(cache, ActivationCache)
    assert cache["pattern", 0].shape == (2, 4, 11, 11)
    assert cache["resid_post", 2].shape == (2, 11, 32)
    torch.testing.assert_close(logits, model(tokens))


def test_decompose_resid_sums_to_the_final_residual_and_accumulated_resid_ends_there(model):
    _, cache = model.run_with_cache(torch.randint(0, 29, (2, 11)))
    parts, labels = cache.decompose_resid(return_labels=True)
    assert labels[:2] == ["embed", "pos_embed"] and len(labels) == 2 + 2 * 3
    torch.testing.assert_close(parts.sum(0), cache["blocks.2.hook_resid_post"], atol=1e-5, rtol=1e-5)
    acc = cache.accumulated_resid()
    assert acc.shape[0] == 3 + 1
    torch.testing.assert_close(acc[-1], cache["blocks.2.hook_resid_post"])
    torch.testing.assert_close(acc[0], cache["blocks.0.hook_resid_pre"])


def test_stack_head_results_sum_to_attention_output(model):
    _, cache = model.run_with_cache(torch.randint(0, 29, (2, 11)))
    heads, labels = cache.stack_head_results(layer=-1, return_labels=True)
    assert heads.shape == (3 * 4, 2, 11, 32) and labels[5] == "L1H1"
    per_layer = heads.view(3, 4, 2, 11, 32).sum(1)
    for layer in range(3):
        b_O = model.blocks[layer].attn.b_O
        torch.testing.assert_close(per_layer[layer] + b_O, cache["attn_out", layer], atol=1e-5, rtol=1e-5)


def test_apply_ln_to_stack_and_logit_attrs_reproduce_the_logits(model):
    tokens = torch.randint(0, 29, (2, 11))
    logits, cache = model.run_with_cache(tokens)
    parts = cache.decompose_resid()
    normed = cache.apply_ln_to_stack(parts, layer=-1)
    ln = model.ln_final  # fresh LN: w = 1, b = 0, so the stack sums to the normalised residual
    torch.testing.assert_close(normed.sum(0) * ln.w + ln.b, ln(cache["blocks.2.hook_resid_post"]), atol=1e-5, rtol=1e-5)
    answer = tokens[:, -1]
    attrs = cache.logit_attrs(parts[:, :, -1], tokens=answer, pos_slice=-1)
    expected = logits[torch.arange(2), -1, answer] - model.b_U[answer]
    torch.testing.assert_close(attrs.sum(0), expected, atol=1e-4, rtol=1e-4)


def test_activation_patching_restores_exactly_what_it_patches():
    model = Transformer(TransformerConfig(d_model=32, n_heads=4, n_layers=2, d_vocab=29, n_ctx=24)).eval()
    clean = torch.randint(0, 29, (1, 7))
    corrupt = clean.clone()
    corrupt[0, 4] = (clean[0, 4] + 3) % 29
    answer = int(clean[0, -1])
    clean_logits, clean_cache = model.run_with_cache(clean)

    def metric(logits):
        return logits[0, -1, answer]

    resid = patching.get_act_patch_resid_pre(model, corrupt, clean_cache, metric)
    assert resid.shape == (2, 7)
    torch.testing.assert_close(resid[0, 4], metric(clean_logits))  # patching the changed token restores the clean run
    corrupt_metric = metric(model(corrupt))
    torch.testing.assert_close(resid[0, :4], corrupt_metric.expand(4))  # other positions carry nothing new
    heads = patching.get_act_patch_attn_head_out_all_pos(model, corrupt, clean_cache, metric)
    assert heads.shape == (2, 4)

    # per-head patching of layer-0 heads equals patching that head's z by hand
    def patch_head(z, hook):
        z[:, :, 2] = clean_cache["blocks.0.attn.hook_z"][:, :, 2]
        return z

    by_hand = metric(model.run_with_hooks(corrupt, fwd_hooks=[("blocks.0.attn.hook_z", patch_head)]))
    torch.testing.assert_close(heads[0, 2], by_hand)


def char_tokenizer(alphabet: str) -> Tokenizer:
    tok = Tokenizer(models.WordLevel({c: i for i, c in enumerate(alphabet)}, unk_token=alphabet[0]))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    return tok


def test_head_detector_finds_a_previous_token_head_built_by_hand():
    n = 16
    cfg = TransformerConfig(
        d_model=n, n_heads=2, d_head=n, n_layers=1, d_vocab=26, n_ctx=n, attn_only=True, normalization_type=None
    )
    model = Transformer(cfg, tokenizer=char_tokenizer("abcdefghijklmnopqrstuvwxyz")).eval()
    with torch.no_grad():
        model.embed.W_E.zero_()
        model.pos_embed.W_pos.copy_(torch.eye(n))  # the residual at position i is e_i
        model.blocks[0].attn.W_Q[0] = 100 * torch.eye(n)  # q_i = 100 e_i
        model.blocks[0].attn.W_K[0] = torch.eye(n).roll(1, dims=1)  # k_j = e_{j+1}: q_i . k_j = 100 [j = i - 1]
    scores = detect_head(model, "thequickbrownfo", "previous_token_head")
    assert scores.shape == (1, 2)
    assert scores[0, 0] > 0.9 and scores[0, 0] > scores[0, 1] + 0.3


def test_factored_ov_and_qk_circuits_match_the_forward_pass(model):
    assert isinstance(model.OV, FactoredMatrix) and model.OV.shape == (3, 4, 32, 32)
    torch.testing.assert_close(model.OV[1, 2].AB, model.W_V[1, 2] @ model.W_O[1, 2])
    tokens = torch.randint(0, 29, (1, 7))
    _, cache = model.run_with_cache(tokens)
    x = cache["blocks.1.ln1.hook_normalized"][0] * model.blocks[1].ln1.w + model.blocks[1].ln1.b
    scores = x @ model.QK[1, 2].AB @ x.T / 8**0.5  # biases are zero at init
    causal = torch.ones(7, 7, dtype=torch.bool).tril()
    torch.testing.assert_close(scores[causal], cache["attn_scores", 1][0, 2][causal], atol=1e-5, rtol=1e-5)
    head_out = x @ model.OV[1, 2].AB
    z_out = cache["blocks.1.attn.hook_pattern"][0, 2] @ head_out  # pattern-weighted OV images
    torch.testing.assert_close(z_out, cache["blocks.1.attn.hook_z"][0, :, 2] @ model.W_O[1, 2], atol=1e-5, rtol=1e-5)


def test_to_tokens_and_string_round_trip():
    alphabet = "abcdefgh"
    model = Transformer(TransformerConfig(d_vocab=8, d_model=16, n_heads=2), tokenizer=char_tokenizer(alphabet))
    tokens = model.to_tokens("badcafe")
    assert tokens.tolist() == [[1, 0, 3, 2, 0, 5, 4]]
    assert model.to_single_token("c") == 2
    assert model.to_string(tokens[0]).replace(" ", "") == "badcafe"
    with pytest.raises(ValueError, match="exactly one"):
        model.to_single_token("ab")
    with pytest.raises(ValueError, match="no tokenizer"):
        Transformer(TransformerConfig(d_model=16, n_heads=2)).to_tokens("a")
