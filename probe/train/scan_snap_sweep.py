"""Batched Scan-and-Snap training: many runs (seeds x learning rates x data settings) as one tensor program.

This is training, not an op: it lives beside the Trainer, as the one documented exception to training through
`probe.Trainer` (hundreds of tiny runs cost less as one batched program than as hundreds of Trainer loops;
benchmarks/scan_snap_sweep.py measures the ratio).

Tian et al. 2023 (arXiv 2305.16380) train `Model2` (see `probe.models.scan_snap`) with SGD, momentum 0.9, no weight
decay, separate learning rates eta_Z and eta_Y. Here Z and Y of R runs are [R, M, M] tensors; the loss and its
gradients are written in closed form (`scan_snap_grads`) and every step updates all runs at once with per-run
learning rates. Runs are bucketed by vocabulary size M (one batched program per bucket: padding every run to the
largest M and masking would cost ~5x more on the Figure-6 grid); results are zero-padded to the largest M.

Randomness is per data stream, a (data setting, seed) pair: init from `torch.Generator().manual_seed(seed)` (as
`ScanSnapModel`), batches from `data_generator(seed)`. Runs that differ only in learning rates share their stream
(common random numbers), so a batched run equals the same run done alone: `train_one` is that naive reference
(the hooked model, autograd and torch.optim.SGD).

Dimension legend: R runs, S streams, B batch, L sequence length, T = L-1 context positions, M vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int
from torch import Tensor

from probe.data.scan_snap import ScanSnapData
from probe.models.scan_snap import ScanSnapModel, init_weights
from probe.models.scan_snap_config import ScanSnapConfig


def data_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """The generator a run's batches are drawn from (distinct from the init generator of the same seed)."""
    return torch.Generator(device=device).manual_seed(10_007 * seed + 1)


def scan_snap_grads(
    Z: Float[Tensor, "R M M"],
    Y: Float[Tensor, "R M M"],
    tokens: Int[Tensor, "R B L"],
    labels: Int[Tensor, "R B"],
    normalize: bool = True,
) -> tuple[Float[Tensor, " R"], Float[Tensor, "R M M"], Float[Tensor, "R M M"]]:
    """Per-run mean cross-entropy of Model2 and its gradients with respect to Z and Y, in closed form."""
    R, B, _ = tokens.shape
    M = Z.shape[-1]
    context, query = tokens[..., :-1], tokens[..., -1]
    z_rows = Z.gather(1, query[..., None].expand(R, B, M))  # [R, B, M]: Z[m, :]
    pattern = z_rows.gather(2, context).softmax(dim=-1)  # [R, B, T]
    bag = torch.zeros(R, B, M, dtype=Z.dtype, device=Z.device).scatter_add_(2, context, pattern)
    norm = bag.norm(dim=-1, keepdim=True) if normalize else torch.ones_like(bag[..., :1])
    c = bag / norm
    logits = torch.bmm(c, Y.transpose(1, 2))  # [R, B, M]
    logp = logits.log_softmax(dim=-1)
    loss = -logp.gather(2, labels[..., None]).squeeze(-1).mean(dim=1)
    g_logits = logp.exp().scatter_add_(2, labels[..., None], -torch.ones_like(logp[..., :1])) / B
    dY = torch.bmm(g_logits.transpose(1, 2), c)
    g_c = torch.bmm(g_logits, Y)
    g_bag = (g_c - c * (c * g_c).sum(dim=-1, keepdim=True)) / norm if normalize else g_c
    g_pattern = g_bag.gather(2, context)
    g_scores = pattern * (g_pattern - (pattern * g_pattern).sum(dim=-1, keepdim=True))
    flat = (query[..., None] * M + context).reshape(R, -1)
    dZ = torch.zeros(R, M * M, dtype=Z.dtype, device=Z.device).scatter_add_(1, flat, g_scores.reshape(R, -1))
    return loss, dZ.view(R, M, M), dY


@dataclass(frozen=True)
class RunSpec:
    cfg: ScanSnapConfig  # data setting, init and seed (cfg.seed is required)
    eta_z: float
    eta_y: float


@dataclass
class SweepResult:
    specs: list[RunSpec]
    Z: Tensor  # [R, M, M] final (padded to the largest M; run r uses [:M_r, :M_r])
    Y: Tensor
    loss: Tensor  # [iters, R]
    record_steps: list[int] = field(default_factory=list)
    Z_history: Tensor | None = None  # [len(record_steps), R, M, M]
    Y_history: Tensor | None = None

    def run_Z(self, r: int, step: int | None = None) -> Tensor:
        M = self.specs[r].cfg.d_vocab
        Z = self.Z if step is None else self.Z_history[self.record_steps.index(step)]
        return Z[r, :M, :M]


def _stream_key(cfg: ScanSnapConfig) -> tuple:
    return tuple(sorted(cfg.to_dict().items()))


def sweep(
    specs: list[RunSpec],
    iters: int,
    batch: int = 128,
    momentum: float = 0.9,
    record_every: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> SweepResult:
    """Train every run in `specs` for `iters` SGD steps: one batched program per vocabulary size."""
    if not specs:
        raise ValueError("specs is empty: give at least one RunSpec")
    for s in specs:
        if s.cfg.seed is None:
            raise ValueError(f"RunSpec cfg.seed is None for {s}; every run needs a seed")
        if s.eta_z < 0 or s.eta_y < 0:
            raise ValueError(f"learning rates must be >= 0, got eta_z={s.eta_z}, eta_y={s.eta_y}")
    if not isinstance(iters, int) or iters < 0:
        raise ValueError(f"iters={iters!r} must be an integer >= 0")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch={batch!r} must be a positive integer")
    device = torch.device(device)
    M = max(s.cfg.d_vocab for s in specs)
    R = len(specs)
    n_rec = len(range(0, iters, record_every)) + 1 if record_every else 0
    out = SweepResult(
        specs=list(specs),
        Z=torch.zeros(R, M, M, device=device),
        Y=torch.zeros(R, M, M, device=device),
        loss=torch.zeros(iters, R, device=device),
        record_steps=[*range(0, iters, record_every), iters] if record_every else [],
        Z_history=torch.zeros(n_rec, R, M, M, device=device) if record_every else None,
        Y_history=torch.zeros(n_rec, R, M, M, device=device) if record_every else None,
    )
    for m in sorted({s.cfg.d_vocab for s in specs}):
        idx = [r for r, s in enumerate(specs) if s.cfg.d_vocab == m]
        Z, Y, loss, zh, yh = _sweep_bucket(
            [specs[r] for r in idx], iters, batch, momentum, record_every, device, progress
        )
        idx_t = torch.tensor(idx, device=device)
        out.Z[idx_t, :m, :m], out.Y[idx_t, :m, :m], out.loss[:, idx_t] = Z, Y, loss
        if record_every:
            out.Z_history[:, idx_t, :m, :m], out.Y_history[:, idx_t, :m, :m] = zh, yh
    return out


def _sweep_bucket(
    specs: list[RunSpec],
    iters: int,
    batch: int,
    momentum: float,
    record_every: int | None,
    device: torch.device,
    progress: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:
    """One batched program over runs that share the vocabulary size M."""
    if len({s.cfg.seq_len for s in specs}) > 1 or len({s.cfg.normalize for s in specs}) > 1:
        raise ValueError("runs with the same vocabulary need the same seq_len and normalize to share a batch")
    keys = list(dict.fromkeys(_stream_key(s.cfg) for s in specs))
    stream_of = torch.tensor([keys.index(_stream_key(s.cfg)) for s in specs], device=device)
    stream_cfgs = [next(s.cfg for s in specs if _stream_key(s.cfg) == k) for k in keys]
    datas = [ScanSnapData(c, device) for c in stream_cfgs]
    gens = [data_generator(c.seed, device) for c in stream_cfgs]
    inits = [init_weights(c.d_vocab, c.init, torch.Generator().manual_seed(c.seed)) for c in stream_cfgs]
    Z = torch.stack([z for z, _ in inits]).to(device)[stream_of].clone()
    Y = torch.stack([y for _, y in inits]).to(device)[stream_of].clone()
    eta_z = torch.tensor([s.eta_z for s in specs], device=device)[:, None, None]
    eta_y = torch.tensor([s.eta_y for s in specs], device=device)[:, None, None]
    buf_z, buf_y = torch.zeros_like(Z), torch.zeros_like(Y)
    losses = torch.zeros(iters, len(specs), device=device)
    z_hist, y_hist = [], []
    loop = range(iters)
    if progress:
        from tqdm import tqdm

        loop = tqdm(loop, desc=f"scan_snap sweep ({len(specs)} runs, M={Z.shape[-1]})")
    for t in loop:
        if record_every and t % record_every == 0:
            z_hist.append(Z.clone())
            y_hist.append(Y.clone())
        sampled = [d.sample(batch, g) for d, g in zip(datas, gens)]
        tokens = torch.stack([x for x, _ in sampled])[stream_of]
        labels = torch.stack([y for _, y in sampled])[stream_of]
        losses[t], dZ, dY = scan_snap_grads(Z, Y, tokens, labels, specs[0].cfg.normalize)
        buf_z.mul_(momentum).add_(dZ)
        buf_y.mul_(momentum).add_(dY)
        Z -= eta_z * buf_z
        Y -= eta_y * buf_y
    if not record_every:
        return Z, Y, losses, None, None
    z_hist.append(Z.clone())
    y_hist.append(Y.clone())
    return Z, Y, losses, torch.stack(z_hist), torch.stack(y_hist)


def train_one(
    spec: RunSpec, iters: int, batch: int = 128, momentum: float = 0.9, device: str | torch.device = "cpu"
) -> tuple[ScanSnapModel, Tensor]:
    """Naive reference: one run with the hooked model, autograd and two torch.optim.SGD optimizers (as the authors)."""
    if spec.cfg.seed is None:
        raise ValueError(f"RunSpec cfg.seed is None for {spec}; every run needs a seed")
    model = ScanSnapModel(spec.cfg).to(device)
    data = ScanSnapData(spec.cfg, device)
    gen = data_generator(spec.cfg.seed, device)
    opt_y = torch.optim.SGD([model.Y], lr=spec.eta_y, momentum=momentum)
    opt_z = torch.optim.SGD([model.Z], lr=spec.eta_z, momentum=momentum)
    losses = torch.zeros(iters)
    for t in range(iters):
        opt_y.zero_grad()
        opt_z.zero_grad()
        tokens, labels = data.sample(batch, gen)
        loss = model(tokens, labels, return_type="loss")
        loss.backward()
        opt_y.step()
        opt_z.step()
        losses[t] = loss.detach()
    return model, losses
