"""BatchNorm for sequences: BatchNorm1d on the real tokens, batch-dependent in training only, padding kept out."""

import pytest
import torch

from probe import Transformer, TransformerConfig
from probe.nn.batch_norm import BatchNorm, batch_statistics


def randomised(d=6):
    bn = BatchNorm(d).double()
    with torch.no_grad():
        bn.w.add_(torch.randn(d, dtype=torch.float64))
        bn.b.add_(torch.randn(d, dtype=torch.float64))
    return bn


def reference(bn):
    ref = torch.nn.BatchNorm1d(bn.w.shape[0], eps=bn.eps, momentum=bn.momentum).double()
    with torch.no_grad():
        ref.weight.copy_(bn.w)
        ref.bias.copy_(bn.b)
    return ref


@pytest.mark.parametrize("hooked", [False, True])
def test_unmasked_equals_torch_batchnorm1d_on_tokens_in_train_and_eval(hooked):
    bn, x = randomised(), torch.randn(3, 7, 6, dtype=torch.float64) * 2 + 1
    ref = reference(bn)
    if hooked:  # the explicit path
        bn.hook_normalized.add_hook(lambda t, hook: t)
    for _ in range(2):
        torch.testing.assert_close(bn(x), ref(x.flatten(0, 1)).view_as(x))
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)
    bn.eval(), ref.eval()
    torch.testing.assert_close(bn(x), ref(x.flatten(0, 1)).view_as(x))


def test_padding_stays_out_of_the_statistics():
    bn, x = randomised(), torch.randn(2, 5, 6, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    real = x[mask]  # the 8 real tokens
    expected = reference(bn)(real)
    torch.testing.assert_close(bn(x, mask)[mask], expected)
    noisy = x.clone()
    noisy[0, 3:] = 100.0  # whatever sits in the padding
    torch.testing.assert_close(bn(noisy, mask)[mask], expected)
    mean, var, n = batch_statistics(x, mask)
    assert n == 8
    torch.testing.assert_close(mean, real.mean(0))
    torch.testing.assert_close(var, real.var(0, unbiased=False))


def test_a_sequence_depends_on_its_batch_mates_in_training_only():
    bn = randomised()
    seq = torch.randn(1, 4, 6, dtype=torch.float64)
    mates_a, mates_b = torch.randn(3, 4, 6, dtype=torch.float64), 3 * torch.randn(3, 4, 6, dtype=torch.float64)
    out_a, out_b = bn(torch.cat([seq, mates_a]))[0], bn(torch.cat([seq, mates_b]))[0]
    assert (out_a - out_b).abs().max() > 1e-2
    bn.eval()
    torch.testing.assert_close(bn(torch.cat([seq, mates_a]))[0], bn(torch.cat([seq, mates_b]))[0])
    torch.testing.assert_close(bn(seq)[0], bn(torch.cat([seq, mates_a]))[0])


def test_hooks_have_their_documented_shapes_and_errors_are_clear():
    bn, x = BatchNorm(6), torch.randn(2, 3, 6)
    seen = {}
    bn.hook_scale.add_hook(lambda t, hook: seen.update(scale=t.shape))
    bn.hook_normalized.add_hook(lambda t, hook: seen.update(normalized=t.shape))
    bn(x)
    assert seen == {"scale": (1, 1, 6), "normalized": (2, 3, 6)}
    with pytest.raises(ValueError, match="at least 2 real tokens"):
        bn(x, torch.zeros(2, 3, dtype=torch.bool))
    bn.eval()
    assert bn(x[:1, :1]).shape == (1, 1, 6)  # one token is fine with running statistics


@pytest.mark.parametrize("placement", ["pre", "post"])
def test_transformer_with_batchnorm_ignores_padding_in_train_mode(placement):
    cfg = TransformerConfig(arch="encoder", head="token", normalization_type="BN", norm_placement=placement,
                            d_model=16, n_heads=2, n_layers=2, d_vocab=11, n_ctx=12, seed=0)
    model = Transformer(cfg).double()
    tokens = torch.randint(0, 11, (3, 8))
    padded = torch.cat([tokens, torch.randint(0, 11, (3, 4))], 1)
    mask = torch.cat([torch.ones(3, 8), torch.zeros(3, 4)], 1)
    torch.testing.assert_close(model(padded, attention_mask=mask)[:, :8], model(tokens))
    _, cache = model.run_with_cache(tokens)
    assert cache["blocks.0.ln1.hook_scale"].shape == (1, 1, 16)
