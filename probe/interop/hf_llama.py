"""probe decoders -> Hugging Face `transformers.LlamaForCausalLM` (Touvron et al. 2023; HF's modeling_llama).

Llama is a pre-RMSNorm decoder with rotary positions (rotate-half pairing, as probe's `Rotary`), grouped-query
attention and a gated MLP down(act(gate x) * up x). Exported with `attention_bias=True`, `mlp_bias=True`,
`head_dim=d_head`, `num_key_value_heads=n_kv_heads`, every map exact:

  probe                                   HF Llama (prefix model.)
  W_E [vocab, d]                          embed_tokens.weight            (x sqrt(d) folded in when scale_embed)
  blocks.L.ln1.w, ln2.w                   layers.L.input_layernorm.weight, post_attention_layernorm.weight
  W_Q [h, d, e], b_Q                      layers.L.self_attn.q_proj.weight [(h e), d], bias [(h e)]
                                          (use_attn_scale=False: sqrt(e) folded into q, since Llama always scales)
  W_K|W_V [g, d, e], b_K|b_V (g kv heads) layers.L.self_attn.{k,v}_proj.weight [(g e), d], bias [(g e)]
                                          (query head i reads kv head i // (h / g) in both)
  W_O [h, e, d], b_O                      layers.L.self_attn.o_proj.weight [d, (h e)], bias
  gated_mlp: mlp.W_gate, b_gate           layers.L.mlp.gate_proj.weight [m, d], bias
             mlp.W_in, b_in               layers.L.mlp.up_proj.weight [m, d], bias
  plain MLP: mlp.W_in [d, m], b_in        layers.L.mlp.gate_proj.weight [m, d], bias
             (no gate)                    layers.L.mlp.up_proj: weight 0, bias 1, so up x = 1 exactly
  mlp.W_out [m, d], b_out                 layers.L.mlp.down_proj.weight [d, m], bias
                                          (attn_only: gate and down all zeros, adding exactly zero)
  ln_final.w                              norm.weight
  W_U [d, vocab]                          lm_head.weight [vocab, d]      (no bias: b_U must be zero)
"""

from __future__ import annotations

from typing import Any

import einops
import torch

from probe.interop.hf_export import TO_HF_ACT, as_export, decoder_problems, hf_config, load_checked, refuse
from probe.models.transformer import Transformer


def check_llama_exportable(model: Transformer) -> None:
    """Raise ValueError naming every config field Llama cannot express exactly."""
    bad = decoder_problems(model)
    cfg = model.cfg
    if cfg.normalization_type != "RMS":
        bad.append(f"normalization_type={cfg.normalization_type!r} (Llama needs 'RMS'; LN models export as GPT-2)")
    if cfg.positional_embedding_type != "rotary":
        bad.append(f"positional_embedding_type={cfg.positional_embedding_type!r} (Llama needs 'rotary')")
    elif cfg.rotary_dim != cfg.d_head:
        bad.append(f"rotary_dim={cfg.rotary_dim} != d_head={cfg.d_head} (Llama rotates every query/key feature)")
    refuse(bad, "Llama")


def llama_config(model: Transformer, **overrides: Any) -> Any:
    """The `transformers.LlamaConfig` matching `model.cfg` (`overrides`: extra config arguments)."""
    check_llama_exportable(model)
    cfg = model.cfg
    return hf_config(
        "LlamaConfig",
        model,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.d_mlp,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_kv_heads,
        head_dim=cfg.d_head,
        hidden_act=TO_HF_ACT[cfg.act_fn],
        max_position_embeddings=cfg.n_ctx,
        rms_norm_eps=cfg.eps,
        rope_parameters={"rope_type": "default", "rope_theta": float(cfg.rotary_base)},
        attention_bias=True,
        mlp_bias=True,
        attention_dropout=cfg.dropout,
        architectures=["LlamaForCausalLM"],
        **overrides,
    )


@torch.no_grad()
def llama_state_dict(model: Transformer) -> dict[str, torch.Tensor]:
    """`model`'s weights renamed and reshaped into `LlamaForCausalLM`'s state dict (float32, CPU)."""
    check_llama_exportable(model)
    cfg = model.cfg
    d, m = cfg.d_model, cfg.d_mlp
    q_fold = 1.0 if cfg.use_attn_scale else cfg.d_head**0.5  # Llama divides scores by sqrt(d_head)
    sd = {
        "model.embed_tokens.weight": model.W_E * (d**0.5 if cfg.scale_embed else 1.0),
        "model.norm.weight": model.ln_final.w,
        "lm_head.weight": model.W_E if cfg.tie_embed else model.W_U.T,
    }
    for i, block in enumerate(model.blocks):
        p, attn = f"model.layers.{i}.", block.attn
        for n in "qkv":
            fold = q_fold if n == "q" else 1.0
            W = einops.rearrange(getattr(attn, f"W_{n.upper()}"), "h d e -> (h e) d")
            sd[p + f"self_attn.{n}_proj.weight"] = W * fold
            sd[p + f"self_attn.{n}_proj.bias"] = getattr(attn, f"b_{n.upper()}").flatten() * fold
        sd[p + "self_attn.o_proj.weight"] = einops.rearrange(attn.W_O, "h e d -> d (h e)")
        sd[p + "self_attn.o_proj.bias"] = attn.b_O
        sd[p + "input_layernorm.weight"] = block.ln1.w
        if cfg.attn_only:  # gate and down zero: the MLP adds exactly zero
            gate, up = (torch.zeros(d, m), torch.zeros(m)), (torch.zeros(d, m), torch.ones(m))
            down = (torch.zeros(m, d), torch.zeros(d))
            sd[p + "post_attention_layernorm.weight"] = torch.ones(d)
        else:
            mlp = block.mlp
            if cfg.gated_mlp:
                gate, up = (mlp.W_gate, mlp.b_gate), (mlp.W_in, mlp.b_in)
            else:  # act(x W_in + b_in) * 1
                gate, up = (mlp.W_in, mlp.b_in), (torch.zeros(d, m), torch.ones(m))
            down = (mlp.W_out, mlp.b_out)
            sd[p + "post_attention_layernorm.weight"] = block.ln2.w
        for name, (W, b) in (("gate", gate), ("up", up), ("down", down)):
            sd[p + f"mlp.{name}_proj.weight"], sd[p + f"mlp.{name}_proj.bias"] = W.T, b
    return as_export(sd)


def to_hf_llama(model: Transformer) -> Any:
    """A `transformers.LlamaForCausalLM` (eval mode, float32, CPU, eager attention) computing `model`'s logits."""
    import transformers

    config = llama_config(model, attn_implementation="eager")
    return load_checked(transformers.LlamaForCausalLM(config), llama_state_dict(model), "Llama")
