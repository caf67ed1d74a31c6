"""What every probe model shares (probe/hooked.py): hooks that cannot reshape, per-layer weight views, constructors
without side effects, one loss."""

import pytest
import torch
import torch.nn.functional as F
from transformer_lens import FactoredMatrix

from probe import CNN, CNNConfig, Transformer, TransformerConfig, ViT, ViTConfig
from probe.config import ScanSnapConfig
from probe.models.scan_snap import ScanSnapModel
from probe.train import TrainConfig, Trainer
from probe.train.batches import DictDataset


def decoder(**kw):
    return Transformer(TransformerConfig(**{"d_model": 24, "n_heads": 4, "n_layers": 2, "d_vocab": 13, "n_ctx": 16,
                                            **kw}))


# ---- hooks ------------------------------------------------------------------------------------------------------
def test_a_hook_that_reshapes_is_refused_naming_the_hook():
    model = decoder()
    tokens = torch.randint(0, 13, (2, 7))
    with pytest.raises(ValueError, match=r"blocks\.1\.hook_resid_pre.*\(2, 2, 24\).*\(2, 7, 24\)"):
        model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.hook_resid_pre", lambda x, hook: x[:, :2])])
    with pytest.raises(ValueError, match=r"blocks\.0\.attn\.hook_pattern"):  # by filter, on a hook point itself
        model.run_with_hooks(tokens, fwd_hooks=[(lambda n: n.endswith("hook_pattern"), lambda x, hook: x[..., :3])])
    model.blocks[0].hook_resid_post.add_hook(lambda x, hook: [x])
    with pytest.raises(ValueError, match=r"blocks\.0\.hook_resid_post returned list|'blocks\.0\.hook_resid_post'"):
        model(tokens)
    model.reset_hooks(including_permanent=True)
    assert not any(hp._forward_hooks for hp in model.hook_dict.values())  # nothing left: the plain path is free
    edited = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.hook_resid_pre", lambda x, hook: 2 * x)])
    assert edited.shape == (2, 7, 13) and not torch.allclose(edited, model(tokens))  # same-shape edits work


def test_a_backward_hook_of_another_shape_is_refused():
    model = decoder()
    tokens = torch.randint(0, 13, (2, 7))
    with pytest.raises(ValueError, match=r"bwd hook on 'blocks\.0\.hook_resid_mid'"):
        with model.hooks(bwd_hooks=[("blocks.0.hook_resid_mid", lambda g, hook: g[:, :1])]):
            model(tokens, return_type="loss").backward()


# ---- per-layer weight views ------------------------------------------------------------------------------------
MODELS = {
    "softmax": lambda: decoder(),
    "grouped_query": lambda: decoder(n_key_value_heads=2),
    "linear": lambda: decoder(attention="linear", feature_map="dpfp"),
    "encoder_decoder": lambda: decoder(arch="encoder_decoder"),
    "vit": lambda: ViT(ViTConfig(d_model=24, n_heads=4)),
}


@pytest.mark.parametrize("kind", list(MODELS))
def test_every_attention_layer_has_OV_and_QK(kind):
    model = MODELS[kind]()
    layers = [("decoder", L, "cross_attn") for L in range(2)] if kind == "encoder_decoder" else []
    layers += [("decoder" if kind == "encoder_decoder" else "blocks", L, "attn") for L in range(2)]
    for stack, L, name in layers:
        attn = getattr(getattr(model, stack)[L], name)
        assert isinstance(attn.OV, FactoredMatrix) and isinstance(attn.QK, FactoredMatrix)
        assert attn.OV.shape == attn.QK.shape == (4, 24, 24)
        group = 4 // attn.W_K.shape[0]
        for h in range(4):
            torch.testing.assert_close(attn.OV.AB[h], attn.W_V[h // group] @ attn.W_O[h])
            torch.testing.assert_close(attn.QK.AB[h], attn.W_Q[h] @ attn.W_K[h // group].T)
        if name == "attn":  # the stacked views are the per-layer ones
            torch.testing.assert_close(model.OV.AB[L], attn.OV.AB)
            torch.testing.assert_close(model.QK.AB[L], attn.QK.AB)


# ---- constructors ------------------------------------------------------------------------------------------------
CONFIGS = {
    "transformer": lambda seed: Transformer(TransformerConfig(d_model=16, n_heads=2, d_vocab=11, n_ctx=8, seed=seed,
                                                              attention="linear", feature_map="favor_plus")),
    "vit": lambda seed: ViT(ViTConfig(d_model=16, n_heads=2, seed=seed, head_type="mlp")),
    "cnn": lambda seed: CNN(CNNConfig(seed=seed)),
    "scan_snap": lambda seed: ScanSnapModel(ScanSnapConfig(seed=seed)),
}


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_seeded_construction_leaves_the_global_rng_alone_and_is_deterministic(kind):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = CONFIGS[kind](7)
    assert torch.equal(torch.get_rng_state(), state)  # neither reseeded nor advanced
    b, c = CONFIGS[kind](7), CONFIGS[kind](8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


def test_the_callers_config_is_never_written():
    cfg = TransformerConfig(d_model=16, n_heads=2, d_vocab=11, n_ctx=8)
    model = Transformer(cfg)
    assert cfg.device is None and model.cfg is not cfg
    assert model.cfg.device == "cpu"  # the model's own copy says where it lives (TransformerLens reads it)
    model.to("meta")
    assert model.cfg.device == "meta" and cfg.device is None
    assert model.cfg.to_dict() | {"device": None} == cfg.to_dict()


# ---- one loss -------------------------------------------------------------------------------------------------------
CLASSIFIERS = {
    "vit": (lambda: ViT(ViTConfig(d_model=16, n_heads=2, seed=0)), lambda n: torch.rand(n, 1, 8, 8), 10),
    "cnn": (lambda: CNN(CNNConfig(seed=0)), lambda n: torch.rand(n, 1, 8, 8), 10),
}


@pytest.mark.parametrize("kind", list(CLASSIFIERS))
def test_classifiers_take_label_smoothing_through_the_shared_loss(kind):
    make, inputs, n_classes = CLASSIFIERS[kind]
    model = make().eval()
    images, labels = inputs(6), torch.arange(6) % n_classes
    logits = model(images)
    for eps in (0.0, 0.2):
        expected = F.cross_entropy(logits, labels, label_smoothing=eps)
        torch.testing.assert_close(model(images, labels=labels, return_type="loss", label_smoothing=eps), expected)
    with pytest.raises(ValueError, match="needs labels"):
        model(images, return_type="loss")
    trainer = Trainer(model, DictDataset(images=images, labels=labels), None,
                      TrainConfig(steps=1, batch_size=6, label_smoothing=0.2, progress=False))
    model.train()
    batch = {"images": images, "labels": labels}
    torch.testing.assert_close(trainer.compute_loss(batch),
                               model(**batch, return_type="loss", label_smoothing=0.2))
