import json

import pytest
import torch

from probe.data import synthetic
from probe.train import Callback, EarlyStopping, NonFiniteLossError, TrainConfig, Trainer
from probe.train.trainer import select_device, smoothed_loss
from tests.train.helpers import induction_data, tiny_decoder


def run(tmp_path=None, steps=6, seed=0, dropout=0.1, **kw):
    model = tiny_decoder(dropout=dropout)
    cfg = TrainConfig(steps=steps, batch_size=8, lr=3e-3, log_every=1, progress=False, seed=seed,
                      out_dir=str(tmp_path) if tmp_path else None, **kw)
    trainer = Trainer(model, induction_data(), induction_data(16, seed=1), cfg)
    trainer.fit()
    return trainer


def test_deterministic_given_seed():
    a, b, c = run(seed=0, steps=3), run(seed=0, steps=3), run(seed=1, steps=3)
    assert a.losses() == b.losses()
    assert a.losses() != c.losses()


def test_resume_reproduces_uninterrupted_losses(tmp_path):
    kw = dict(steps=6, optimizer="adam", schedule="cosine", warmup_steps=2, grad_accum=2)
    full = run(tmp_path / "a", save_every=3, **kw)
    assert (tmp_path / "a" / "step-3" / "trainer_state.safetensors").is_file()
    model = tiny_decoder(seed=123, dropout=0.1)  # different init: everything must come from the checkpoint
    cfg = TrainConfig(batch_size=8, lr=3e-3, log_every=1, progress=False, **kw)
    resumed = Trainer(model, induction_data(), None, cfg, resume_from=tmp_path / "a" / "step-3")
    assert resumed.step == 3
    resumed.fit()
    assert resumed.losses() == full.losses()[3:]
    assert len(full.losses()) == 6


@pytest.mark.parametrize("optimizer", ["sgd", "adafactor", "lamb"])
def test_resume_restores_every_optimizer_state(tmp_path, optimizer):
    kw = dict(steps=4, batch_size=8, lr=1e-2, optimizer=optimizer, log_every=1, progress=False)
    full = Trainer(tiny_decoder(), induction_data(), None, TrainConfig(out_dir=str(tmp_path), save_every=2, **kw))
    full.fit()
    resumed = Trainer(tiny_decoder(seed=5), induction_data(), None, TrainConfig(**kw), resume_from=tmp_path / "step-2")
    resumed.fit()
    assert resumed.losses() == full.losses()[2:]


def test_jsonl_log_and_checkpoint_meta(tmp_path):
    trainer = run(tmp_path, steps=4, eval_every=2)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]
    assert [r["step"] for r in records if "eval_loss" in r] == [2, 4]
    assert all(r["tokens_per_s"] > 0 for r in records if "loss" in r)
    meta = json.loads((tmp_path / "meta.json").read_text())  # the run directory is the final checkpoint
    assert meta["step"] == 4 and meta["train_config"]["steps"] == 4
    assert meta["metrics"]["loss"] == trainer.last_loss and "eval_loss" in meta["metrics"]


def test_grad_accumulation_matches_full_batch():
    base = dict(steps=4, dropout=0.0, shuffle=False, optimizer="sgd")
    one, two = run(grad_accum=1, **base), run(grad_accum=4, **base)
    torch.testing.assert_close(torch.tensor(one.losses()), torch.tensor(two.losses()), rtol=1e-5, atol=1e-6)
    for p, q in zip(one.model.parameters(), two.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)


class Poison(Callback):
    """Sets the embedding to NaN at step `every`, so the next step's loss is NaN."""

    def __init__(self, every):
        self.every = every

    def on_step(self, trainer, step):
        if step == self.every:
            with torch.no_grad():
                trainer.model.embed.W_E.fill_(float("nan"))


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    model = tiny_decoder()
    cfg = TrainConfig(steps=20, batch_size=8, log_every=4, save_every=4, out_dir=str(tmp_path), progress=False)
    trainer = Trainer(model, induction_data(), None, cfg, callbacks=[Poison(6)])
    with pytest.raises(NonFiniteLossError, match=r"became nan at step 7.*step-4"):
        trainer.fit()
    assert (tmp_path / "step-4" / "model.safetensors").is_file()
    assert not (tmp_path / "step-8").exists() and not (tmp_path / "model.safetensors").exists()
    import probe

    good = probe.load(tmp_path / "step-4")
    assert all(torch.isfinite(p).all() for p in good.parameters())
    assert '"non_finite_loss"' in (tmp_path / "metrics.jsonl").read_text()


class Modes(Callback):
    every = 1

    def __init__(self):
        self.modes = []

    def on_step(self, trainer, step):
        self.modes.append(trainer.model.training)


def test_dropout_on_in_training_only():
    modes = Modes()
    model = tiny_decoder(dropout=0.5)
    trainer = Trainer(model, induction_data(), induction_data(16, 1),
                      TrainConfig(steps=3, batch_size=8, progress=False), callbacks=[modes])
    trainer.fit()
    assert modes.modes == [True] * 4
    assert trainer.evaluate() == trainer.evaluate()  # dropout off: evaluation is deterministic
    batch = induction_data(8)[:8]
    trainer.model.train()
    noisy = [trainer.model(**batch, return_type="loss").item() for _ in range(2)]
    assert noisy[0] != noisy[1]  # and on while training


def test_label_smoothing_matches_reference():
    model = tiny_decoder()
    batch = induction_data(4)[:4]
    logits = model(**batch, return_type="logits")
    for eps in (0.0, 0.2):
        ref = model(**batch, return_type="loss", label_smoothing=eps)
        torch.testing.assert_close(smoothed_loss(logits, batch, eps), ref)
    unlabeled = {"tokens": batch["tokens"]}
    torch.testing.assert_close(smoothed_loss(logits, unlabeled, 0.0), model(**unlabeled, return_type="loss"))
    # the trainer's training loss uses the smoothing, evaluation does not
    trainer = Trainer(model, induction_data(), None, TrainConfig(steps=1, label_smoothing=0.2, progress=False))
    model.train()
    torch.testing.assert_close(trainer.compute_loss(batch), model(**batch, return_type="loss", label_smoothing=0.2))


def test_dataloader_input():
    data = induction_data()
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=False)
    trainer = Trainer(tiny_decoder(), loader, None, TrainConfig(steps=10, log_every=5, progress=False))
    trainer.fit()  # 8 batches per pass: the stream cycles through the loader
    assert trainer.step == 10 and len(trainer.losses()) == 2


def test_trains_seq2seq_and_classifier():
    """The same loop drives an encoder-decoder and an encoder classifier: the loss falls."""
    from probe.config import TransformerConfig
    from probe.models.transformer import Transformer

    tasks = (("reverse", {"n_symbols": 5, "min_len": 3, "max_len": 5}), ("majority", {"n_classes": 2, "length": 7}))
    for task, kw in tasks:
        cfg = TransformerConfig(d_model=16, n_layers=1, n_heads=2, d_mlp=32, seed=0,
                                **synthetic.task_model_fields(task, **kw))
        trainer = Trainer(Transformer(cfg), synthetic.make_task(task, 256, **kw), None,
                          TrainConfig(steps=20, batch_size=16, lr=2e-2, log_every=10, progress=False))
        losses = [r["loss"] for r in trainer.fit()]
        assert losses[-1] < 0.8 * losses[0], (task, losses)


def test_resume_needs_a_training_checkpoint(tmp_path):
    model = tiny_decoder()
    model.save(tmp_path / "model_only")
    with pytest.raises(FileNotFoundError, match="not a training checkpoint"):
        Trainer(model, induction_data(), None, TrainConfig(), resume_from=tmp_path / "model_only")


def test_config_and_device_errors():
    assert select_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda")
    with pytest.raises(ValueError, match="optimizer='adamax'"):
        TrainConfig(optimizer="adamax")
    with pytest.raises(ValueError, match="batch_size=10 must be divisible by grad_accum=4"):
        TrainConfig(batch_size=10, grad_accum=4)
    with pytest.raises(ValueError, match="unknown fields"):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="fewer than batch_size"):
        Trainer(tiny_decoder(), induction_data(4), None, TrainConfig(batch_size=8))


def test_compile_wiring_gives_the_same_losses():
    """torch.compile (eager backend: tracing without a C compiler) wraps the model without changing the losses.
    A plain module: dynamo cannot trace through the jaxtyping/beartype checks pytest installs on probe's models."""
    from tests.train.test_distributed import PlainLM, data

    def losses(compile):
        cfg = TrainConfig(steps=3, batch_size=16, lr=0.05, log_every=1, progress=False, compile=compile)
        trainer = Trainer(PlainLM(), data(), None, cfg)
        trainer.fit()
        return trainer

    plain, compiled = losses(False), losses("eager")
    torch.testing.assert_close(torch.tensor(compiled.losses()), torch.tensor(plain.losses()))
    assert type(compiled.forward_model).__name__ == "OptimizedModule"


class StopAt(Callback):
    def __init__(self, at: int) -> None:
        self.at, self.ended = at, False

    def on_step(self, trainer, step):
        if step == self.at:
            trainer.request_stop("test")

    def on_end(self, trainer):
        self.ended = True


def test_a_callback_can_stop_training_early(tmp_path):
    stop = StopAt(3)
    cfg = TrainConfig(steps=10, batch_size=8, lr=3e-3, log_every=2, progress=False, out_dir=str(tmp_path))
    trainer = Trainer(tiny_decoder(), induction_data(), induction_data(16, seed=1), cfg, callbacks=[stop])
    history = trainer.fit()
    assert trainer.step == 3 and trainer.stop_reason == "test" and stop.ended
    assert [r["step"] for r in history if "loss" in r] == [2, 3]  # the step since the last record is logged
    assert {"step": 3, "event": "stop", "reason": "test"} in history and "eval_loss" in history[-1]
    assert json.loads((tmp_path / "meta.json").read_text())["step"] == 3
    uninterrupted = Trainer(tiny_decoder(), induction_data(), None,
                            TrainConfig(steps=3, batch_size=8, lr=3e-3, log_every=1, progress=False))
    uninterrupted.fit()
    assert trainer.losses()[-1] == pytest.approx(uninterrupted.losses()[2])  # step 3 alone
    with pytest.raises(ValueError, match="reason"):
        trainer.request_stop("")
    before = Trainer(tiny_decoder(), induction_data(), None, cfg, callbacks=[StopAt(0)])
    before.fit()
    assert before.step == 0 and before.losses() == [] and before.history[0]["event"] == "stop"


def test_early_stopping_at_a_target_or_a_plateau():
    def fit(values, **kw):
        it = iter(values)
        stop = EarlyStopping(lambda trainer: next(it), every=2, **kw)
        trainer = Trainer(tiny_decoder(), induction_data(), None,
                          TrainConfig(steps=20, batch_size=8, log_every=50, progress=False), callbacks=[stop])
        trainer.fit()
        return trainer, stop

    trainer, stop = fit([0.5, 0.3, 0.05, 0.2], target=0.1, patience=5)  # measured at steps 2, 4, 6: 0.05 <= 0.1
    assert trainer.step == 6 and stop.reason == "target" and stop.history == [(2, 0.5), (4, 0.3), (6, 0.05)]
    trainer, stop = fit([0.5, 0.3, 0.4, 0.3, 0.35, 0.1], target=0.01, patience=3)  # no new best after 0.3
    assert trainer.step == 10 and stop.reason == "plateau" and stop.best == 0.3
    trainer, stop = fit([1.0 - i / 100 for i in range(10)], target=0.01, patience=3)  # improving: the budget
    assert trainer.step == 20 and stop.reason is None and len(stop.history) == 10
    with pytest.raises(ValueError, match="target, a patience"):
        EarlyStopping(lambda t: 0.0, every=1)
    with pytest.raises(ValueError, match="every=0"):
        EarlyStopping(lambda t: 0.0, every=0, target=1.0)
