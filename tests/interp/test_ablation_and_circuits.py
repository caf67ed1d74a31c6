"""Head ablation against independent weight edits and identities; OV / QK circuits against explicit matrix
products and hand-built heads."""

from __future__ import annotations

import pytest
import torch

from probe.interp.ablation import ablation_hooks, loss_by_position, random_like
from probe.interp.circuits import ov_accuracy_table, ov_circuit, qk_circuit, top1_diagonal_accuracy
from probe.interp.components import stacks
from probe.models.transformer import Transformer
from tests.interp.conftest import KINDS, make_case, tiny


@pytest.mark.parametrize("kind", KINDS)
def test_zero_ablation_equals_zeroing_the_heads_output_weights(kind):
    model, clean, _ = make_case(kind)
    heads = [(name, stack.n_layers - 1, 1) for name, stack in stacks(model).items()] + [
        (next(iter(stacks(model))), 0, 0)]
    with torch.no_grad():
        ablated = model.run_with_hooks(**clean, fwd_hooks=ablation_hooks(model, heads, "zero"))
        for name, layer, head in heads:
            stacks(model)[name].module(model, layer).W_O[head] = 0.0
        edited = model(**clean)
    torch.testing.assert_close(ablated, edited)


def test_mean_and_resample_ablation():
    model, clean, corrupted = make_case("decoder")
    heads = [("blocks", 0, 1), ("blocks", 1, 0)]
    with torch.no_grad():
        base = model(**clean)
        # a reference made of copies of the input: its mean and any resample are the input's own activations
        same = {"tokens": clean["tokens"][:1].expand(5, -1)}
        for method in ("mean", "resample"):
            out = model.run_with_hooks(**{"tokens": clean["tokens"][:1]},
                                       fwd_hooks=ablation_hooks(model, heads, method, same))
            torch.testing.assert_close(out, base[:1])
        # resampling from a one-example reference: the heads' z come from that example's run
        ref = {"tokens": corrupted["tokens"][:1]}
        _, cache = model.run_with_cache(**ref)

        def from_ref(z, hook):
            z = z.clone()
            idx = [h for s, layer, h in heads if f"blocks.{layer}.attn.hook_z" == hook.name]
            z[:, :, idx] = cache[hook.name][:, :, idx]
            return z

        expected = model.run_with_hooks(**clean, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", from_ref)
                                                            for layer in (0, 1)])
        out = model.run_with_hooks(**clean, fwd_hooks=ablation_hooks(model, heads, "resample", ref, batch=2))
        torch.testing.assert_close(out, expected)
        mean = model.run_with_hooks(**clean, fwd_hooks=ablation_hooks(model, heads, "mean", corrupted, batch=2))
        assert (mean - base).abs().max() > 1e-4


def test_loss_by_position_averages_to_the_model_loss():
    for kind in ("decoder", "encdec", "linear"):
        model, clean, _ = make_case(kind)
        with torch.no_grad():
            logits, loss = model(**clean, return_type="both")
        per_pos = loss_by_position(model, clean, logits)
        assert per_pos.shape == (2, (clean.get("tgt", clean.get("tokens"))).shape[1] - 1)
        torch.testing.assert_close(per_pos.mean(), loss)
    model, clean, _ = make_case("encoder")
    with pytest.raises(ValueError, match="language model"):
        loss_by_position(model, clean, model(**clean))


def test_random_like_keeps_special_tokens_and_never_draws_them():
    model = Transformer(tiny()).eval()
    x = {"tokens": torch.tensor([[1, 5, 6, 7, 2]])}
    ref = random_like(model, x, 200, seed=3, keep=(0, 1, 2))
    assert ref["tokens"].shape == (200, 5)
    assert (ref["tokens"][:, 0] == 1).all() and (ref["tokens"][:, -1] == 2).all()
    middle = ref["tokens"][:, 1:-1]
    assert middle.min() >= 3 and middle.max() <= 12 and len(middle.unique()) == 10
    with pytest.raises(ValueError, match="images"):
        random_like(model, {"images": torch.rand(1, 1, 8, 8)}, 3)


def test_bad_ablation_requests():
    model, clean, _ = make_case("decoder")
    with pytest.raises(ValueError, match="method="):
        ablation_hooks(model, [("blocks", 0, 0)], "noise")
    with pytest.raises(ValueError, match="reference"):
        ablation_hooks(model, [("blocks", 0, 0)], "mean")
    with pytest.raises(ValueError, match="outside"):
        ablation_hooks(model, [("blocks", 2, 0)], "zero")


def test_circuits_are_the_explicit_products():
    model, _, _ = make_case("encdec")
    attn = model.decoder[1].cross_attn
    ov = ov_circuit(model, 1, 0, "cross")
    torch.testing.assert_close(ov.AB, model.W_E @ attn.W_V[0] @ attn.W_O[0] @ model.W_U)
    qk = qk_circuit(model, 1, 0, "cross")
    torch.testing.assert_close(qk.AB, model.W_E @ attn.W_Q[0] @ attn.W_K[0].T @ model.W_E.T)
    assert ov_accuracy_table(model, "decoder").shape == (2, 2)


def test_top1_diagonal_accuracy_of_hand_built_heads():
    assert top1_diagonal_accuracy(torch.eye(5)) == 1.0
    assert top1_diagonal_accuracy(torch.eye(5).roll(1, 0)) == 0.0
    m = torch.eye(4)
    m[0, 3] = 2.0
    assert top1_diagonal_accuracy(m) == 0.75
    with pytest.raises(ValueError, match="square"):
        top1_diagonal_accuracy(torch.zeros(3, 4))
    # a copying head: W_U = W_E^T, and W_V W_O the identity on the embedding's span
    model = Transformer(tiny(d_model=16, d_vocab=8, n_heads=1, n_layers=1, tie_embed=True)).eval()
    with torch.no_grad():
        model.embed.W_E.copy_(torch.eye(8, 16))
        model.blocks[0].attn.W_V[0].copy_(torch.eye(16))
        model.blocks[0].attn.W_O[0].copy_(torch.eye(16))
    assert top1_diagonal_accuracy(ov_circuit(model, 0, 0)) == 1.0
    with torch.no_grad():
        model.blocks[0].attn.W_O[0].copy_(-torch.eye(16))  # an anti-copying head
    assert top1_diagonal_accuracy(ov_circuit(model, 0, 0)) == 0.0


def test_circuits_refuse_what_has_no_token_circuit():
    model, _, _ = make_case("vit")
    with pytest.raises(ValueError, match="W_E"):
        ov_circuit(model, 0, 0)
    model, _, _ = make_case("linear")
    ov_circuit(model, 0, 0)
    with pytest.raises(ValueError, match="bilinear"):
        qk_circuit(model, 0, 0)
    with pytest.raises(ValueError, match="outside"):
        ov_circuit(model, 5, 0)
