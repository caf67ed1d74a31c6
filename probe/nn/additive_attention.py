"""Additive attention (Bahdanau et al. 2015), the alternative the seeds compare dot-product attention to (001 §11.1,
003 #3; Vaswani et al. 2017, sec. 3.2.1 and footnote 4).

score(i, j) = w_h . tanh(q_i + k_j) per head h, with q = x W_Q + b_Q and k = x W_K + b_K (Bahdanau's W_a s and
U_a h, each [head d_model d_head]) and w = `W_score` [head d_head] (Bahdanau's v_a). Scores are not scaled: they are
bounded by |w_h|_1 whatever d_head is. The rest is softmax attention: masks, pattern, values, output projection and
the same hooks (`hook_q`, `hook_k`, `hook_v`, `hook_attn_scores`, `hook_pattern`, `hook_z`, `hook_result`), so
TransformerLens' tools read it unchanged. It materialises a [batch query_pos key_pos head d_head] tensor: memory and
time grow with d_head where a dot product's do not, which is the cost the seeds point at.

Dimensions: b batch, p query pos, k key pos, h head, e d_head, d d_model.
"""

from __future__ import annotations

import torch
from einops import einsum
from jaxtyping import Bool, Float
from torch import Tensor, nn

from probe.nn.attention import Attention, attention_mask


def additive_scores(
    q: Float[Tensor, "batch pos head d_head"], k: Float[Tensor, "batch kpos head d_head"],
    w: Float[Tensor, "head d_head"],
) -> Float[Tensor, "batch head pos kpos"]:
    """w_h . tanh(q_i + k_j) for every query i and key j, in one broadcast."""
    return einsum(torch.tanh(q[:, :, None] + k[:, None]), w, "b p k h e, h e -> b h p k")


class AdditiveAttention(Attention):
    """Softmax attention (its projections, hooks and output) with additive scores in place of dot products."""

    def __init__(self, cfg, causal: bool, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, causal, generator=generator)
        self.W_score = nn.Parameter(torch.randn(cfg.n_heads, cfg.d_head, generator=generator) * cfg.d_head**-0.5)

    def forward(
        self,
        x: Float[Tensor, "batch pos d_model"] | None,
        kv: None = None,
        key_padding_mask: Bool[Tensor, "batch kpos"] | None = None,
        cache: dict | None = None,
        heads: tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        """`x` [batch pos d_model], or `heads` (x=None): per-head inputs (q_in, k_in, v_in), as `Attention`."""
        if kv is not None:
            raise ValueError("additive attention is self-attention only (kv must be None)")
        q, k, v = self.project_heads(*heads) if heads is not None else self.project(x, "qkv")
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 1), torch.cat([cache["v"], v], 1)
            cache["k"], cache["v"], cache["pos"] = k, v, cache.get("pos", 0) + q.shape[1]
        scores = additive_scores(q, k, self.W_score)
        mask = attention_mask(q.shape[1], k.shape[1], self.causal, key_padding_mask, q.device)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        pattern = self.hook_pattern(self.hook_attn_scores(scores).softmax(-1))
        return self.output(self.hook_z(einsum(pattern, v, "b h p k, b k h e -> b p h e")))
