"""Multi-head linear attention as a fast weight programmer (sum or delta rule) with TransformerLens-style hooks.

Schlag, Irie, Schmidhuber 2021; Katharopoulos et al. 2020. Same constructor, forward and cache contract as
`probe.nn.attention.Attention`; the block builds it when `cfg.attention == "linear"`.

- sum rule: phi = cfg.feature_map, outputs normalised by z_t . phi(q_t) (not for "identity", whose features can
  sum to zero); delta rule: phi(q), phi(k) sum-normalised (L2-normalised for "identity") so ||phi(k)||^2 <= 1 keeps
  the recurrence stable, beta_t = sigmoid(x_t . W_beta + b_beta) per head, no denominator.
- FAVOR+ approximates softmax(q.k / sqrt(d_head)): q, k are scaled by d_head^-1/4 first when cfg.use_attn_scale.
- Weight views `OV` / `QK` as for softmax attention (QK is the bilinear form q.k before the feature map).
- Hooks: hook_q/k/v, hook_phi_q/hook_phi_k [batch pos head d_phi] (the features the rule uses), hook_beta
  [batch pos head], hook_z, hook_result (when hooked), and, only when hooked, hook_pattern [batch head qpos kpos]
  (the equivalent attention matrix, Y = A V) and hook_fast_weight [batch head pos d_head d_phi] (every W_t).
  With hook_fast_weight hooked the output is read off the (hooked) fast weights, y_t = W_t phi(q_t) / den_t; else with
  hook_pattern hooked it is A V; else the chunked form runs. Edits to those hooks change this call's output, not
  the recurrent state carried in `cache`.
- TransformerLens' per-head inputs (`use_split_qkv_input`, `use_attn_in`): as for softmax attention
  (`probe.nn.attention`); the delta rule's beta reads each head's key input.
- `cache` (generation): cache["state"] holds the fp32 recurrent state (constant size per token), cache["pos"] the
  number of tokens seen. A one-token step runs the recurrent form.

Dimensions: b batch, p pos, h head, e d_head, f d_phi, d d_model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import einsum, rearrange
from jaxtyping import Bool, Float
from torch import Tensor, nn

from probe.hooked import HookPoint, is_hooked
from probe.nn.attention import HeadProjections
from probe.ops.delta_rule import delta_rule, delta_rule_fast_weights, delta_rule_pattern
from probe.ops.feature_maps import apply_feature_map, feature_dim, orthogonal_random_features, sum_normalize
from probe.ops.linear_attention import (
    SumState,
    causal_linear_attention,
    linear_attention,
    linear_attention_pattern,
    sum_rule_fast_weights,
)


class LinearAttention(HeadProjections):
    chunk_size = 64

    def __init__(self, cfg, causal: bool, cross: bool = False, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator)
        if cross:
            raise ValueError("LinearAttention supports self-attention only (cross=True); use attention='softmax'")
        self.rule, self.feature_map, self.causal = cfg.update_rule, cfg.feature_map, causal
        if self.rule == "delta" and not causal:
            raise ValueError("update_rule='delta' is a causal recurrence: LinearAttention needs causal=True for it")
        h, d, e = cfg.n_heads, cfg.d_model, cfg.d_head
        self.nu = cfg.dpfp_nu
        self.d_phi = feature_dim(cfg.feature_map, e, nu=cfg.dpfp_nu, m=cfg.favor_features)
        self.normalize = self.rule == "sum" and cfg.feature_map != "identity"
        if self.rule == "delta":
            self.W_beta = nn.Parameter(torch.randn(d, h, generator=generator) * cfg.init_range)
            self.b_beta = nn.Parameter(torch.zeros(h))
        self.qk_scale = e**-0.25 if cfg.feature_map == "favor_plus" and cfg.use_attn_scale else 1.0
        projection = None
        if cfg.feature_map == "favor_plus":  # fixed random features, saved with the weights
            gen = torch.Generator().manual_seed(int(torch.randint(2**31 - 1, (), generator=generator)))
            projection = orthogonal_random_features(cfg.favor_features, e, gen)
        self.register_buffer("projection", projection)
        self.hook_phi_q = HookPoint()  # [batch pos head d_phi]
        self.hook_phi_k = HookPoint()
        if self.rule == "delta":
            self.hook_beta = HookPoint()  # [batch pos head]
        self.hook_pattern = HookPoint()  # [batch head query_pos key_pos], only when hooked
        self.hook_fast_weight = HookPoint()  # [batch head pos d_head d_phi], only when hooked
        self.hook_z = HookPoint()  # [batch pos head d_head]
        self.hook_result = HookPoint()  # [batch pos head d_model], only when hooked
        self.add_input_hooks()

    def features(self, x: Float[Tensor, "batch pos head d_head"]) -> Float[Tensor, "batch pos head d_phi"]:
        phi = apply_feature_map(self.feature_map, x * self.qk_scale, nu=self.nu, projection=self.projection)
        if self.rule == "delta":
            phi = F.normalize(phi, dim=-1) if self.feature_map == "identity" else sum_normalize(phi)
        return phi

    def forward(
        self,
        x: Float[Tensor, "batch pos d_model"] | None,
        kv: Float[Tensor, "batch kpos d_model"] | None = None,
        key_padding_mask: Bool[Tensor, "batch kpos"] | None = None,
        cache: dict | None = None,
        heads: tuple[Tensor, Tensor, Tensor] | None = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        """`x` [batch pos d_model], or `heads` (x=None): per-head inputs (q_in, k_in, v_in)."""
        if kv is not None:
            raise ValueError("LinearAttention is self-attention only: kv must be None")
        q, k, v = self.project(x, "qkv") if heads is None else self.project_heads(*heads)
        L = q.shape[1]
        key_mask = key_padding_mask[:, -L:] if key_padding_mask is not None else None  # a cache holds the rest
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        phi_q, phi_k = self.hook_phi_q(self.features(q)), self.hook_phi_k(self.features(k))
        beta = self.hook_beta(torch.sigmoid(self.beta_logits(x, heads))) if self.rule == "delta" else None
        phi_q, phi_k, v = (rearrange(t, "b p h e -> b h p e") for t in (phi_q, phi_k, v))
        beta = rearrange(beta, "b p h -> b h p") if beta is not None else None
        state = cache.get("state") if cache is not None else None

        if not self.causal:
            z = linear_attention(phi_q, phi_k, v, normalize=self.normalize, key_mask=key_mask)
            if is_hooked(self.hook_pattern):
                a = linear_attention_pattern(phi_q, phi_k, causal=False, normalize=self.normalize, key_mask=key_mask)
                z = (self.hook_pattern(a) @ v.to(a.dtype)).to(v.dtype)
        else:
            form = "recurrent" if L == 1 else "chunked"
            kwargs = dict(form=form, chunk_size=self.chunk_size, key_mask=key_mask, initial_state=state)
            kwargs["return_state"] = True
            if self.rule == "sum":
                z, new_state = causal_linear_attention(phi_q, phi_k, v, normalize=self.normalize, **kwargs)
            else:
                z, new_state = delta_rule(phi_q, phi_k, v, beta, **kwargs)
            if is_hooked(self.hook_pattern):
                z = self.pattern_output(phi_q, phi_k, v, beta, key_mask, state).to(v.dtype)
            if is_hooked(self.hook_fast_weight):
                z = self.fast_weight_output(phi_q, phi_k, v, beta, key_mask, state).to(v.dtype)
            if cache is not None:
                cache["state"], cache["pos"] = new_state, cache.get("pos", 0) + L
        z = self.hook_z(rearrange(z, "b h p e -> b p h e"))
        if is_hooked(self.hook_result):
            return self.hook_result(einsum(z, self.W_O, "b p h e, h e d -> b p h d")).sum(2) + self.b_O
        return rearrange(z, "b p h e -> b p (h e)") @ rearrange(self.W_O, "h e d -> (h e) d") + self.b_O

    def beta_logits(self, x: Tensor | None, heads: tuple | None) -> Float[Tensor, "batch pos head"]:
        """x . W_beta + b_beta; with per-head inputs each head's write strength reads its own key input."""
        if heads is None:
            return x @ self.W_beta + self.b_beta
        return einsum(heads[1], self.W_beta, "b p h d, d h -> b p h") + self.b_beta

    def pattern_output(self, q: Tensor, k: Tensor, v: Tensor, beta, key_mask, state) -> Tensor:
        """Y = A V (+ the contribution of an initial state), A the hooked equivalent attention matrix."""
        acc = torch.promote_types(v.dtype, torch.float32)
        q, k, v = q.to(acc), k.to(acc) * (1 if key_mask is None else key_mask[:, None, :, None]), v.to(acc)
        if self.rule == "delta":
            pattern = self.hook_pattern(delta_rule_pattern(q, k, beta, key_mask=key_mask))
            out = pattern @ v
            if state is not None:  # Y = A V + (Q - A K) S_0^T
                out = out + einsum(q - pattern @ k, state.to(acc), "b h p f, b h e f -> b h p e")
            return out
        a = (q @ k.transpose(-1, -2)).tril()
        den = a.sum(-1, keepdim=True)
        if state is not None:
            den = den + einsum(q, state.z.to(acc), "b h p f, b h f -> b h p")[..., None]
        den = den + 1e-6 if self.normalize else torch.ones_like(den)
        pattern = self.hook_pattern(a / den)
        out = pattern @ v
        return out if state is None else out + einsum(q, state.W.to(acc), "b h p f, b h e f -> b h p e") / den

    def fast_weight_output(self, q: Tensor, k: Tensor, v: Tensor, beta, key_mask, state) -> Tensor:
        """y_t = W_t phi(q_t) / den_t, read off every (hooked) fast weight matrix W_t."""
        acc = torch.promote_types(v.dtype, torch.float32)
        q, k, v = q.to(acc), k.to(acc) * (1 if key_mask is None else key_mask[:, None, :, None]), v.to(acc)
        if self.rule == "delta":
            beta = beta.to(acc) * (1 if key_mask is None else key_mask[:, None, :])
            W = self.hook_fast_weight(delta_rule_fast_weights(k, v, beta, initial_state=state))
            return einsum(W, q, "b h p e f, b h p f -> b h p e")
        W = self.hook_fast_weight(sum_rule_fast_weights(k, v, initial_state=state))
        out = einsum(W, q, "b h p e f, b h p f -> b h p e")
        if not self.normalize:
            return out
        z = torch.cumsum(k, 2) + (0 if state is None else state.z.to(acc)[:, :, None])
        return out / (einsum(z, q, "b h p f, b h p f -> b h p") + 1e-6)[..., None]


__all__ = ["LinearAttention", "SumState"]
