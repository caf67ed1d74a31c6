"""Causal linear attention (the sum / Hebbian fast-weight rule) in three equivalent forms.

Katharopoulos et al. 2020; Schlag, Irie, Schmidhuber 2021 ("Linear Transformers Are Secretly Fast Weight
Programmers"). On feature-mapped queries and keys phi(q), phi(k):

    W_t = W_{t-1} + v_t phi(k_t)^T,  z_t = z_{t-1} + phi(k_t),  y_t = W_t phi(q_t) / (z_t . phi(q_t) + eps)

- "recurrent": the definition, keeping the fast weight matrix W_t explicitly (the naive reference);
- "parallel":  Y = tril(Q K^T) V, row-normalised by tril(Q K^T) 1 (O(L^2 d));
- "chunked":   O_n = Q_n S_n + tril(Q_n K_n^T) V_n, S_{n+1} = S_n + K_n^T V_n (O(L C d + L d^2), memory linear in L).

States accumulate in fp32 (the op runs with autocast disabled and casts its output back to the dtype of v); padded
keys (key_mask False) are zeroed, so they enter neither W nor the denominator z.

Dimensions: b batch, h head, i/j query/key position, d feature (d_phi), e value (d_v), n chunk, c in-chunk position.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from einops import rearrange
from jaxtyping import Bool, Float
from torch import Tensor
from torch.nn import functional as F

FORMS = ("parallel", "recurrent", "chunked")


class SumState(NamedTuple):
    """Recurrent state of the sum rule: fast weights W [b h e d] and key sum z [b h d], both fp32."""

    W: Float[Tensor, "batch head d_v d_phi"]
    z: Float[Tensor, "batch head d_phi"]


def check_qkv(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None) -> None:
    if q.ndim != 4 or k.shape != q.shape[:2] + k.shape[2:3] + q.shape[3:]:
        raise ValueError(f"q {tuple(q.shape)} and k {tuple(k.shape)} must be [batch, head, pos, d_phi] alike")
    if v.ndim != 4 or v.shape[:3] != k.shape[:3]:
        raise ValueError(f"v {tuple(v.shape)} must be [batch, head, pos, d_v] with k's {tuple(k.shape[:3])}")
    if q.shape[2] != k.shape[2]:
        raise ValueError(f"q has {q.shape[2]} positions, k has {k.shape[2]}: causal attention needs them equal")
    if key_mask is not None and key_mask.shape != (k.shape[0], k.shape[2]):
        raise ValueError(f"key_mask {tuple(key_mask.shape)} must be [batch, pos] = {(k.shape[0], k.shape[2])}")


def check_chunk_size(chunk_size: int) -> None:
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r} must be an integer >= 1")


def acc_dtype(x: Tensor) -> torch.dtype:
    """The dtype states accumulate in: fp32, or fp64 for fp64 inputs."""
    return torch.promote_types(x.dtype, torch.float32)


def mask_keys(k: Tensor, key_mask: Tensor | None) -> Tensor:
    return k if key_mask is None else k * key_mask[:, None, :, None].to(k.dtype)


def zero_state(k: Tensor, v: Tensor) -> SumState:
    b, h, _, d = k.shape
    return SumState(k.new_zeros(b, h, v.shape[-1], d), k.new_zeros(b, h, d))


def causal_linear_attention(
    q: Float[Tensor, "batch head pos d_phi"],
    k: Float[Tensor, "batch head pos d_phi"],
    v: Float[Tensor, "batch head pos d_v"],
    *,
    form: str = "parallel",
    normalize: bool = True,
    chunk_size: int = 64,
    eps: float = 1e-6,
    key_mask: Bool[Tensor, "batch pos"] | None = None,
    initial_state: SumState | None = None,
    return_state: bool = False,
) -> Float[Tensor, "batch head pos d_v"] | tuple[Float[Tensor, "batch head pos d_v"], SumState]:
    """Causal linear attention on feature-mapped q, k; `initial_state` continues a stream (see module doc)."""
    if form not in FORMS:
        raise ValueError(f"form={form!r} is not one of {FORMS}")
    check_qkv(q, k, v, key_mask)
    check_chunk_size(chunk_size)
    dtype = v.dtype
    with torch.autocast(device_type=q.device.type, enabled=False):
        acc = acc_dtype(v)
        q, k, v = q.to(acc), mask_keys(k.to(acc), key_mask), v.to(acc)
        state = zero_state(k, v) if initial_state is None else SumState(*(s.to(acc) for s in initial_state))
        fn = {"parallel": _parallel, "recurrent": _recurrent, "chunked": _chunked}[form]
        num, den, new_state = fn(q, k, v, state, chunk_size)
        out = num / (den + eps).unsqueeze(-1) if normalize else num
    out = out.to(dtype)
    return (out, new_state) if return_state else out


def _final_state(k: Tensor, v: Tensor, state: SumState) -> SumState:
    return SumState(state.W + torch.einsum("bhje,bhjd->bhed", v, k), state.z + k.sum(2))


def _parallel(q: Tensor, k: Tensor, v: Tensor, state: SumState, _chunk: int) -> tuple[Tensor, Tensor, SumState]:
    a = torch.einsum("bhid,bhjd->bhij", q, k).tril()
    num = a @ v + torch.einsum("bhid,bhed->bhie", q, state.W)
    den = a.sum(-1) + torch.einsum("bhid,bhd->bhi", q, state.z)
    return num, den, _final_state(k, v, state)


def _recurrent(q: Tensor, k: Tensor, v: Tensor, state: SumState, _chunk: int) -> tuple[Tensor, Tensor, SumState]:
    W, z = state
    nums, dens = [], []
    for t in range(q.shape[2]):
        W = W + torch.einsum("bhe,bhd->bhed", v[:, :, t], k[:, :, t])  # W_t = W_{t-1} + v_t phi(k_t)^T
        z = z + k[:, :, t]
        nums.append(torch.einsum("bhed,bhd->bhe", W, q[:, :, t]))
        dens.append(torch.einsum("bhd,bhd->bh", z, q[:, :, t]))
    return torch.stack(nums, 2), torch.stack(dens, 2), SumState(W, z)


def pad_to_chunks(x: Tensor, chunk_size: int) -> Tensor:
    """Zero-pad the position dim (2) to a multiple of chunk_size and split it: [b h n c ...]."""
    pad = -x.shape[2] % chunk_size
    x = F.pad(x, (0, 0) * (x.ndim - 3) + (0, pad))
    return x.unflatten(2, (-1, chunk_size))


def exclusive_cumsum(x: Tensor, dim: int) -> Tensor:
    """sum_{m < n} x_m along dim (chunk n sees the states of the chunks before it)."""
    before = torch.cumsum(x, dim).narrow(dim, 0, x.shape[dim] - 1)
    return torch.cat([torch.zeros_like(x.narrow(dim, 0, 1)), before], dim)


def _chunked(q: Tensor, k: Tensor, v: Tensor, state: SumState, chunk: int) -> tuple[Tensor, Tensor, SumState]:
    L = q.shape[2]
    qc, kc, vc = (pad_to_chunks(x, chunk) for x in (q, k, v))
    kv = torch.einsum("bhncd,bhnce->bhned", kc, vc)  # K_n^T V_n per chunk
    S = exclusive_cumsum(kv, 2) + state.W.unsqueeze(2)  # S_n: fast weights before chunk n
    z = exclusive_cumsum(kc.sum(3), 2) + state.z.unsqueeze(2)
    a = torch.einsum("bhnid,bhnjd->bhnij", qc, kc).tril()
    num = a @ vc + torch.einsum("bhncd,bhned->bhnce", qc, S)
    den = a.sum(-1) + torch.einsum("bhncd,bhnd->bhnc", qc, z)
    num, den = rearrange(num, "b h n c e -> b h (n c) e")[:, :, :L], rearrange(den, "b h n c -> b h (n c)")[:, :, :L]
    return num, den, SumState(S[:, :, -1] + kv[:, :, -1], z[:, :, -1] + kc[:, :, -1].sum(2))


def linear_attention(
    q: Float[Tensor, "batch head qpos d_phi"],
    k: Float[Tensor, "batch head kpos d_phi"],
    v: Float[Tensor, "batch head kpos d_v"],
    *,
    normalize: bool = True,
    eps: float = 1e-6,
    key_mask: Bool[Tensor, "batch kpos"] | None = None,
) -> Float[Tensor, "batch head qpos d_v"]:
    """Non-causal (bidirectional) linear attention: Y = Q (K^T V) / (Q . sum_j K_j)."""
    with torch.autocast(device_type=q.device.type, enabled=False):
        acc = acc_dtype(v)
        q, k, v32 = q.to(acc), mask_keys(k.to(acc), key_mask), v.to(acc)
        num = torch.einsum("bhid,bhjd,bhje->bhie", q, k, v32)
        out = num / (torch.einsum("bhid,bhd->bhi", q, k.sum(2)) + eps).unsqueeze(-1) if normalize else num
    return out.to(v.dtype)


def linear_attention_pattern(
    q: Float[Tensor, "batch head qpos d_phi"],
    k: Float[Tensor, "batch head kpos d_phi"],
    *,
    causal: bool = True,
    normalize: bool = True,
    eps: float = 1e-6,
    key_mask: Bool[Tensor, "batch kpos"] | None = None,
) -> Float[Tensor, "batch head qpos kpos"]:
    """The attention matrix A with Y = A V that the sum rule computes (rows sum to ~1 when normalised)."""
    with torch.autocast(device_type=q.device.type, enabled=False):
        acc = acc_dtype(q)
        a = torch.einsum("bhid,bhjd->bhij", q.to(acc), mask_keys(k.to(acc), key_mask))
        a = a.tril() if causal else a
        return a / (a.sum(-1, keepdim=True) + eps) if normalize else a


def sum_rule_fast_weights(
    k: Float[Tensor, "batch head pos d_phi"],
    v: Float[Tensor, "batch head pos d_v"],
    initial_state: SumState | None = None,
) -> Float[Tensor, "batch head pos d_v d_phi"]:
    """Every W_t = W_0 + sum_{s <= t} v_s phi(k_s)^T, materialised (O(L d_v d_phi) memory: for inspection only)."""
    with torch.autocast(device_type=k.device.type, enabled=False):
        acc = acc_dtype(v)
        W = torch.cumsum(torch.einsum("bhte,bhtd->bhted", v.to(acc), k.to(acc)), dim=2)
        return W if initial_state is None else W + initial_state.W.to(acc).unsqueeze(2)
