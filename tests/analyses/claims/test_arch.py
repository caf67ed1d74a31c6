"""The architecture claims' shared tasks and measurements, against hand-computed cases."""

import math

import pytest
import torch

from analyses.claims import _arch
from probe import Transformer, TransformerConfig


def test_text_windows_label_the_next_character_and_pad_on_the_right():
    data = _arch.text_windows(64, 4, 12, seed=0)
    ids, _ = _arch.corpus()
    t = data.tensors
    lengths = t["attention_mask"].sum(1)
    assert t["tokens"].shape == (64, 12) and lengths.min() >= 4 and lengths.max() <= 12
    for i in range(5):
        n = int(lengths[i])
        assert (t["tokens"][i, n:] == _arch.PAD).all() and (t["labels"][i, n:] == -100).all()
        assert torch.equal(t["labels"][i, : n - 1], t["tokens"][i, 1:n])
        window = t["tokens"][i, :n]  # the window occurs in the corpus, followed by its last label
        hits = (ids.unfold(0, n, 1) == window).all(1).nonzero()
        assert any(ids[h + n] == t["labels"][i, n - 1] for h in hits.flatten().tolist())
    with pytest.raises(ValueError, match="split"):
        _arch.text_windows(4, 4, 8, 0, "test")


def test_synthetic_tasks_label_what_they_say():
    d = _arch.two_tokens(200, 5, 9, seed=1).tensors
    assert (d["labels"][:, :2] == -100).all()
    seen = {}
    for x, y in zip(d["tokens"], d["labels"]):
        for t in range(2, 9):  # one function of (first token, previous token)
            assert seen.setdefault((int(x[0]), int(x[t - 1])), int(y[t])) == int(y[t])
    assert len(set(seen.values())) > 1
    p = _arch.previous_token(3, 7, 6, seed=0).tensors
    assert torch.equal(p["labels"][:, 1:], p["tokens"][:, :-1]) and (p["labels"][:, 0] == -100).all()
    r = _arch.reverse_lm(2, 5, 3, seed=0).tensors
    x = r["tokens"][0, :3]
    assert r["tokens"][0].tolist() == [*x.tolist(), 0, *x.flip(0).tolist()]
    assert r["labels"][0].tolist() == [-100, -100, -100, *x.flip(0).tolist(), -100]


def test_log_growth_recovers_a_geometric_factor():
    assert _arch.log_growth([0.2 * 3.0 ** (i / 5) for i in range(6)]) == pytest.approx(3.0)
    assert _arch.log_growth([1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert _arch.log_growth([4.0, 2.0, 1.0]) == pytest.approx(0.25)


def test_entropy_of_uniform_and_one_hot_patterns():
    uniform = torch.full((1, 1, 1, 4), 0.25)
    one_hot = torch.tensor([[[[0.0, 1.0, 0.0, 0.0]]]])
    assert _arch.entropy(uniform).item() == pytest.approx(math.log(4))
    assert _arch.entropy(one_hot).item() == 0.0


def test_block_grad_norms_match_the_parameters_gradients():
    model = Transformer(TransformerConfig(n_layers=3, d_model=16, n_heads=2, d_vocab=10, n_ctx=8, seed=0))
    batch = {"tokens": torch.randint(0, 10, (4, 8))}
    norms = _arch.block_grad_norms(model, batch, ("mlp.W_in", "mlp.W_out"))
    model(**batch, return_type="loss").backward()
    for block, norm in zip(model.blocks, norms):
        by_hand = torch.cat([block.mlp.W_in.grad.flatten(), block.mlp.W_out.grad.flatten()]).norm()
        assert norm == pytest.approx(float(by_hand), rel=1e-5)


def test_first_step_below_counts_a_run_that_never_gets_there_at_its_budget():
    losses = [(10, 2.0), (20, 1.2), (30, 0.9), (40, 0.5)]
    assert _arch.first_step_below(losses, 1.0, 100) == 30
    assert _arch.first_step_below(losses, 0.1, 100) == 100


def test_accuracy_and_cross_entropy_ignore_unscored_positions():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [5.0, 0.0]]])
    labels = torch.tensor([[0, 0, -100]])
    assert _arch.accuracy(logits, labels) == 0.5
    expected = (-torch.log_softmax(logits[0, 0], -1)[0] - torch.log_softmax(logits[0, 1], -1)[0]) / 2
    assert _arch.cross_entropy(logits, labels) == pytest.approx(float(expected))


def test_step_times_returns_one_positive_median_per_model():
    models = [Transformer(TransformerConfig(n_layers=n, d_model=8, n_heads=2, d_vocab=5, n_ctx=4)) for n in (1, 2)]
    times = _arch.step_times(models, {"tokens": torch.randint(0, 5, (2, 4))}, repeats=3, warmup=1)
    assert len(times) == 2 and all(t > 0 for t in times)
    assert all(p.grad is None for m in models for p in m.parameters())
