"""Export to HF ViTForImageClassification: logits match, other configs are refused, TransformerBridge boots."""

import pytest
import torch

from probe.config import ViTConfig
from probe.models.vit import ViT

transformers = pytest.importorskip("transformers")
from probe.interop.hf_vit import boot_vit_bridge, export_vit, vit_to_hf  # noqa: E402

CFG = dict(image_size=8, patch_size=2, d_model=16, n_layers=2, n_heads=2, d_mlp=32, seed=0)


def randomised() -> ViT:
    model = ViT(ViTConfig(**CFG)).eval()
    with torch.no_grad():  # move every weight off its init (LN gains, biases) so a mapping slip shows
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model


def test_logits_match_hf():
    model = randomised()
    x = torch.rand(5, 1, 8, 8)
    hf = vit_to_hf(model)
    torch.testing.assert_close(hf(pixel_values=x).logits, model(x), atol=1e-4, rtol=0)


def test_refuses_what_hf_cannot_express():
    for change, field in [
        ({"norm_placement": "post"}, "norm_placement"),
        ({"pool": "mean"}, "pool"),
        ({"positional_embedding_type": "none"}, "positional_embedding_type"),
        ({"head_type": "mlp"}, "head_type"),
        ({"act_fn": "relu"}, "act_fn"),
        ({"gated_mlp": True}, "gated_mlp"),
        ({"n_key_value_heads": 1}, "n_key_value_heads"),
        ({"final_rms": True}, "final_rms"),
    ]:
        with pytest.raises(ValueError, match=field):
            vit_to_hf(ViT(ViTConfig(**{**CFG, **change})))


def test_export_loads_offline_and_boots_in_transformer_bridge(tmp_path):
    model = randomised()
    export_vit(model, tmp_path / "hf")
    x = torch.rand(3, 1, 8, 8)
    loaded = transformers.ViTForImageClassification.from_pretrained(tmp_path / "hf", local_files_only=True).eval()
    torch.testing.assert_close(loaded(pixel_values=x).logits, model(x), atol=1e-4, rtol=0)
    bridge = boot_vit_bridge(tmp_path / "hf")
    out = bridge(x)
    logits = out.logits if hasattr(out, "logits") else out
    torch.testing.assert_close(logits, model(x), atol=1e-4, rtol=0)


def test_cli_exports_the_shipped_checkpoint(tmp_path):
    from probe.checkpoint import load
    from probe.cli import main

    assert main(["export", "checkpoints/vit_digits", "--to", "hf", "--out", str(tmp_path / "hf")]) == 0
    hf = transformers.ViTForImageClassification.from_pretrained(tmp_path / "hf", local_files_only=True).eval()
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(hf(pixel_values=x).logits, load("checkpoints/vit_digits")(x), atol=1e-4, rtol=0)
