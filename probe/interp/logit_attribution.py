"""Direct logit attribution (Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits", sec. 2;
TransformerLens' `ActivationCache.decompose_resid` / `stack_head_results` / `apply_ln_to_stack`).

The residual stream that reaches the unembedding is a sum of what each part wrote: the token and position
embeddings, every attention head (z_h W_O^h), each layer's attention output bias, every MLP. With the final
LayerNorm's scale frozen at its value on this input, the norm is linear, so the logit of a token (or the difference
of two logits) splits exactly into one number per part plus a constant (the norm's bias and the unembedding bias):

    logit = sum_c  centre(c) / scale * w . W_U[:, token]   +   b . W_U[:, token] + b_U[token].

Works on decoders and encoders (at a position, or the pooled output of a classifier), on the decoder of an
encoder-decoder (self- and cross-attention heads apart) and on a ViT with a linear head. Post-norm blocks are
refused: their residual stream is not a sum of the parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens import ActivationCache

from probe.interp.components import get_stack, stacks


@dataclass
class LogitAttribution:
    """`values[c]`: what component `labels[c]` adds to the metric (batch mean); `heads[stack]`: the heads' rows as
    [layer, head]. `values.sum()` equals the model's own logit (difference)."""

    labels: list[str]
    values: Float[Tensor, " component"]
    heads: dict[str, Float[Tensor, "layer head"]]

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.labels, self.values.tolist()))


def _embed_hooks(model: nn.Module) -> list[tuple[str, str]]:
    cfg = model.cfg
    if getattr(cfg, "kind", "") == "vit":
        return [("embed", "hook_embed"), ("pos_embed", "hook_pos_embed")]
    if cfg.arch == "encoder_decoder":
        names = [("embed", "hook_tgt_embed"), ("pos_embed", "hook_tgt_pos_embed")]
    else:
        names = [("embed", "hook_embed"), ("pos_embed", "hook_pos_embed")]
    return names if model.pos_embed is not None else names[:1]


def _unembed(model: nn.Module) -> tuple[Tensor, Tensor]:
    """(W_U [d_model, d_out], b_U [d_out]) of the layer after the final norm."""
    if getattr(model.cfg, "kind", "") == "vit":
        if model.cfg.head_type != "linear":
            raise ValueError("direct logit attribution needs a linear ViT head (head_type='linear'); "
                             f"this ViT has head_type={model.cfg.head_type!r} (Linear-tanh-Linear)")
        return model.head.out.weight.T, model.head.out.bias
    return model.W_U, model.b_U


def residual_components(model: nn.Module, inputs: dict[str, Tensor]) -> tuple[list[str], Tensor, ActivationCache]:
    """Labels and tensors [component, batch, pos, d_model] of everything written to the output residual stream
    (they sum to the stream before the final norm), and the cache they came from."""
    if model.cfg.norm_placement != "pre":
        raise ValueError(f"norm_placement={model.cfg.norm_placement!r}: a post-norm block normalises the residual "
                         "stream itself, so it is not a sum of its parts; direct logit attribution needs 'pre'")
    out = get_stack(model)
    parts = [s for s in stacks(model).values() if s.prefix == out.prefix]  # decoder: self and cross heads
    hooks = [h for _, h in _embed_hooks(model)]
    for layer in range(out.n_layers):
        hooks += [s.attn_hook(layer, "hook_z") for s in parts]
        if not model.cfg.attn_only:
            hooks.append(out.block_hook(layer, "hook_mlp_out"))
    hooks += [out.block_hook(out.n_layers - 1, "hook_resid_post"), "ln_final.hook_scale"]
    model_hooks = set(model.hook_dict)
    with torch.no_grad():
        _, cache = model.run_with_cache(**inputs, names_filter=[h for h in hooks if h in model_hooks])
    labels, comps = [], []
    for label, hook in _embed_hooks(model):
        labels.append(label)
        comps.append(cache[hook])
    for layer in range(out.n_layers):
        for s in parts:
            attn = s.module(model, layer)
            z = cache[s.attn_hook(layer, "hook_z")]  # [batch pos head d_head]
            result = torch.einsum("bphe,hed->hbpd", z, attn.W_O)
            for head in range(s.n_heads):
                labels.append(s.head_label(layer, head))
                comps.append(result[head])
            labels.append(f"{s.head_label(layer, 0).rsplit('H', 1)[0]} attn bias")
            comps.append(attn.b_O.expand_as(result[0]))
        if not model.cfg.attn_only:
            labels.append(f"{'dec.' if out.name == 'decoder' else ''}L{layer} mlp")
            comps.append(cache[out.block_hook(layer, "hook_mlp_out")])
    return labels, torch.stack(comps), cache


def _final_norm(model: nn.Module, comps: Tensor, cache) -> tuple[Tensor, Tensor]:
    """The final norm applied linearly to every component (scale frozen), and its constant (the bias b)."""
    norm, d = model.ln_final, comps.shape[-1]
    kind = model.cfg.normalization_type
    if isinstance(norm, nn.Identity) or kind is None:
        return comps, torch.zeros(d, device=comps.device, dtype=comps.dtype)
    scale = cache["ln_final.hook_scale"]  # [batch pos 1]
    if kind == "LN":
        return (comps - comps.mean(-1, keepdim=True)) / scale * norm.w, norm.b.detach()
    return comps / scale * norm.w, torch.zeros(d, device=comps.device, dtype=comps.dtype)


def _pool(model: nn.Module, x: Tensor, pos: int | None) -> Tensor:
    """[..., batch, pos, d] -> [..., batch, d] at `pos`, or as the model pools (classifier encoder, ViT)."""
    cfg = model.cfg
    vit = getattr(cfg, "kind", "") == "vit"
    if vit or cfg.head == "classifier":
        if cfg.pool == "cls":
            return x[..., 0, :]
        return x[..., 1:, :].mean(-2) if vit else x.mean(-2)
    if pos is None:
        raise ValueError("pos is required for a model with per-position logits (head='lm' or 'token')")
    return x[..., pos, :]


@torch.no_grad()
def direct_logit_attribution(
    model: nn.Module, inputs: dict[str, Tensor], answer: int, wrong: int | None = None, pos: int | None = -1,
) -> LogitAttribution:
    """Each component's direct contribution to logit[answer] (minus logit[wrong] if given) at position `pos`
    (ignored where the model pools to one output), averaged over the batch. The last entry, "bias", is the constant
    from the final norm's bias and the unembedding bias; all entries sum to the model's logit (difference)."""
    labels, comps, cache = residual_components(model, inputs)
    normed, const = _final_norm(model, comps, cache)
    W_U, b_U = _unembed(model)
    n_out = W_U.shape[1]
    for name, tok in (("answer", answer), ("wrong", wrong)):
        if tok is not None and not 0 <= tok < n_out:
            raise ValueError(f"{name}={tok} is outside the model's {n_out} outputs")
    direction = W_U[:, answer] - (W_U[:, wrong] if wrong is not None else 0.0)
    bias = b_U[answer] - (b_U[wrong] if wrong is not None else 0.0)
    values = (_pool(model, normed, pos) @ direction).mean(-1)  # [component]
    values = torch.cat([values, (const @ direction + bias).reshape(1)])
    labels = labels + ["bias"]
    heads = {}
    for s in stacks(model).values():
        if s.head_label(0, 0) in labels:
            heads[s.name] = torch.tensor([[float(values[labels.index(s.head_label(layer, h))])
                                           for h in range(s.n_heads)] for layer in range(s.n_layers)])
    return LogitAttribution(labels, values.float().cpu(), heads)
