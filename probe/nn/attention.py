"""Multi-head scaled dot-product attention (Vaswani et al. 2017, sec. 3.2) with TransformerLens' hooks.

Free when nobody looks: unless a hook sits on `hook_attn_scores` or `hook_pattern`, attention runs through
`F.scaled_dot_product_attention` (fused kernels); otherwise the explicit path materialises scores and pattern.
Both paths agree in outputs and gradients (tests/nn/test_attention.py). `hook_result` (per-head outputs) is only
computed when hooked.

Grouped-query attention (Ainslie et al. 2023; `n_key_value_heads`), in TransformerLens' layout: W_K, W_V, b_K, b_V
and hook_k, hook_v (and the KV cache) hold the n_kv key/value heads; query head h reads kv head h // (h / n_kv).
Queries, scores, pattern, z and the per-head views `OV` / `QK` have all n_heads.

TransformerLens' optional per-head inputs (`use_split_qkv_input`, `use_attn_in`; self-attention only): the block hooks
a copy of the residual stream per head (`hook_q_input` [batch pos head d_model], `hook_k_input` / `hook_v_input`
[batch pos kv_head d_model], or `hook_attn_in` for all three), normalises each, and passes them as `heads`: each head
projects its own copy (`project_heads`).

Dimensions: b batch, p query pos, k key pos, h head, g kv head, e d_head, d d_model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import einsum, rearrange
from jaxtyping import Bool, Float
from torch import Tensor, nn

from probe.hooked import AttentionWeights, HookPoint, is_hooked
from probe.nn.positional import Rotary


def attention_mask(
    n_q: int, n_k: int, causal: bool, key_padding_mask: Bool[Tensor, "batch kpos"] | None, device
) -> Bool[Tensor, "batch 1 qpos kpos"] | None:
    """True where a query may attend to a key. Queries are the last n_q of n_k positions (a KV cache holds the rest).

    A query row with no allowed key (a padded position whose keys are all padding) is left fully open, so that
    both attention paths stay finite; its output is meaningless and callers mask it out of any loss.
    """
    if not causal and key_padding_mask is None:
        return None
    mask = torch.ones(1, 1, n_q, n_k, dtype=torch.bool, device=device)
    if causal:
        mask = torch.ones(n_q, n_k, dtype=torch.bool, device=device).tril(n_k - n_q)[None, None]
    if key_padding_mask is not None:
        mask = mask & key_padding_mask[:, None, None, :]
    return mask | ~mask.any(-1, keepdim=True)


class HeadProjections(AttentionWeights, nn.Module):
    """Per-head query, key, value and output weights in TransformerLens' layout, shared by softmax and linear
    attention: W_Q [head d_model d_head], W_K/W_V [kv_head d_model d_head], W_O [head d_head d_model], their biases,
    the views `OV` / `QK`, and the hooks on q [batch pos head d_head], k and v [batch pos kv_head d_head]. With
    `tie_qk`, W_K and b_K are W_Q and b_Q (003 #2 asks why Q and K have separate weights)."""

    def __init__(self, cfg, generator: torch.Generator | None = None) -> None:
        super().__init__()
        h, d, e = cfg.n_heads, cfg.d_model, cfg.d_head
        g = getattr(cfg, "n_key_value_heads", None) or h
        self.n_heads, self.n_kv_heads, self.d_head = h, g, e

        def init(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=generator) * cfg.init_range)

        self.W_Q, self.W_K, self.W_V, self.W_O = init(h, d, e), init(g, d, e), init(g, d, e), init(h, e, d)
        self.b_Q = nn.Parameter(torch.zeros(h, e))
        self.b_K = nn.Parameter(torch.zeros(g, e))
        self.b_V = nn.Parameter(torch.zeros(g, e))
        self.b_O = nn.Parameter(torch.zeros(d))
        self.hook_q = HookPoint()  # [batch pos head d_head]
        self.hook_k = HookPoint()  # [batch pos kv_head d_head]
        self.hook_v = HookPoint()  # [batch pos kv_head d_head]
        if getattr(cfg, "tie_qk", False):  # one parameter under both names: the QK circuit W_Q W_Q^T is symmetric
            self.W_K, self.b_K = self.W_Q, self.b_Q

    def add_input_hooks(self) -> None:
        """TransformerLens' optional per-head input hooks (the block calls them, before ln1), each firing only with
        its config flag on."""
        self.hook_attn_in = HookPoint("use_attn_in")  # [batch pos head d_model]
        self.hook_q_input = HookPoint("use_split_qkv_input")  # [batch pos head d_model]
        self.hook_k_input = HookPoint("use_split_qkv_input")  # [batch pos kv_head d_model]
        self.hook_v_input = HookPoint("use_split_qkv_input")  # [batch pos kv_head d_model]

    def project_heads(
        self,
        q_in: Float[Tensor, "batch pos head d_model"],
        k_in: Float[Tensor, "batch pos kv_head d_model"],
        v_in: Float[Tensor, "batch pos kv_head d_model"],
    ) -> list[Tensor]:
        """Each head projects its own copy of the input (TransformerLens' split inputs): q, k, v [b p h(g) e]."""
        return [einsum(x, getattr(self, f"W_{n}"), "b p h d, h d e -> b p h e") + getattr(self, f"b_{n}")
                for x, n in zip((q_in, k_in, v_in), "QKV")]

    def project(self, x: Float[Tensor, "batch pos d_model"], names: str) -> list[Tensor]:
        """Project x with the weights named by `names` ("qkv", "q" or "kv") in a single matmul."""
        W = torch.cat([getattr(self, f"W_{n.upper()}") for n in names])  # [h + 2g, d, e] for "qkv"
        b = torch.cat([getattr(self, f"b_{n.upper()}") for n in names])
        out = F.linear(x, rearrange(W, "nh d e -> (nh e) d"), b.flatten())
        out = rearrange(out, "b p (nh e) -> b p nh e", e=self.d_head)
        sizes = [self.n_heads if n == "q" else self.n_kv_heads for n in names]
        return list(out.split(sizes, dim=2))


class Attention(HeadProjections):
    def __init__(self, cfg, causal: bool, cross: bool = False, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator)
        self.causal, self.cross = causal and not cross, cross
        self.scale = cfg.d_head**-0.5 if cfg.use_attn_scale else 1.0
        self.rotary = Rotary(cfg) if cfg.positional_embedding_type == "rotary" and not cross else None
        if self.rotary is not None:
            self.hook_rot_q = HookPoint()
            self.hook_rot_k = HookPoint()
        self.hook_attn_scores = HookPoint()  # [batch head query_pos key_pos]
        self.hook_pattern = HookPoint()
        self.hook_z = HookPoint()  # [batch pos head d_head]
        self.hook_result = HookPoint()  # [batch pos head d_model]
        if not cross:
            self.add_input_hooks()

    def forward(
        self,
        x: Float[Tensor, "batch pos d_model"] | None,
        kv: Float[Tensor, "batch kpos d_model"] | None = None,
        key_padding_mask: Bool[Tensor, "batch kpos"] | None = None,
        cache: dict | None = None,
        heads: tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        """`x` [batch pos d_model], or `heads` (x=None): per-head inputs (q_in, k_in, v_in) of self-attention."""
        offset = cache.get("pos", 0) if cache is not None else 0
        if heads is not None:
            q, k, v = self.project_heads(*heads)
        elif not self.cross:
            q, k, v = self.project(x, "qkv")
        elif cache is not None and "k" in cache:  # cross-attention keys and values are fixed while decoding
            (q,) = self.project(x, "q")
            k, v = cache["k"], cache["v"]
        else:
            (q,) = self.project(x, "q")
            k, v = self.project(kv, "kv")
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        if self.rotary is not None:
            q = self.hook_rot_q(self.rotary(q, offset))
            k = self.hook_rot_k(self.rotary(k, offset))
        if cache is not None:
            if not self.cross and "k" in cache:
                k, v = torch.cat([cache["k"], k], 1), torch.cat([cache["v"], v], 1)
            cache["k"], cache["v"], cache["pos"] = k, v, offset + q.shape[1]
        gqa = self.n_kv_heads != self.n_heads
        explicit = is_hooked(self.hook_attn_scores) or is_hooked(self.hook_pattern)
        fused_causal = self.causal and key_padding_mask is None and q.shape[1] == k.shape[1] and not explicit
        mask = None if fused_causal else attention_mask(q.shape[1], k.shape[1], self.causal, key_padding_mask, q.device)
        if explicit:
            if gqa:  # every query head meets its group's key and value head
                k, v = (t.repeat_interleave(self.n_heads // self.n_kv_heads, dim=2) for t in (k, v))
            b, h = q.shape[0], self.n_heads
            bias = torch.zeros((), dtype=q.dtype, device=q.device)  # the mask, added inside the matmul
            if mask is not None:
                bias = bias.masked_fill(~mask, float("-inf"))  # [b or 1, 1, p, k]
                bias = bias[0] if bias.shape[0] == 1 else rearrange(bias.expand(-1, h, -1, -1), "b h p k -> (b h) p k")
            qh, kh = rearrange(q, "b p h e -> (b h) p e"), rearrange(k, "b k h e -> (b h) e k")
            scores = rearrange(torch.baddbmm(bias, qh, kh, alpha=self.scale), "(b h) p k -> b h p k", b=b)
            pattern = self.hook_pattern(self.hook_attn_scores(scores).softmax(-1))
            z = einsum(pattern.to(v.dtype), v, "b h p k, b k h e -> b p h e")
        else:
            q, k, v = (rearrange(t, "b p h e -> b h p e") for t in (q, k, v))
            z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=fused_causal, scale=self.scale,
                                               enable_gqa=gqa)
            z = rearrange(z, "b h p e -> b p h e")
        return self.output(self.hook_z(z))

    def output(self, z: Float[Tensor, "batch pos head d_head"]) -> Float[Tensor, "batch pos d_model"]:
        """The heads' outputs through W_O, summed; per head (`hook_result`) only when that hook is on."""
        if is_hooked(self.hook_result):  # per-head outputs, as a [b p h d] view of one [h (b p) d] bmm
            per_head = torch.bmm(rearrange(z, "b p h e -> h (b p) e"), self.W_O)
            result = self.hook_result(rearrange(per_head, "h (b p) d -> b p h d", b=z.shape[0]))
            return result.sum(2) + self.b_O
        return F.linear(rearrange(z, "b p h e -> b p (h e)"), self.W_O.flatten(0, 1).T, self.b_O)
