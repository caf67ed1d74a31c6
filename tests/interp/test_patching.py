"""Activation patching against TransformerLens' own sweeps (decoder) and a hand-written patching loop (every kind);
attribution patching against TransformerLens' `attribution_patch` and against exact patching where the metric is
linear in the patched activation."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import patching
from transformer_lens.tools.analysis.attribution_patching import Node, attribution_patch

from probe.interp.components import stacks
from probe.interp.patching import activation_patching, attribution_patching, logit_diff_metric, loss_metric
from tests.interp.conftest import make_case


def metric_for(model, clean):
    logits = model(**clean)
    at = logits[0, -1] if logits.ndim == 3 else logits[0]
    return logit_diff_metric(int(at.argmax()), int(at.argmin()), pos=-1)


def by_hand(model, clean, corrupted, metric, stack, what):
    """Patch one activation at a time with plain run_with_hooks."""
    hook = "hook_z" if what == "heads" else "hook_resid_pre"
    name = (lambda layer: stack.attn_hook(layer, hook)) if what == "heads" else \
        (lambda layer: stack.block_hook(layer, hook))
    _, cache = model.run_with_cache(**clean, names_filter=[name(layer) for layer in range(stack.n_layers)])
    width = stack.n_heads if what == "heads" else cache[name(0)].shape[1]
    out = torch.zeros(stack.n_layers, width)
    for layer in range(stack.n_layers):
        for i in range(width):
            def patch(act, hook=None, layer=layer, i=i):
                act = act.clone()
                if what == "heads":
                    act[:, :, i] = cache[name(layer)][:, :, i]
                else:
                    act[:, i] = cache[name(layer)][:, i]
                return act
            with torch.no_grad():
                out[layer, i] = metric(model.run_with_hooks(**corrupted, fwd_hooks=[(name(layer), patch)]))
    return out


def test_decoder_equals_transformer_lens_sweeps():
    model, clean, corrupted = make_case("decoder")
    metric = metric_for(model, clean)
    _, cache = model.run_with_cache(clean["tokens"])
    heads = activation_patching(model, clean, corrupted, metric, "heads")
    resid = activation_patching(model, clean, corrupted, metric, "resid")
    torch.testing.assert_close(heads, patching.get_act_patch_attn_head_out_all_pos(model, corrupted["tokens"], cache,
                                                                                   metric))
    torch.testing.assert_close(resid, patching.get_act_patch_resid_pre(model, corrupted["tokens"], cache, metric))
    assert resid.shape == (2, 7) and heads.shape == (2, 2)


@pytest.mark.parametrize("kind", ["encoder", "encdec", "vit", "linear"])
@pytest.mark.parametrize("what", ["heads", "resid"])
def test_every_kind_and_stack_equals_a_hand_written_loop(kind, what):
    model, clean, corrupted = make_case(kind)
    metric = metric_for(model, clean)
    for name, stack in stacks(model).items():
        if what == "resid" and name == "cross":
            continue  # the cross stack shares the decoder's residual stream
        ours = activation_patching(model, clean, corrupted, metric, what, stack=name)
        torch.testing.assert_close(ours, by_hand(model, clean, corrupted, metric, stack, what))
    if kind == "vit":
        assert ours.shape == ((2, 2) if what == "heads" else (2, 17))  # 16 patches + the class token
    if kind == "encdec":  # the decoder's input is the same in both runs, the source differs
        enc = activation_patching(model, clean, corrupted, metric, what, stack="encoder")
        assert (enc - metric(model(**corrupted))).abs().max() > 1e-4


def test_patching_a_position_the_corruption_left_alone_changes_nothing():
    model, clean, corrupted = make_case("decoder")
    metric = metric_for(model, clean)
    resid = activation_patching(model, clean, corrupted, metric, "resid")
    # layer 0's residual stream is the embedding: at positions 3.. (not corrupted) clean and corrupted are equal
    with torch.no_grad():
        corrupted_value = metric(model(**corrupted))
    torch.testing.assert_close(resid[0, 3:], corrupted_value.expand(4))
    assert (resid[0, :3] - corrupted_value).abs().max() > 1e-4


def test_attribution_equals_transformer_lens_attribution_patch():
    model, clean, corrupted = make_case("decoder")
    clean1, corrupted1 = {"tokens": clean["tokens"][:1]}, {"tokens": corrupted["tokens"][:1]}
    metric = metric_for(model, clean1)
    ours = attribution_patching(model, clean1, corrupted1, metric, "heads")
    result = attribution_patch(model, clean1["tokens"], corrupted1["tokens"], metric)
    theirs = torch.zeros(2, 2)
    for node, score in result.node_scores.items():
        if node.kind == "attn_head_out":
            theirs[node.layer, node.head] += score
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    assert isinstance(next(iter(result.node_scores)), Node)


def test_attribution_is_exact_where_the_metric_is_linear():
    """No final norm, attention only: the logits are linear in the last layer's z, so the estimate is exact."""
    model, clean, corrupted = make_case("attn_only")
    metric = metric_for(model, clean)
    exact = activation_patching(model, clean, corrupted, metric, "heads") - metric(model(**corrupted)).detach()
    estimate = attribution_patching(model, clean, corrupted, metric, "heads")
    torch.testing.assert_close(estimate[-1], exact[-1], rtol=1e-4, atol=1e-5)
    assert (estimate[0] - exact[0]).abs().max() > 1e-3  # layer 0 feeds attention: not linear
    resid_exact = activation_patching(model, clean, corrupted, metric, "resid") - metric(model(**corrupted)).detach()
    resid_est = attribution_patching(model, clean, corrupted, metric, "resid")
    assert resid_est.shape == resid_exact.shape == (2, 7)


def test_attribution_leaves_parameter_gradients_alone():
    model, clean, corrupted = make_case("encdec")
    attribution_patching(model, clean, corrupted, metric_for(model, clean), "heads", stack="cross")
    assert all(p.grad is None for p in model.parameters())


def test_loss_metric_equals_the_model_loss():
    model, clean, _ = make_case("decoder")
    labels = torch.cat([clean["tokens"][:, 1:], torch.full((2, 1), -100)], 1)
    torch.testing.assert_close(loss_metric(labels)(model(**clean)), model(**clean, return_type="loss"))


def test_bad_pairs_are_refused():
    model, clean, corrupted = make_case("encdec")
    metric = metric_for(model, clean)
    with pytest.raises(ValueError, match="differ in"):
        activation_patching(model, clean, {"src": corrupted["src"], "tgt": corrupted["tgt"].flip(1)}, metric)
    with pytest.raises(ValueError, match="equal length"):
        activation_patching(model, clean, {"src": corrupted["src"][:, :4], "tgt": clean["tgt"]}, metric)
    with pytest.raises(ValueError, match="what="):
        activation_patching(model, clean, corrupted, metric, "mlp")
    with pytest.raises(ValueError, match="stack="):
        attribution_patching(model, clean, corrupted, metric, stack="blocks")
    model.train()
    with pytest.raises(ValueError, match="evaluation"):
        activation_patching(model, clean, corrupted, metric)
