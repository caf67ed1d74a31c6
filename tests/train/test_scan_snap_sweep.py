"""The batched Scan-and-Snap sweep (probe.train.scan_snap_sweep): closed-form gradients against autograd, and the
batched runs against the same runs one by one (Tian et al. 2023)."""

import pytest
import torch

from probe.data.scan_snap import ScanSnapData
from probe.models.scan_snap import ScanSnapModel
from probe.models.scan_snap_config import ScanSnapConfig
from probe.train.scan_snap_sweep import RunSpec, scan_snap_grads, sweep, train_one


@pytest.mark.parametrize("normalize", [True, False])
def test_closed_form_grads_match_autograd(normalize):
    cfgs = [ScanSnapConfig(num_last=2, num_next_per_last=3, seq_len=63, seed=s, normalize=normalize) for s in (1, 2, 3)]
    models = [ScanSnapModel(c) for c in cfgs]
    with torch.no_grad():  # move away from init so every term is non-trivial
        for m in models:
            m.Z.add_(torch.randn_like(m.Z))
            m.Y.add_(torch.randn_like(m.Y))
    gen = torch.Generator().manual_seed(0)
    batches = [ScanSnapData(c).sample(7, gen) for c in cfgs]
    tokens = torch.stack([b[0] for b in batches])
    labels = torch.stack([b[1] for b in batches])
    loss, dZ, dY = scan_snap_grads(
        torch.stack([m.Z.detach() for m in models]),
        torch.stack([m.Y.detach() for m in models]),
        tokens,
        labels,
        normalize,
    )
    for r, m in enumerate(models):
        ref = m(tokens[r], labels[r], return_type="loss")
        ref.backward()
        torch.testing.assert_close(loss[r], ref.detach())
        torch.testing.assert_close(dZ[r], m.Z.grad, atol=1e-6, rtol=1e-4)
        torch.testing.assert_close(dY[r], m.Y.grad, atol=1e-6, rtol=1e-4)


def test_quick_run_scans_distinct_up_common_down():
    cfgs = [ScanSnapConfig(num_last=2, num_next_per_last=1, init="zero", seed=s) for s in range(4)]
    res = sweep([RunSpec(c, 1.0, 1.0) for c in cfgs], iters=25, batch=128)
    data = ScanSnapData(cfgs[0])
    dz = res.Z[:, data.query]  # zero init: the change itself; [seed, class, M]
    dz_distinct = dz[:, torch.arange(data.num_classes)[:, None], data.distinct]  # ordered by increasing P(l|n)
    assert (dz_distinct[..., 5:] > 0).float().mean() >= 0.95  # the more likely half of the distinct tokens rise
    assert (dz_distinct > 0).float().mean() >= 0.7  # only the least likely ones may lose out (Theorem 3)
    assert (dz[:, data.mask("common")] < 0).float().mean() >= 0.95
    assert (res.loss[-5:].mean(0) < res.loss[:5].mean(0)).all()


def test_batched_sweep_equals_one_by_one():
    specs = [
        RunSpec(ScanSnapConfig(num_last=nl, seed=s, init=init, seq_len=17), ez, ez * r)
        for nl, s, init in ((1, 3, "zero"), (1, 4, "default"), (2, 3, "default"))
        for ez, r in ((0.5, 1.0), (2.0, 5.0))
    ]
    res = sweep(specs, iters=6, batch=8, record_every=3)
    assert res.record_steps == [0, 3, 6]
    for r, spec in enumerate(specs):
        model, losses = train_one(spec, iters=6, batch=8)
        torch.testing.assert_close(res.run_Z(r), model.Z.detach(), atol=1e-5, rtol=1e-4)
        M = spec.cfg.d_vocab
        torch.testing.assert_close(res.Y[r, :M, :M], model.Y.detach(), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(res.loss[:, r], losses, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(res.run_Z(r, step=6), model.Z.detach(), atol=1e-5, rtol=1e-4)
