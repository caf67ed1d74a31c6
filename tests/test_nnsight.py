"""nnsight on probe's models: every hook point's output read and edited inside `NNsight(model).trace(...)` equals
`run_with_cache` / `run_with_hooks`, including the activations probe computes only when someone looks (attention
scores and pattern, per-head results, norm scales, fast weights); nobody looking keeps the fused paths."""

import nnsight  # a dev dependency (pyproject's dev extras)
import pytest
import torch

from probe import Transformer, TransformerConfig, ViT, ViTConfig


def transformer(**kw):
    cfg = {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_vocab": 13, "n_ctx": 16, "dtype": torch.float64, "seed": 0}
    return Transformer(TransformerConfig(**{**cfg, **kw})).eval()


TOKENS = torch.randint(0, 13, (2, 6), generator=torch.Generator().manual_seed(0))
MODELS = {  # name: (model, inputs)
    "decoder": lambda: (transformer(n_layers=2), (TOKENS,)),
    "decoder_optional_hooks": lambda: (transformer(use_split_qkv_input=True, use_hook_mlp_in=True,
                                                   n_heads=4, n_key_value_heads=2), (TOKENS,)),
    "encoder_decoder": lambda: (transformer(arch="encoder_decoder"), (TOKENS, TOKENS[:, :4])),
    "vit": lambda: (ViT(ViTConfig(d_model=16, n_heads=2, n_layers=1, dtype=torch.float64, seed=0)).eval(),
                    (torch.rand(2, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)),)),
    "linear_attention": lambda: (transformer(attention="linear", update_rule="delta", feature_map="dpfp",
                                             use_attn_in=True), (TOKENS,)),
}


def envoy(root, name: str):
    """The envoy of a hook point, by its TransformerLens name."""
    for part in name.split("."):
        root = root[int(part)] if part.isdigit() else getattr(root, part)
    return root


def edit(x: torch.Tensor) -> torch.Tensor:
    """An edit no norm undoes (not a rescaling or a constant shift)."""
    return 0.5 * x + 0.1 * torch.cos(torch.arange(x.numel(), dtype=x.dtype).reshape(x.shape))


def firings(model, inputs) -> dict[str, list[torch.Tensor]]:
    """Every hook's values in the order the forward fires them (a hook point may fire more than once: ln1 on
    split inputs normalises the q, k and v copies)."""
    seen: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        model.run_with_hooks(*inputs, fwd_hooks=[(lambda name: True, lambda x, hook: seen.setdefault(
            hook.name, []).append(x.clone()))])
    return seen


@pytest.mark.parametrize("kind", list(MODELS))
def test_nnsight_reads_every_hook_as_run_with_cache_does(kind):
    model, inputs = MODELS[kind]()
    fired = firings(model, inputs)
    _, cache = model.run_with_cache(*inputs)
    assert set(fired) == set(cache)
    traced = nnsight.NNsight(model)
    saved = {}
    with torch.no_grad(), traced.trace(*inputs):
        for name in fired:  # in the order they fire: nnsight reads forwards only
            saved[name] = envoy(traced, name).output.save()
    for name, values in fired.items():  # fused and explicit norms agree to rounding, hence the tolerance
        torch.testing.assert_close(saved[name], values[0], atol=1e-12, rtol=1e-12, msg=name)
        if len(values) == 1:
            torch.testing.assert_close(saved[name], cache[name], atol=1e-12, rtol=1e-12, msg=name)


@pytest.mark.parametrize("kind", list(MODELS))
def test_nnsight_edits_each_hook_as_run_with_hooks_does(kind):
    """One trace per hook point, reading and editing only it: the lazily computed ones (scores, pattern, result,
    norm scale and normalized, fast weights) must be computed because nnsight looks, and the edit must flow on."""
    model, inputs = MODELS[kind]()
    traced = nnsight.NNsight(model)
    with torch.no_grad():
        plain = model(*inputs)
    for name in firings(model, inputs):
        with torch.no_grad(), traced.trace(*inputs):
            point = envoy(traced, name)
            point.output = edit(point.output)
            result = traced.output.save()
        calls = []

        def first_only(x, hook, calls=calls):  # nnsight edits the first firing
            calls.append(1)
            return edit(x) if len(calls) == 1 else None

        with torch.no_grad():
            expected = model.run_with_hooks(*inputs, fwd_hooks=[(name, first_only)])
        torch.testing.assert_close(result, expected, atol=1e-10, rtol=1e-10, msg=name)
        assert not torch.allclose(expected, plain), f"editing {name} changed nothing: the test would prove nothing"


def test_nobody_looking_keeps_the_fused_paths(monkeypatch):
    """Wrapped by nnsight, a model takes the fused attention and norm kernels unless a trace reads a point that only
    the explicit path computes; reading the pattern of one layer takes the explicit path in that layer only."""
    model = transformer(n_layers=3)
    traced = nnsight.NNsight(model)
    calls = {"sdpa": 0, "layer_norm": 0}
    for fn in calls:
        real = getattr(torch.nn.functional, "scaled_dot_product_attention" if fn == "sdpa" else fn)

        def counting(*args, _fn=fn, _real=real, **kwargs):
            calls[_fn] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention" if fn == "sdpa" else fn, counting)

    def run(read: str | None) -> dict[str, int]:
        for fn in calls:
            calls[fn] = 0
        with torch.no_grad(), traced.trace(TOKENS):
            if read is not None:
                value = envoy(traced, read).output.save()
        if read is not None:
            assert value.ndim >= 3
        return dict(calls)

    assert run(None) == {"sdpa": 3, "layer_norm": 7}
    assert run("blocks.1.attn.hook_z") == {"sdpa": 3, "layer_norm": 7}  # z comes out of the fused kernel
    assert run("blocks.1.attn.hook_pattern") == {"sdpa": 2, "layer_norm": 7}
    assert run("blocks.2.ln2.hook_scale") == {"sdpa": 3, "layer_norm": 6}
    for fn in calls:
        calls[fn] = 0
    with torch.no_grad():
        model(TOKENS)  # outside a trace the wrapped model is a plain model
    assert calls == {"sdpa": 3, "layer_norm": 7}


def test_nnsight_cache_records_the_lazy_points():
    """nnsight's own `tracer.cache()` counts as looking: the pattern is computed and recorded."""
    model = transformer(n_layers=2)
    traced = nnsight.NNsight(model)
    _, cache = model.run_with_cache(TOKENS)
    with torch.no_grad(), traced.trace(TOKENS) as tracer:
        recorded = tracer.cache(modules=[traced.blocks[1].attn.hook_pattern, traced.ln_final.hook_scale])
    torch.testing.assert_close(recorded["model.blocks.1.attn.hook_pattern"].output, cache["blocks.1.attn.hook_pattern"])
    torch.testing.assert_close(recorded["model.ln_final.hook_scale"].output, cache["ln_final.hook_scale"])
