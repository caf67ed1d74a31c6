"""probe decoders <-> Hugging Face `transformers.GPT2LMHeadModel` (Radford et al. 2019; HF's modeling_gpt2).

GPT-2 is a pre-LN decoder with learned absolute positions, biases everywhere except the LM head, and one fused
Conv1D (x @ W + b, weight [in, out]) for q|k|v. The map is exact (shape changes only):

  probe                                   HF GPT-2 (prefix transformer.)
  W_E [vocab, d]                          wte.weight [vocab, d]          (x sqrt(d) folded in when scale_embed)
  W_pos [n_ctx, d] (sinusoidal: table)    wpe.weight [n_ctx, d]          ("none": zeros)
  blocks.L.ln1.{w,b}, ln2.{w,b}           h.L.ln_1.{weight,bias}, h.L.ln_2.{weight,bias}
  W_Q|W_K|W_V [h, d, e], b_Q|b_K|b_V      h.L.attn.c_attn.weight [d, 3 (h e)], bias [3 (h e)]
  W_O [h, e, d], b_O                      h.L.attn.c_proj.weight [(h e), d], bias
  mlp.W_in [d, m], W_out [m, d], biases   h.L.mlp.c_fc.weight [d, m], h.L.mlp.c_proj.weight [m, d], biases
                                          (attn_only: all zeros, which adds exactly nothing to the residual)
  ln_final.{w,b}                          ln_f.{weight,bias}
  W_U [d, vocab]                          lm_head.weight [vocab, d]      (no bias: b_U must be zero)

`from_hf_gpt2` inverts it; a GPT-2 whose MLPs are all exactly zero comes back as `attn_only=True`.
"""

from __future__ import annotations

from typing import Any

import einops
import torch

from probe.config import TransformerConfig
from probe.interop.hf_export import TO_HF_ACT, as_export, decoder_problems, hf_config, load_checked, refuse
from probe.models.transformer import Transformer

FROM_HF_ACT = {**TO_HF_ACT, "gelu_pytorch_tanh": "gelu_new", "swish": "silu"}


def check_gpt2_exportable(model: Transformer) -> None:
    """Raise ValueError naming every config field GPT-2 cannot express exactly."""
    bad = decoder_problems(model)
    cfg = model.cfg
    if cfg.normalization_type != "LN":
        bad.append(f"normalization_type={cfg.normalization_type!r} (GPT-2 needs 'LN'; RMS models export as Llama)")
    if cfg.positional_embedding_type not in ("learned", "sinusoidal", "none"):
        bad.append(f"positional_embedding_type={cfg.positional_embedding_type!r} (GPT-2 has an absolute position "
                   "table: needs 'learned', 'sinusoidal' or 'none'; rotary models export as Llama)")
    if cfg.n_heads * cfg.d_head != cfg.d_model:
        bad.append(f"n_heads * d_head = {cfg.n_heads * cfg.d_head} != d_model={cfg.d_model} (GPT-2 needs equality)")
    if cfg.n_kv_heads != cfg.n_heads:
        bad.append(f"n_key_value_heads={cfg.n_key_value_heads} (GPT-2 has a key/value head per query head; "
                   "grouped-query models export as Llama)")
    if cfg.gated_mlp:
        bad.append("gated_mlp=True (GPT-2's MLP is not gated; gated models export as Llama)")
    if cfg.final_rms:
        bad.append("final_rms=True (GPT-2's final norm is a LayerNorm)")
    refuse(bad, "GPT-2")


def gpt2_config(model: Transformer, **overrides: Any) -> Any:
    """The `transformers.GPT2Config` matching `model.cfg` (`overrides`: extra config arguments)."""
    check_gpt2_exportable(model)
    cfg = model.cfg
    return hf_config(
        "GPT2Config",
        model,
        n_positions=cfg.n_ctx,
        n_embd=cfg.d_model,
        n_layer=cfg.n_layers,
        n_head=cfg.n_heads,
        n_inner=cfg.d_mlp,
        activation_function=TO_HF_ACT[cfg.act_fn],
        resid_pdrop=cfg.dropout,
        embd_pdrop=cfg.dropout,
        attn_pdrop=cfg.dropout,
        layer_norm_epsilon=cfg.eps,
        scale_attn_weights=cfg.use_attn_scale,
        architectures=["GPT2LMHeadModel"],
        **overrides,
    )


@torch.no_grad()
def gpt2_state_dict(model: Transformer) -> dict[str, torch.Tensor]:
    """`model`'s weights renamed and reshaped into `GPT2LMHeadModel`'s state dict (float32, CPU)."""
    check_gpt2_exportable(model)
    cfg = model.cfg
    W_E = model.W_E * (cfg.d_model**0.5 if cfg.scale_embed else 1.0)
    if cfg.positional_embedding_type == "none":
        W_pos = torch.zeros(cfg.n_ctx, cfg.d_model)
    else:
        W_pos = model.pos_embed(1, cfg.n_ctx)[0]  # the learned or sinusoidal table
    sd = {
        "transformer.wte.weight": W_E,
        "transformer.wpe.weight": W_pos,
        "transformer.ln_f.weight": model.ln_final.w,
        "transformer.ln_f.bias": model.ln_final.b,
        "lm_head.weight": model.W_E if cfg.tie_embed else model.W_U.T,
    }
    for i, block in enumerate(model.blocks):
        p, attn = f"transformer.h.{i}.", block.attn
        qkv = [einops.rearrange(getattr(attn, f"W_{n}"), "h d e -> d (h e)") for n in "QKV"]
        sd[p + "attn.c_attn.weight"] = torch.cat(qkv, 1)
        sd[p + "attn.c_attn.bias"] = torch.cat([getattr(attn, f"b_{n}").flatten() for n in "QKV"])
        sd[p + "attn.c_proj.weight"] = einops.rearrange(attn.W_O, "h e d -> (h e) d")
        sd[p + "attn.c_proj.bias"] = attn.b_O
        sd[p + "ln_1.weight"], sd[p + "ln_1.bias"] = block.ln1.w, block.ln1.b
        if cfg.attn_only:  # a zero MLP adds exactly zero
            d, m = cfg.d_model, cfg.d_mlp
            mlp = {"c_fc.weight": torch.zeros(d, m), "c_fc.bias": torch.zeros(m),
                   "c_proj.weight": torch.zeros(m, d), "c_proj.bias": torch.zeros(d)}
            sd[p + "ln_2.weight"], sd[p + "ln_2.bias"] = torch.ones(d), torch.zeros(d)
        else:
            mlp = {"c_fc.weight": block.mlp.W_in, "c_fc.bias": block.mlp.b_in,
                   "c_proj.weight": block.mlp.W_out, "c_proj.bias": block.mlp.b_out}
            sd[p + "ln_2.weight"], sd[p + "ln_2.bias"] = block.ln2.w, block.ln2.b
        sd.update({p + "mlp." + k: v for k, v in mlp.items()})
    return as_export(sd)


def to_hf_gpt2(model: Transformer) -> Any:
    """A `transformers.GPT2LMHeadModel` (eval mode, float32, CPU, eager attention) computing `model`'s logits."""
    import transformers

    config = gpt2_config(model, attn_implementation="eager")
    return load_checked(transformers.GPT2LMHeadModel(config), gpt2_state_dict(model), "GPT-2")


@torch.no_grad()
def from_hf_gpt2(hf_model: Any) -> Transformer:
    """A `probe.Transformer` (eval mode, float32, CPU) computing the logits of a `GPT2LMHeadModel`."""
    import transformers

    if not isinstance(hf_model, transformers.GPT2LMHeadModel):
        raise TypeError(f"hf_model must be a transformers.GPT2LMHeadModel, got {type(hf_model).__name__}")
    c = hf_model.config
    bad = []
    if c.activation_function not in FROM_HF_ACT:
        bad.append(f"activation_function={c.activation_function!r} (probe has {sorted(FROM_HF_ACT)})")
    if getattr(c, "scale_attn_by_inverse_layer_idx", False):
        bad.append("scale_attn_by_inverse_layer_idx=True (probe scales every layer alike)")
    if getattr(c, "add_cross_attention", False):
        bad.append("add_cross_attention=True (probe's decoder has no cross-attention)")
    if bad:
        raise ValueError("cannot import this GPT-2 into probe.Transformer: " + "; ".join(bad))
    sd = {k: v.detach().float().cpu() for k, v in hf_model.state_dict().items()}
    h, d = c.n_head, c.n_embd
    mlp_keys = ("mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias")
    attn_only = all(not sd[f"transformer.h.{i}.{k}"].any() for i in range(c.n_layer) for k in mlp_keys)
    cfg = TransformerConfig(
        d_model=d, n_layers=c.n_layer, n_heads=h, d_mlp=c.n_inner or 4 * d, d_vocab=c.vocab_size, n_ctx=c.n_positions,
        act_fn=FROM_HF_ACT[c.activation_function], attn_only=attn_only, normalization_type="LN",
        positional_embedding_type="learned", tie_embed=bool(c.tie_word_embeddings), unembed_bias=False,
        use_attn_scale=bool(c.scale_attn_weights), eps=c.layer_norm_epsilon, dropout=0.0,
        bos_token_id=c.bos_token_id if c.bos_token_id is not None and c.bos_token_id < c.vocab_size else None,
        eos_token_id=c.eos_token_id if c.eos_token_id is not None and c.eos_token_id < c.vocab_size else None,
        pad_token_id=c.pad_token_id if c.pad_token_id is not None and c.pad_token_id < c.vocab_size else None,
    )
    model = Transformer(cfg)
    model.embed.W_E.copy_(sd["transformer.wte.weight"])
    model.pos_embed.W_pos.copy_(sd["transformer.wpe.weight"])
    model.ln_final.w.copy_(sd["transformer.ln_f.weight"])
    model.ln_final.b.copy_(sd["transformer.ln_f.bias"])
    if not cfg.tie_embed:
        model.unembed._W_U.copy_(sd["lm_head.weight"].T)
    for i, block in enumerate(model.blocks):
        p, attn = f"transformer.h.{i}.", block.attn
        Ws = sd[p + "attn.c_attn.weight"].split(d, dim=1)
        bs = sd[p + "attn.c_attn.bias"].split(d)
        for n, W, b in zip("QKV", Ws, bs):
            getattr(attn, f"W_{n}").copy_(einops.rearrange(W, "d (h e) -> h d e", h=h))
            getattr(attn, f"b_{n}").copy_(einops.rearrange(b, "(h e) -> h e", h=h))
        attn.W_O.copy_(einops.rearrange(sd[p + "attn.c_proj.weight"], "(h e) d -> h e d", h=h))
        attn.b_O.copy_(sd[p + "attn.c_proj.bias"])
        block.ln1.w.copy_(sd[p + "ln_1.weight"])
        block.ln1.b.copy_(sd[p + "ln_1.bias"])
        if not attn_only:
            block.ln2.w.copy_(sd[p + "ln_2.weight"])
            block.ln2.b.copy_(sd[p + "ln_2.bias"])
            block.mlp.W_in.copy_(sd[p + "mlp.c_fc.weight"])
            block.mlp.b_in.copy_(sd[p + "mlp.c_fc.bias"])
            block.mlp.W_out.copy_(sd[p + "mlp.c_proj.weight"])
            block.mlp.b_out.copy_(sd[p + "mlp.c_proj.bias"])
    return model.eval()
