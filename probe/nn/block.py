"""A Transformer block with pre- or post-norm placement.

post (Vaswani et al. 2017, the figure):  r_mid = LN1(r + Attn(r));         r_out = LN2(r_mid + MLP(r_mid))
pre  (Xiong et al. 2020; most code):     r_mid = r + Attn(LN1(r));         r_out = r_mid + MLP(LN2(r_mid))
`residual=False` drops the skip connections (r_mid = Attn(LN1(r)) or LN1(Attn(r)), and so on; 001 §14 asks why
they are there). A BatchNorm (`normalization_type="BN"`) gets the key padding mask, so padding stays out of its
statistics.
A decoder block of an encoder-decoder adds cross-attention on the encoder output between the two, with its own norm
`ln_cross`, writing `hook_cross_attn_out` and `hook_resid_mid_cross`.

TransformerLens' optional input hooks, read live from the model's config (`model.set_use_*`), as its
HookedTransformer block does: `use_split_qkv_input` gives each head its own copy of the residual stream for its
query, key and value (`attn.hook_q_input` [batch pos head d_model], `attn.hook_k_input` / `hook_v_input`
[batch pos kv_head d_model]), `use_attn_in` one copy for all three (`attn.hook_attn_in`), hooked before ln1, which
then normalises each copy (pre-norm); `use_hook_mlp_in` hooks the MLP's input before ln2 (`hook_mlp_in`, a copy of
resid_mid). With the flags off the block runs as without them.
"""

from __future__ import annotations

import torch
from einops import repeat
from jaxtyping import Bool, Float
from torch import Tensor, nn

from probe.hooked import HookPoint
from probe.nn.additive_attention import AdditiveAttention
from probe.nn.attention import Attention
from probe.nn.mlp import MLP
from probe.nn.norm import apply_norm, make_norm
from probe.nn.short_conv import ShortConv


def make_attention(cfg, causal: bool, cross: bool = False, generator: torch.Generator | None = None) -> nn.Module:
    if getattr(cfg, "attention", "softmax") == "linear":
        from probe.nn.linear_attention import LinearAttention

        return LinearAttention(cfg, causal, cross, generator)
    if getattr(cfg, "attention", "softmax") == "additive":
        return AdditiveAttention(cfg, causal, generator)
    return Attention(cfg, causal, cross, generator)


class TransformerBlock(nn.Module):
    # TransformerLens' logit lens checks this: hook_resid_post is the one [batch pos d_model] residual stream that the
    # next block (or the final norm) reads, not a stack of streams combined later
    hook_out_is_single_residual_stream = True

    def __init__(self, cfg, layer: int, causal: bool, cross: bool = False,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg  # the model's own config: its use_* flags switch the optional hooks
        self.layer, self.pre = layer, cfg.norm_placement == "pre"
        self.residual = getattr(cfg, "residual", True)
        self.attn_only = cfg.attn_only
        self.ln1 = make_norm(cfg)
        self.attn = make_attention(cfg, causal, generator=generator)
        self.short_conv = ShortConv(cfg, generator) if getattr(cfg, "short_conv", 0) else None
        if self.short_conv is not None:
            self.hook_short_conv = HookPoint()  # [batch pos d_model], the mixer's input
        self.dropout = nn.Dropout(cfg.dropout)
        self.hook_resid_pre = HookPoint()  # [batch pos d_model]
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        if cross:
            self.ln_cross = make_norm(cfg)
            self.cross_attn = Attention(cfg, causal=False, cross=True, generator=generator)  # softmax, also in linear
            self.hook_cross_attn_out = HookPoint()
            self.hook_resid_mid_cross = HookPoint()
        self.cross = cross
        if not cfg.attn_only:
            self.ln2 = make_norm(cfg)
            self.mlp = MLP(cfg, generator)
            self.hook_mlp_in = HookPoint("use_hook_mlp_in")  # [batch pos d_model]
            self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def sublayer(self, resid: Tensor, norm: nn.Module, fn, hook: HookPoint, mask: Tensor | None,
                 norm_inside: bool = False) -> Tensor:
        """resid + f(norm(resid)) (pre) or norm(resid + f(resid)) (post); without residuals f(norm(resid)) or
        norm(f(resid)). `mask` (the key padding mask) keeps padding out of a BatchNorm's statistics; `norm_inside`:
        f applies the pre-norm itself."""
        skip = resid if self.residual else 0.0
        if self.pre:
            return skip + self.dropout(hook(fn(resid if norm_inside else apply_norm(norm, resid, mask))))
        return apply_norm(norm, skip + self.dropout(hook(fn(resid))), mask)

    def per_head_mix(self, resid: Tensor, key_padding_mask: Tensor | None, cache: dict | None) -> Tensor:
        """Self-attention on per-head copies of the residual stream (use_attn_in / use_split_qkv_input); real copies,
        not broadcast views, so that a hook may edit one head's in place."""
        attn, norm = self.attn, self.ln1 if self.pre else nn.Identity()
        if getattr(norm, "takes_padding_mask", False):
            raise ValueError("use_attn_in / use_split_qkv_input need a per-token norm (LN, RMS or None): "
                             "normalization_type='BN' normalises over the batch, not per head copy")

        def copies(n: int) -> Tensor:
            return repeat(resid, "b p d -> b p h d", h=n).contiguous()

        if self.cfg.use_attn_in:
            q_in = k_in = v_in = norm(attn.hook_attn_in(copies(attn.n_heads)))
        else:
            q_in = norm(attn.hook_q_input(copies(attn.n_heads)))
            k_in = norm(attn.hook_k_input(copies(attn.n_kv_heads)))
            v_in = norm(attn.hook_v_input(copies(attn.n_kv_heads)))
        return attn(None, key_padding_mask=key_padding_mask, cache=cache, heads=(q_in, k_in, v_in))

    def mlp_branch(self, resid: Tensor, key_padding_mask: Tensor | None) -> Tensor:
        """The MLP on hook_mlp_in (use_hook_mlp_in): a copy of its input, hooked before ln2."""
        x = self.hook_mlp_in(resid.clone())
        return self.mlp(apply_norm(self.ln2, x, key_padding_mask) if self.pre else x)

    def conv(self, x: Tensor, key_padding_mask: Tensor | None, cache: dict | None) -> Tensor:
        """The short convolution (if any) before the mixer; padded positions enter it as zeros, as in its
        unpadded sequence."""
        if self.short_conv is None:
            return x
        if key_padding_mask is not None:
            x = x.masked_fill(~key_padding_mask[..., None], 0.0)
        return self.hook_short_conv(self.short_conv(x, cache))

    def forward(
        self,
        resid: Float[Tensor, "batch pos d_model"],
        key_padding_mask: Bool[Tensor, "batch pos"] | None = None,
        encoder_out: Float[Tensor, "batch kpos d_model"] | None = None,
        encoder_mask: Bool[Tensor, "batch kpos"] | None = None,
        cache: dict | None = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        resid = self.hook_resid_pre(resid)
        self_cache = cache.setdefault("self", {}) if cache is not None else None

        def mix(x: Tensor) -> Tensor:
            return self.attn(self.conv(x, key_padding_mask, cache), key_padding_mask=key_padding_mask, cache=self_cache)

        if self.cfg.use_attn_in or self.cfg.use_split_qkv_input:
            per_head = lambda r: self.per_head_mix(r, key_padding_mask, self_cache)
            resid = self.sublayer(resid, self.ln1, per_head, self.hook_attn_out, key_padding_mask, norm_inside=True)
        else:
            resid = self.sublayer(resid, self.ln1, mix, self.hook_attn_out, key_padding_mask)
        resid = self.hook_resid_mid(resid)
        if self.cross:
            cross_cache = cache.setdefault("cross", {}) if cache is not None else None
            resid = self.sublayer(
                resid,
                self.ln_cross,
                lambda x: self.cross_attn(x, encoder_out, key_padding_mask=encoder_mask, cache=cross_cache),
                self.hook_cross_attn_out,
                key_padding_mask,
            )
            resid = self.hook_resid_mid_cross(resid)
        if not self.attn_only and self.cfg.use_hook_mlp_in:
            mlp = lambda r: self.mlp_branch(r, key_padding_mask)
            resid = self.sublayer(resid, self.ln2, mlp, self.hook_mlp_out, key_padding_mask, norm_inside=True)
        elif not self.attn_only:
            resid = self.sublayer(resid, self.ln2, self.mlp, self.hook_mlp_out, key_padding_mask)
        return self.hook_resid_post(resid)
