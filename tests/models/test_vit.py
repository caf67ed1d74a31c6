"""probe.ViT: patch embedding, positions, class token, hooks and their shapes, ActivationCache, errors, training."""

import pytest
import torch

from probe.config import ViTConfig
from probe.data.images import digits
from probe.models.vit import ViT
from probe.nn.patch_embed import PatchEmbed, check_image_shape, naive_patch_embed
from probe.nn.positional_2d import naive_sincos_2d, sincos_2d

TINY = dict(image_size=8, patch_size=2, d_model=16, n_layers=2, n_heads=2, d_mlp=32, seed=0)


def tiny(**changes) -> ViT:
    return ViT(ViTConfig(**{**TINY, **changes})).eval()


def test_patch_embed_imagenet_shape():
    pe = PatchEmbed(n_channels=3, d_model=768, patch_size=16)
    assert pe(torch.randn(1, 3, 224, 224)).shape == (1, 196, 768)


@pytest.mark.parametrize("shape", [(2, 3, 9, 15), (1, 1, 21, 6)])
def test_patch_embed_matches_naive_reference(shape):
    pe = PatchEmbed(n_channels=shape[1], d_model=7, patch_size=3)
    x1 = torch.randn(shape, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    fast, ref = pe(x1), naive_patch_embed(x2, pe.proj.weight, pe.proj.bias)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(fast)
    fast.backward(g)
    w_grad_fast = pe.proj.weight.grad.clone()
    pe.proj.weight.grad = None
    ref.backward(g)
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w_grad_fast, pe.proj.weight.grad, atol=1e-5, rtol=1e-5)


def test_patch_tokens_are_row_major():
    pe = PatchEmbed(n_channels=1, d_model=1, patch_size=2)
    with torch.no_grad():
        pe.proj.weight.fill_(1.0)
        pe.proj.bias.zero_()
    img = torch.zeros(1, 1, 4, 6)
    img[0, 0, 2, 4] = 1.0  # row 1, column 2 of a 2 x 3 patch grid -> token 1 * 3 + 2
    assert pe(img)[0, :, 0].argmax().item() == 5


@pytest.mark.parametrize("grid", [(4, 4), (3, 5)])
def test_sincos_2d_matches_naive(grid):
    torch.testing.assert_close(sincos_2d(12, *grid), naive_sincos_2d(12, *grid), atol=1e-6, rtol=1e-5)


def test_sincos_2d_needs_d_model_divisible_by_4():
    with pytest.raises(ValueError, match="d_model divisible by 4"):
        sincos_2d(10, 2, 2)
    with pytest.raises(ValueError, match="d_model divisible by 4"):
        ViT(ViTConfig(**{**TINY, "d_model": 18, "n_heads": 2, "positional_embedding_type": "sinusoidal_2d"}))


def test_class_token_leads_the_sequence():
    model = tiny()
    x = torch.rand(3, 1, 8, 8)
    _, cache = model.run_with_cache(x)
    full = cache["hook_full_embed"]
    assert full.shape == (3, 17, 16)
    torch.testing.assert_close(full[:, 0], (model.cls_token + model.W_pos[0]).expand(3, -1))
    torch.testing.assert_close(full[:, 1:], cache["hook_patch_embed"] + model.W_pos[1:])
    torch.testing.assert_close(full, cache["hook_embed"] + cache["hook_pos_embed"])


def test_hooks_fire_with_documented_shapes():
    model = tiny(head_type="mlp")
    x = torch.rand(3, 1, 8, 8)
    logits, cache = model.run_with_cache(x)
    b, p, d, h, e = 3, 17, 16, 2, 8
    expected = {
        "hook_patch_embed": (b, p - 1, d),
        "hook_embed": (b, p, d),
        "hook_pos_embed": (b, p, d),
        "hook_full_embed": (b, p, d),
        "blocks.0.hook_resid_pre": (b, p, d),
        "blocks.1.ln1.hook_scale": (b, p, 1),
        "blocks.1.attn.hook_q": (b, p, h, e),
        "blocks.1.attn.hook_pattern": (b, h, p, p),
        "blocks.1.attn.hook_result": (b, p, h, d),
        "blocks.1.mlp.hook_post": (b, p, 32),
        "blocks.1.hook_resid_post": (b, p, d),
        "ln_final.hook_normalized": (b, p, d),
        "hook_pooled": (b, d),
        "head.hook_pre_logits": (b, d),
    }
    for name, shape in expected.items():
        assert tuple(cache[name].shape) == shape, name
    assert logits.shape == (b, 10)
    torch.testing.assert_close(cache["blocks.1.attn.hook_pattern"].sum(-1), torch.ones(b, h, p))


def test_activation_cache_tools_work():
    model = tiny()
    x = torch.rand(4, 1, 8, 8)
    logits, cache = model.run_with_cache(x)
    resid, labels = cache.accumulated_resid(apply_ln=True, pos_slice=0, return_labels=True)
    assert resid.shape == (3, 4, 16) and labels[-1] == "final_post"
    # the final accumulated, ln-applied class-token residual through the head gives the logits
    torch.testing.assert_close(model.head.out(resid[-1]), logits, atol=1e-5, rtol=1e-5)
    stack = cache.decompose_resid(pos_slice=0)
    torch.testing.assert_close(stack.sum(0), cache["blocks.1.hook_resid_post"][:, 0], atol=1e-5, rtol=1e-5)
    # direct logit attribution: components' logit-difference contributions add up (ln_final is w=1, b=0 at init)
    labels, wrong = torch.tensor([1, 2, 3, 4]), torch.zeros(4, dtype=torch.long)
    attrs = cache.logit_attrs(stack, tokens=labels, incorrect_tokens=wrong, pos_slice=0)
    bias = model.head.out.bias[labels] - model.head.out.bias[0]
    torch.testing.assert_close(
        attrs.sum(0), logits[torch.arange(4), labels] - logits[:, 0] - bias, atol=1e-5, rtol=1e-5
    )
    heads = cache.stack_head_results(layer=-1, pos_slice=0)
    assert heads.shape == (4, 4, 16)


def test_pos_embed_none_and_sinusoidal():
    x = torch.rand(2, 1, 8, 8)
    _, cache = tiny(positional_embedding_type="none").run_with_cache(x)
    assert cache["hook_pos_embed"].abs().max() == 0
    _, cache = tiny(positional_embedding_type="sinusoidal_2d").run_with_cache(x)
    torch.testing.assert_close(cache["hook_pos_embed"][0, 1:], sincos_2d(16, 4, 4))
    assert cache["hook_pos_embed"][:, 0].abs().max() == 0


@pytest.mark.parametrize("size", [(12, 6), (4, 4)])
def test_other_image_sizes(size):
    for kind in ("learned", "sinusoidal_2d", "none"):
        model = tiny(positional_embedding_type=kind)
        assert model(torch.rand(2, 1, *size)).shape == (2, 10)
    model = tiny()
    assert model.pos_embed((4, 4)) is model.W_pos  # the training grid uses W_pos unchanged
    assert model.pos_embed((size[0] // 2, size[1] // 2)).shape == (size[0] * size[1] // 4 + 1, 16)


def test_bad_images_error_clearly():
    model = tiny()
    with pytest.raises(ValueError, match=r"9 x 8 is not divisible by patch_size=2"):
        model(torch.rand(1, 1, 9, 8))
    with pytest.raises(ValueError, match=r"3 channels .* n_channels=1"):
        model(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\[batch, channel, height, width\]"):  # jaxtyping's check fires first here
        check_image_shape(torch.rand(1, 8, 8), n_channels=1, patch_size=2)
    with pytest.raises(ValueError, match="needs labels"):
        model(torch.rand(1, 1, 8, 8), return_type="loss")
    with pytest.raises(ValueError, match="return_type='probs'"):
        model(torch.rand(1, 1, 8, 8), return_type="probs")


def test_mean_pooling_post_ln_and_mlp_head():
    x = torch.rand(2, 1, 8, 8)
    model = tiny(pool="mean", norm_placement="post", head_type="mlp")
    _, cache = model.run_with_cache(x)
    torch.testing.assert_close(
        cache["hook_pooled"],
        cache["ln_final.hook_normalized"][:, 1:].mean(1) * model.ln_final.w + model.ln_final.b,
        atol=1e-5,
        rtol=1e-5,
    )
    assert "head.hook_pre_logits" in cache


def test_loss_falls_when_training():
    data = digits("train")
    images, labels = data.images[:32], data.labels[:32]
    model = tiny(seed=1).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = model(images=images, labels=labels, return_type="loss")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0]
    logits, loss = model(images, labels, return_type="both")
    assert logits.shape == (32, 10) and loss.ndim == 0


def test_weight_properties_and_seed():
    model = tiny()
    assert model.W_Q.shape == (2, 2, 16, 8) and model.W_O.shape == (2, 2, 8, 16)
    assert model.OV.shape == (2, 2, 16, 16)
    same = tiny()
    torch.testing.assert_close(model.W_pos, same.W_pos)


def test_shipped_checkpoint_reaches_95_percent():
    from probe.checkpoint import load, read_meta

    model = load("checkpoints/vit_digits")
    test = digits("test")
    with torch.no_grad():
        acc = (model(test.images).argmax(-1) == test.labels).float().mean().item()
    assert acc >= 0.95
    assert read_meta("checkpoints/vit_digits")["command"].startswith("python -m analyses.vision._checkpoints")
