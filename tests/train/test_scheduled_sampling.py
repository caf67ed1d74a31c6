"""probe.train.scheduled_sampling: the mixing rule, the schedules, the wrapper's two passes and its Trainer wiring."""

import math

import pytest
import torch

from probe.config import TransformerConfig
from probe.data import synthetic
from probe.models.transformer import Transformer
from probe.train import TrainConfig, Trainer
from probe.train.scheduled_sampling import (
    ScheduledSampling,
    inverse_sigmoid,
    linear,
    midpoint_k,
    mix_predictions,
)
from tests.train.helpers import tiny_decoder

TGT = torch.tensor([[1, 5, 6, 7, 0], [1, 8, 9, 0, 0]])  # bos, targets, pad
LABELS = torch.tensor([[5, 6, 7, 2, -100], [8, 9, 2, -100, -100]])  # targets, eos, unscored


def logits_predicting(tokens, vocab=12):
    """Logits whose argmax at position t is tokens[:, t]."""
    return torch.nn.functional.one_hot(tokens, vocab).float() * 10


def test_mix_with_probability_zero_and_one():
    predicted = torch.tensor([[3, 4, 3, 4, 3], [4, 3, 4, 3, 4]])  # the first pass's prediction at each position
    logits = logits_predicting(predicted)
    assert torch.equal(mix_predictions(TGT, logits, LABELS, 0.0), TGT)
    mixed = mix_predictions(TGT, logits, LABELS, 1.0)
    # position t >= 1 takes the prediction made at t - 1 where labels[t - 1] is scored; bos and the rest stay
    assert mixed.tolist() == [[1, 3, 4, 3, 4], [1, 4, 3, 4, 0]]


def test_mix_replaces_about_a_fraction_prob_and_sampling_a_sure_distribution_is_argmax():
    tgt = torch.ones(400, 9, dtype=torch.long)
    labels = torch.full((400, 9), 5)
    logits = logits_predicting(torch.full((400, 9), 7)) * 10
    g = torch.Generator().manual_seed(0)
    mixed = mix_predictions(tgt, logits, labels, 0.3, generator=g)
    assert abs((mixed[:, 1:] == 7).float().mean().item() - 0.3) < 0.03
    assert mixed[:, 0].eq(1).all()
    sampled = mix_predictions(tgt, logits, labels, 1.0, mode="sample", generator=g)
    assert torch.equal(sampled, mix_predictions(tgt, logits, labels, 1.0))


def test_mix_refuses_bad_arguments():
    logits = logits_predicting(TGT)
    with pytest.raises(ValueError, match="prob=1.5"):
        mix_predictions(TGT, logits, LABELS, 1.5)
    with pytest.raises(ValueError, match="mode='beam'"):
        mix_predictions(TGT, logits, LABELS, 0.5, mode="beam")


def test_schedules():
    f = linear(0.5, 10)
    assert [f(0), f(5), f(10), f(20)] == [0.0, 0.25, 0.5, 0.5]
    g = inverse_sigmoid(10.0)
    assert g(0) == pytest.approx(1 - 10 / 11)  # Bengio et al.: eps_0 = k / (k + 1)
    assert g(10**6) == pytest.approx(1.0)
    k = midpoint_k(400)
    assert k * math.log(k) == pytest.approx(400) and inverse_sigmoid(k)(400) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="k=0.5"):
        inverse_sigmoid(0.5)
    with pytest.raises(ValueError, match="max_prob"):
        linear(2.0, 10)


def tiny_seq2seq(seed=0):
    fields = synthetic.task_model_fields("reverse", n_symbols=6, max_len=5)
    return Transformer(TransformerConfig(d_model=16, n_layers=1, n_heads=2, d_mlp=32, seed=seed, **fields))


def data(n=64):
    return synthetic.seq2seq("reverse", n, n_symbols=6, min_len=3, max_len=5, seed=0)


def test_wrapper_refuses_a_decoder_and_a_missing_schedule_step():
    with pytest.raises(ValueError, match="encoder-decoder"):
        ScheduledSampling(tiny_decoder(), linear(0.5, 10))
    ss = ScheduledSampling(tiny_seq2seq(), linear(0.5, 10))
    with pytest.raises(RuntimeError, match="callbacks"):
        ss(**data()[:4])
    ss.on_step(None, 0)
    assert ss.prob == 0.0
    with pytest.raises(ValueError, match="schedule\\(3\\)"):
        ScheduledSampling(tiny_seq2seq(), lambda step: 2.0).on_step(None, 3)


def test_second_pass_reads_the_mixed_inputs_and_eval_is_teacher_forced():
    model = tiny_seq2seq()
    ss = ScheduledSampling(model, linear(1.0, 1))
    batch = data()[:8]
    ss.prob = 0.6
    torch.manual_seed(3)
    loss = ss(**batch)
    torch.manual_seed(3)
    with torch.no_grad():
        first = model(src=batch["src"], tgt=batch["tgt"], src_mask=batch["src_mask"], return_type="logits")
    mixed = mix_predictions(batch["tgt"], first, batch["labels"], 0.6)
    assert not torch.equal(mixed, batch["tgt"])
    expected = model(src=batch["src"], tgt=mixed, src_mask=batch["src_mask"], labels=batch["labels"],
                     return_type="loss")
    assert loss.item() == pytest.approx(expected.item())
    ss.eval()
    assert ss(**batch).item() == pytest.approx(model(**batch, return_type="loss").item())


def test_trains_through_the_trainer_with_the_schedule():
    ss = ScheduledSampling(tiny_seq2seq(), linear(0.5, 4))
    cfg = TrainConfig(steps=4, batch_size=16, lr=3e-3, log_every=1, progress=False)
    trainer = Trainer(ss, data(), data(32), cfg, callbacks=[ss])
    history = trainer.fit()
    assert ss.prob == 0.5  # the last on_step ran with step 4
    assert all(math.isfinite(r["loss"]) for r in history if "loss" in r)
    assert math.isfinite(trainer.evaluate())
