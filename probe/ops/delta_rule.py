"""The delta rule fast weight programmer: recurrent (naive reference) and chunkwise-parallel (WY) forms.

Schlag, Irie, Schmidhuber 2021, section 4.2; chunked form after Yang et al. 2024 ("Parallelizing Linear
Transformers with the Delta Rule over Sequence Length"). On feature-mapped (and normalised) phi(q), phi(k):

    vbar_t = W_{t-1} phi(k_t),  W_t = W_{t-1} + beta_t (v_t - vbar_t) phi(k_t)^T,  y_t = W_t phi(q_t)

Chunked (chunk C, state S = W before the chunk):
    T = (I + tril(diag(beta) K K^T, -1))^-1 diag(beta);  W = T K;  U = T V
    U~ = U - W S^T;  O = Q S^T + tril(Q K^T) U~;  S <- S + U~^T K         cost O(L C d + L d^2)

The recurrence is stable when ||phi(k)||^2 <= 2 (sum-normalised non-negative features: ||phi'||^2 <= 1).
With zero initial state the whole map V -> Y is linear: Y = A V with A = tril(Q K^T) T over the full sequence
(`delta_rule_pattern`), the "attention matrix" of the delta rule.

Dimensions: b batch, h head, i/j/t position, d feature (d_phi), e value (d_v), n chunk, c in-chunk position.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from probe.ops.linear_attention import acc_dtype, check_chunk_size, check_qkv, mask_keys, pad_to_chunks

FORMS = ("recurrent", "chunked")


def check_beta(beta: Tensor, k: Tensor) -> None:
    if beta.shape != k.shape[:3]:
        raise ValueError(f"beta {tuple(beta.shape)} must be [batch, head, pos] = {tuple(k.shape[:3])}")


def delta_rule(
    q: Float[Tensor, "batch head pos d_phi"],
    k: Float[Tensor, "batch head pos d_phi"],
    v: Float[Tensor, "batch head pos d_v"],
    beta: Float[Tensor, "batch head pos"],
    *,
    form: str = "recurrent",
    chunk_size: int = 64,
    key_mask: Bool[Tensor, "batch pos"] | None = None,
    initial_state: Float[Tensor, "batch head d_v d_phi"] | None = None,
    return_state: bool = False,
) -> Float[Tensor, "batch head pos d_v"] | tuple[Float[Tensor, "batch head pos d_v"], Tensor]:
    """Delta-rule outputs y_t = W_t phi(q_t); padded positions (key_mask False) write nothing."""
    if form not in FORMS:
        raise ValueError(f"form={form!r} is not one of {FORMS}")
    check_qkv(q, k, v, key_mask)
    check_beta(beta, k)
    check_chunk_size(chunk_size)
    dtype = v.dtype
    with torch.autocast(device_type=q.device.type, enabled=False):
        acc = acc_dtype(v)
        q, k, v = q.to(acc), mask_keys(k.to(acc), key_mask), v.to(acc)
        beta = beta.to(acc) if key_mask is None else beta.to(acc) * key_mask[:, None, :].to(acc)
        b, h, _, d = k.shape
        S = k.new_zeros(b, h, v.shape[-1], d) if initial_state is None else initial_state.to(acc)
        fn = _recurrent if form == "recurrent" else _chunked
        out, S = fn(q, k, v, beta, S, chunk_size)
    out = out.to(dtype)
    return (out, S) if return_state else out


def _recurrent(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, W: Tensor, _chunk: int) -> tuple[Tensor, Tensor]:
    outs = []
    for t in range(q.shape[2]):
        vbar = torch.einsum("bhed,bhd->bhe", W, k[:, :, t])  # what W currently retrieves for k_t
        W = W + torch.einsum("bhe,bhd->bhed", beta[:, :, t, None] * (v[:, :, t] - vbar), k[:, :, t])
        outs.append(torch.einsum("bhed,bhd->bhe", W, q[:, :, t]))
    return torch.stack(outs, 2), W


def wy_transform(k: Float[Tensor, "*batch c d"], beta: Float[Tensor, "*batch c"]) -> Float[Tensor, "*batch c c"]:
    """T = (I + tril(diag(beta) K K^T, -1))^-1 diag(beta), by a triangular solve."""
    c = k.shape[-2]
    eye = torch.eye(c, dtype=k.dtype, device=k.device)
    lower = (beta.unsqueeze(-1) * (k @ k.transpose(-1, -2))).tril(-1)
    return torch.linalg.solve_triangular(eye + lower, torch.diag_embed(beta), upper=False)


def _chunked(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, S: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    L = q.shape[2]
    qc, kc, vc = (pad_to_chunks(x, chunk) for x in (q, k, v))
    bc = pad_to_chunks(beta.unsqueeze(-1), chunk).squeeze(-1)
    T = wy_transform(kc, bc)
    W, U = T @ kc, T @ vc  # all chunks at once; only the state passing below is sequential
    a = (qc @ kc.transpose(-1, -2)).tril()
    outs = []
    for n in range(qc.shape[2]):
        u = U[:, :, n] - torch.einsum("bhcd,bhed->bhce", W[:, :, n], S)
        outs.append(torch.einsum("bhcd,bhed->bhce", qc[:, :, n], S) + a[:, :, n] @ u)
        S = S + torch.einsum("bhce,bhcd->bhed", u, kc[:, :, n])
    return torch.cat(outs, 2)[:, :, :L], S


def delta_rule_pattern(
    q: Float[Tensor, "batch head pos d_phi"],
    k: Float[Tensor, "batch head pos d_phi"],
    beta: Float[Tensor, "batch head pos"],
    *,
    key_mask: Bool[Tensor, "batch pos"] | None = None,
) -> Float[Tensor, "batch head pos pos"]:
    """A with Y = A V for the delta rule from a zero state: A = tril(Q K^T) T (an O(L^3) solve; inspection only)."""
    with torch.autocast(device_type=q.device.type, enabled=False):
        acc = acc_dtype(q)
        q, k = q.to(acc), mask_keys(k.to(acc), key_mask)
        beta = beta.to(acc) if key_mask is None else beta.to(acc) * key_mask[:, None, :].to(acc)
        return (q @ k.transpose(-1, -2)).tril() @ wy_transform(k, beta)


def delta_rule_fast_weights(
    k: Float[Tensor, "batch head pos d_phi"],
    v: Float[Tensor, "batch head pos d_v"],
    beta: Float[Tensor, "batch head pos"],
    initial_state: Float[Tensor, "batch head d_v d_phi"] | None = None,
) -> Float[Tensor, "batch head pos d_v d_phi"]:
    """Every W_t of the delta rule, materialised by the recurrence (inspection only)."""
    with torch.autocast(device_type=k.device.type, enabled=False):
        acc = acc_dtype(v)
        k, v, beta = k.to(acc), v.to(acc), beta.to(acc)
        b, h, _, d = k.shape
        W = k.new_zeros(b, h, v.shape[-1], d) if initial_state is None else initial_state.to(acc)
        Ws = []
        for t in range(k.shape[2]):
            vbar = torch.einsum("bhed,bhd->bhe", W, k[:, :, t])
            W = W + torch.einsum("bhe,bhd->bhed", beta[:, :, t, None] * (v[:, :, t] - vbar), k[:, :, t])
            Ws.append(W)
        return torch.stack(Ws, 2)
