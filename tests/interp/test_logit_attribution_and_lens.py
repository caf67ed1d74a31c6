"""Direct logit attribution sums to the model's own logit difference on every kind and equals TransformerLens'
cache decomposition on a decoder; the logit lens's last stream is the model's output."""

from __future__ import annotations

import pytest
import torch

from probe.config import ViTConfig
from probe.interp.logit_attribution import direct_logit_attribution
from probe.interp.logit_lens import logit_lens, readout
from probe.models.transformer import Transformer
from probe.models.vit import ViT
from tests.interp.conftest import KINDS, make_case, tiny


@pytest.mark.parametrize("kind", KINDS)
def test_components_sum_to_the_logit_difference(kind):
    model, clean, _ = make_case(kind)
    with torch.no_grad():
        logits = model(**clean)
    for pos in ([-1, 2] if logits.ndim == 3 else [None]):
        at = logits[:, pos] if logits.ndim == 3 else logits
        a, w = 1, 2
        dla = direct_logit_attribution(model, clean, a, w, pos=pos)
        torch.testing.assert_close(dla.values.sum(), (at[:, a] - at[:, w]).mean(), rtol=1e-4, atol=1e-4)
        only = direct_logit_attribution(model, clean, a, None, pos=pos)
        torch.testing.assert_close(only.values.sum(), at[:, a].mean(), rtol=1e-4, atol=1e-4)
    n_heads = sum(h.numel() for h in dla.heads.values())
    assert len([label for label in dla.labels if "H" in label]) == n_heads
    if kind == "encdec":
        assert set(dla.heads) == {"decoder", "cross"} and "cross.L1H0" in dla.labels


def test_decoder_heads_equal_transformer_lens_cache_decomposition():
    model, clean, _ = make_case("decoder")
    _, cache = model.run_with_cache(clean["tokens"])
    stacked, labels = cache.stack_head_results(layer=-1, pos_slice=-1, return_labels=True)
    stacked = cache.apply_ln_to_stack(stacked, layer=-1, pos_slice=-1)  # centred and scaled, LN weight not folded
    direction = model.ln_final.w * (model.W_U[:, 4] - model.W_U[:, 7])
    theirs = (stacked @ direction).mean(-1).detach()
    ours = direct_logit_attribution(model, clean, 4, 7, pos=-1)
    torch.testing.assert_close(ours.heads["blocks"].flatten(), theirs, rtol=1e-4, atol=1e-5)
    assert labels == [label for label in ours.labels if "H" in label]


def test_refuses_what_is_not_a_sum():
    model = Transformer(tiny(norm_placement="post")).eval()
    with pytest.raises(ValueError, match="post-norm"):
        direct_logit_attribution(model, {"tokens": torch.tensor([[3, 4, 5]])}, 1)
    vit = ViT(ViTConfig(d_model=16, n_layers=1, n_heads=2, head_type="mlp", seed=0)).eval()
    with pytest.raises(ValueError, match="linear ViT head"):
        direct_logit_attribution(vit, {"images": torch.rand(1, 1, 8, 8)}, 1)
    model, clean, _ = make_case("decoder")
    with pytest.raises(ValueError, match="outside"):
        direct_logit_attribution(model, clean, 99)


@pytest.mark.parametrize("kind", KINDS)
def test_logit_lens_ends_at_the_model_output(kind):
    model, clean, _ = make_case(kind)
    labels, lens = logit_lens(model, clean)
    with torch.no_grad():
        logits = model(**clean)
    n_layers = model.cfg.n_decoder_layers if kind == "encdec" else model.cfg.n_layers
    assert labels[0] == "embed" and len(labels) == n_layers + 1 == lens.shape[0]
    if logits.ndim == 3:
        torch.testing.assert_close(lens[-1], logits, rtol=1e-5, atol=1e-5)
    else:  # class-token pooling: the lens at token 0 is the classifier's output
        torch.testing.assert_close(lens[-1, :, 0], logits, rtol=1e-5, atol=1e-5)
    # the first stream is the embedding read out directly
    with torch.no_grad():
        first = model.embed(clean["tokens"]) + model.pos_embed(*clean["tokens"].shape) if kind == "decoder" else None
    if first is not None:
        torch.testing.assert_close(lens[0], readout(model, first))
