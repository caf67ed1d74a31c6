import pytest
import torch

from probe.train.optim import LAMB, OPTIMIZERS, make_optimizer, param_groups
from probe.train.trainer import TrainConfig, Trainer
from tests.train.helpers import induction_data, tiny_decoder


def lamb_reference(w, g, lr, betas, eps, wd, steps):
    """LAMB written out per tensor in float64 (You et al. 2020, Alg. 2 with bias correction)."""
    w, m, v = w.double().clone(), torch.zeros_like(w, dtype=torch.float64), torch.zeros_like(w, dtype=torch.float64)
    for t in range(1, steps + 1):
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        r = (m / (1 - betas[0] ** t)) / ((v / (1 - betas[1] ** t)).sqrt() + eps) + wd * w
        trust = min(float(w.norm() / r.norm()), 10.0)
        w = w - lr * trust * r
    return w


def test_lamb_matches_reference():
    torch.manual_seed(0)
    w0, g = torch.randn(5, 7), torch.randn(5, 7).double()
    p = torch.nn.Parameter(w0.clone())
    opt = LAMB([p], lr=0.05, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.01)
    for _ in range(3):
        p.grad = g.float().clone()
        opt.step()
    ref = lamb_reference(w0, g, 0.05, (0.9, 0.99), 1e-6, 0.01, 3)
    torch.testing.assert_close(p.detach().double(), ref, rtol=1e-5, atol=1e-6)


def test_param_groups_by_pattern_and_errors():
    model = tiny_decoder()
    groups = param_groups(model, lr=1e-3, weight_decay=0.1, lr_groups={r"\.attn\.": 1e-2})
    by_name = {n: g for g in groups for n in g["names"]}
    assert by_name["blocks.0.attn.W_Q"]["lr"] == 1e-2 and by_name["blocks.0.mlp.W_in"]["lr"] == 1e-3
    assert by_name["blocks.0.attn.b_Q"]["weight_decay"] == 0.0 and by_name["blocks.0.attn.W_Q"]["weight_decay"] == 0.1
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="match no parameter"):
        param_groups(model, 1e-3, 0.0, {"nonexistent": 1.0})
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        make_optimizer("rmsprop", groups, 1e-3)


def test_groups_train_at_their_own_rates():
    """A group with lr 0 stays frozen while the rest moves."""
    model = tiny_decoder()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = TrainConfig(steps=3, batch_size=8, lr=1e-2, lr_groups={r"\.attn\.": 0.0}, progress=False,
                      weight_decay=0.0)
    Trainer(model, induction_data(), None, cfg).fit()
    for n, p in model.named_parameters():
        moved = (p.detach() - before[n]).abs().max().item()
        assert (moved == 0.0) if ".attn." in n else (moved > 1e-5), n


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_lowers_the_loss(name):
    model = tiny_decoder()
    lr = {"sgd": 0.3, "adafactor": 3e-2}.get(name, 1e-2)
    cfg = TrainConfig(steps=12, batch_size=16, lr=lr, optimizer=name, log_every=4, progress=False,
                      shuffle=False)
    losses = Trainer(model, induction_data(16), None, cfg).fit()
    losses = [r["loss"] for r in losses]
    assert losses[-1] < 0.8 * losses[0], (name, losses)
