"""Export a probe ViT to Hugging Face `transformers.ViTForImageClassification` (and from there TransformerLens'
`TransformerBridge`).

HF's ViT (Dosovitskiy et al. 2021 as in google/vit-base-patch16-224) is pre-LN, prepends a class token, adds learned
1-D positions (class token included), uses exact GELU, and classifies from the class token through one Linear after
a final LayerNorm; so only probe ViTs with that structure are exported, other configs raise with the reason.
Weights map one to one, shape changes only (transformers 5.x names; 4.x used query/key/value, attention.output.dense,
intermediate.dense and output.dense for the same tensors):

  probe                               HF (prefix vit.)
  patch_embed.proj.{weight,bias}      embeddings.patch_embeddings.projection.{weight,bias}
  cls_token [d]                       embeddings.cls_token [1, 1, d]
  W_pos [1 + patch, d]                embeddings.position_embeddings [1, 1 + patch, d]
  blocks.L.ln1.{w,b}                  layers.L.layernorm_before.{weight,bias}
  blocks.L.attn.W_{Q,K,V} [h, d, e]   layers.L.attention.{q,k,v}_proj.weight [(h e), d]
  blocks.L.attn.b_{Q,K,V} [h, e]      layers.L.attention.{q,k,v}_proj.bias [(h e)]
  blocks.L.attn.W_O [h, e, d], b_O    layers.L.attention.o_proj.weight [d, (h e)], bias
  blocks.L.ln2.{w,b}                  layers.L.layernorm_after.{weight,bias}
  blocks.L.mlp.W_in [d, m], b_in      layers.L.mlp.fc1.weight [m, d], bias
  blocks.L.mlp.W_out [m, d], b_out    layers.L.mlp.fc2.weight [d, m], bias
  ln_final.{w,b}                      layernorm.{weight,bias}
  head.out.{weight,bias}              classifier.{weight,bias}   (no vit. prefix)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import einops
import torch

from probe.interop.hf_export import as_export, load_checked, refuse
from probe.models.vit import ViT

REQUIRED = {
    "norm_placement": "pre",
    "normalization_type": "LN",
    "positional_embedding_type": "learned",
    "pool": "cls",
    "head_type": "linear",
    "act_fn": "gelu",
    "attn_only": False,
    "use_attn_scale": True,
    "gated_mlp": False,
    "final_rms": False,
}


def check_exportable(model: ViT) -> None:
    """Raise ValueError naming every config field that Hugging Face's ViT cannot express."""
    if not isinstance(model, ViT):
        raise TypeError(f"model must be a probe.ViT; got {type(model).__name__}")
    cfg = model.cfg
    bad = [f"{k}={getattr(cfg, k)!r} (HF ViT needs {v!r})" for k, v in REQUIRED.items() if getattr(cfg, k) != v]
    if cfg.n_heads * cfg.d_head != cfg.d_model:
        bad.append(f"n_heads * d_head = {cfg.n_heads * cfg.d_head} != d_model={cfg.d_model} (HF ViT needs equality)")
    if cfg.n_kv_heads != cfg.n_heads:
        bad.append(f"n_key_value_heads={cfg.n_key_value_heads} (HF ViT has a key/value head per query head)")
    refuse(bad, "ViTForImageClassification")


def hf_config(model: ViT) -> Any:
    """The `transformers.ViTConfig` matching `model.cfg`."""
    import transformers

    check_exportable(model)
    cfg = model.cfg
    return transformers.ViTConfig(
        hidden_size=cfg.d_model,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        intermediate_size=cfg.d_mlp,
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        layer_norm_eps=cfg.eps,
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        num_channels=cfg.n_channels,
        qkv_bias=True,
        num_labels=cfg.n_classes,
        architectures=["ViTForImageClassification"],
        id2label={i: str(i) for i in range(cfg.n_classes)},
        label2id={str(i): i for i in range(cfg.n_classes)},
    )


@torch.no_grad()
def hf_state_dict(model: ViT) -> dict[str, torch.Tensor]:
    """probe ViT weights renamed and reshaped into `ViTForImageClassification`'s state dict."""
    check_exportable(model)
    sd: dict[str, torch.Tensor] = {
        "vit.embeddings.cls_token": model.cls_token[None, None],
        "vit.embeddings.position_embeddings": model.W_pos[None],
        "vit.embeddings.patch_embeddings.projection.weight": model.patch_embed.proj.weight,
        "vit.embeddings.patch_embeddings.projection.bias": model.patch_embed.proj.bias,
        "vit.layernorm.weight": model.ln_final.w,
        "vit.layernorm.bias": model.ln_final.b,
        "classifier.weight": model.head.out.weight,
        "classifier.bias": model.head.out.bias,
    }
    for i, block in enumerate(model.blocks):
        p, attn = f"vit.layers.{i}.", block.attn
        for name in "qkv":
            sd[p + f"attention.{name}_proj.weight"] = einops.rearrange(
                getattr(attn, f"W_{name.upper()}"), "h d e -> (h e) d"
            )
            sd[p + f"attention.{name}_proj.bias"] = einops.rearrange(getattr(attn, f"b_{name.upper()}"), "h e -> (h e)")
        sd[p + "attention.o_proj.weight"] = einops.rearrange(attn.W_O, "h e d -> d (h e)")
        sd[p + "attention.o_proj.bias"] = attn.b_O
        sd[p + "layernorm_before.weight"], sd[p + "layernorm_before.bias"] = block.ln1.w, block.ln1.b
        sd[p + "layernorm_after.weight"], sd[p + "layernorm_after.bias"] = block.ln2.w, block.ln2.b
        sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"] = block.mlp.W_in.T, block.mlp.b_in
        sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"] = block.mlp.W_out.T, block.mlp.b_out
    return as_export(sd)


def vit_to_hf(model: ViT) -> Any:
    """A `transformers.ViTForImageClassification` (eval mode, float32, CPU) with `model`'s weights."""
    import transformers

    return load_checked(transformers.ViTForImageClassification(hf_config(model)), hf_state_dict(model), "ViT")


def export_vit(model: ViT, out_dir: str | Path) -> Path:
    """Write a Hugging Face model directory (config.json + model.safetensors) loadable with
    `ViTForImageClassification.from_pretrained(out_dir)` offline."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vit_to_hf(model).save_pretrained(out)
    return out


def boot_vit_bridge(hf_dir: str | Path) -> Any:
    """Load an exported directory into TransformerLens' `TransformerBridge`, offline."""
    import transformers
    from transformer_lens.model_bridge import TransformerBridge

    hf = transformers.ViTForImageClassification.from_pretrained(str(hf_dir), local_files_only=True)
    return TransformerBridge.boot_transformers(str(hf_dir), hf_model=hf.eval(), device="cpu")
