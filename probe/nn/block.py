"""A Transformer block with pre- or post-norm placement.

post (Vaswani et al. 2017, the figure):  r_mid = LN1(r + Attn(r));         r_out = LN2(r_mid + MLP(r_mid))
pre  (Xiong et al. 2020; most code):     r_mid = r + Attn(LN1(r));         r_out = r_mid + MLP(LN2(r_mid))
A decoder block of an encoder-decoder adds cross-attention on the encoder output between the two, with its own norm
`ln_cross`, writing `hook_cross_attn_out` and `hook_resid_mid_cross`.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float
from torch import Tensor, nn

from probe.hooked import HookPoint
from probe.nn.attention import Attention
from probe.nn.mlp import MLP
from probe.nn.norm import make_norm
from probe.nn.short_conv import ShortConv


def make_attention(cfg, causal: bool, cross: bool = False, generator: torch.Generator | None = None) -> nn.Module:
    if getattr(cfg, "attention", "softmax") == "linear":
        from probe.nn.linear_attention import LinearAttention

        return LinearAttention(cfg, causal, cross, generator)
    return Attention(cfg, causal, cross, generator)


class TransformerBlock(nn.Module):
    def __init__(self, cfg, layer: int, causal: bool, cross: bool = False,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.layer, self.pre = layer, cfg.norm_placement == "pre"
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
            self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def sublayer(self, resid: Tensor, norm: nn.Module, fn, hook: HookPoint) -> Tensor:
        """resid + f(norm(resid)) (pre) or norm(resid + f(resid)) (post)."""
        if self.pre:
            return resid + self.dropout(hook(fn(norm(resid))))
        return norm(resid + self.dropout(hook(fn(resid))))

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

        resid = self.sublayer(resid, self.ln1, mix, self.hook_attn_out)
        resid = self.hook_resid_mid(resid)
        if self.cross:
            cross_cache = cache.setdefault("cross", {}) if cache is not None else None
            resid = self.sublayer(
                resid,
                self.ln_cross,
                lambda x: self.cross_attn(x, encoder_out, key_padding_mask=encoder_mask, cache=cross_cache),
                self.hook_cross_attn_out,
            )
            resid = self.hook_resid_mid_cross(resid)
        if not self.attn_only:
            resid = self.sublayer(resid, self.ln2, self.mlp, self.hook_mlp_out)
        return self.hook_resid_post(resid)
