"""probe.train.recorder.Recorder: what it records, for every model kind, through the real Trainer; resuming."""

import math

import pytest
import torch

import probe
from probe.circuits import detector_scores
from probe.config import CNNConfig, TransformerConfig, ViTConfig
from probe.data import synthetic
from probe.models.cnn import CNN
from probe.models.transformer import Transformer
from probe.models.vit import ViT
from probe.train import Recorder, TrainConfig, Trainer
from probe.train.batches import DictDataset
from probe.train.recorder import default_probe_batch
from tests.train.helpers import induction_data, tiny_decoder


def fit(model, data, tmp_path, every=2, steps=5, eval_data=None, **kw):
    rec = Recorder(tmp_path / "rec", every=every, **kw)
    trainer = Trainer(model, data, eval_data, TrainConfig(steps=steps, batch_size=8, log_every=1, progress=False),
                      callbacks=[rec])
    trainer.fit()
    return trainer, probe.load_trajectory(tmp_path / "rec")


def test_decoder_records_every_default_measure_and_they_are_the_models(tmp_path):
    model = tiny_decoder(n_layers=2)
    probe_batch = induction_data(3, seed=5, targets="repeat")[:3]
    custom = {"twice": lambda m, step: {"step": 2.0 * step, "vec": torch.full((2,), float(step))},
              "scalar": lambda m, step: 7.0}
    trainer, traj = fit(model, induction_data(), tmp_path, probe_batch=probe_batch, custom=custom,
                        eval_data=induction_data(16, seed=1))
    assert traj.steps.tolist() == [0, 2, 4, 5]
    hooks = ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]
    assert set(traj.names) >= {"loss", "eval_loss", "loss_by_position", *hooks, "twice.step", "twice.vec", "scalar",
                               "head_scores.previous_token", "head_scores.induction", "head_scores.duplicate"}
    # train loss: NaN before training, then the mean of the step losses since the previous record
    losses = [r["loss"] for r in trainer.history if "loss" in r]  # log_every=1: one per step
    assert math.isnan(traj["loss"][0])
    torch.testing.assert_close(traj["loss"][1:], torch.tensor([sum(losses[0:2]) / 2, sum(losses[2:4]) / 2,
                                                               losses[4]]))
    assert traj["eval_loss"][-1].item() == pytest.approx(trainer.evaluate())
    # the last record is the final model, measured on the probe batch
    model.eval()
    logits, cache = model.run_with_cache(**probe_batch, names_filter=hooks)
    for name in hooks:
        torch.testing.assert_close(traj[name][-1], cache[name])
    assert not torch.allclose(traj[hooks[0]][0], traj[hooks[0]][-1])
    tokens = probe_batch["tokens"]
    for kind in ("previous_token", "induction", "duplicate"):
        expected = torch.stack([detector_scores(cache[h], tokens, kind) for h in hooks])
        torch.testing.assert_close(traj[f"head_scores.{kind}"][-1], expected)
    per_pos = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), probe_batch["labels"][:, :-1],
                                                ignore_index=-100, reduction="none")
    valid = probe_batch["labels"][:, :-1] != -100
    by_pos = traj["loss_by_position"][-1]
    assert by_pos.shape == (tokens.shape[1],) and torch.isnan(by_pos[-1])  # the labels score only the repeats
    torch.testing.assert_close(by_pos[:-1][valid.any(0)], ((per_pos * valid).sum(0) / valid.sum(0))[valid.any(0)])
    norms = traj.group("weight_norms")
    assert set(norms) == {n for n, _ in model.named_parameters()}
    torch.testing.assert_close(norms["blocks.0.attn.W_Q"][-1], model.blocks[0].attn.W_Q.norm())
    assert traj["twice.step"].tolist() == [0.0, 4.0, 8.0, 10.0] and traj["twice.vec"].shape == (4, 2)
    assert traj.meta["recorder"]["every"] == 2 and traj.meta["model"]["config"]["n_layers"] == 2
    assert traj.meta["train_config"]["steps"] == 5
    assert torch.equal(traj.probe["tokens"], tokens) and torch.equal(traj.probe["labels"], probe_batch["labels"])


def test_a_resumed_run_continues_the_same_recording_without_duplicates(tmp_path):
    kw = dict(steps=9, batch_size=8, log_every=1, progress=False)
    probe_batch = induction_data(2, seed=5)[:2]
    full = Trainer(tiny_decoder(), induction_data(), None, TrainConfig(out_dir=str(tmp_path / "run"), save_every=4,
                                                                       **kw),
                   callbacks=[Recorder(tmp_path / "full", every=2, probe_batch=probe_batch)])
    full.fit()
    # an interrupted run: recorded up to step 6, then resumed from its step-4 checkpoint into the same directory
    part = Trainer(tiny_decoder(), induction_data(), None, TrainConfig(**{**kw, "steps": 6}),
                   callbacks=[Recorder(tmp_path / "resumed", every=2, probe_batch=probe_batch)])
    part.fit()
    assert probe.load_trajectory(tmp_path / "resumed").steps.tolist() == [0, 2, 4, 6]
    resumed = Trainer(tiny_decoder(seed=3), induction_data(), None, TrainConfig(**kw),
                      callbacks=[Recorder(tmp_path / "resumed", every=2, probe_batch=probe_batch)],
                      resume_from=tmp_path / "run" / "step-4")
    resumed.fit()
    a, b = probe.load_trajectory(tmp_path / "full"), probe.load_trajectory(tmp_path / "resumed")
    assert a.steps.tolist() == b.steps.tolist() == [0, 2, 4, 6, 8, 9]
    for name in a.names:
        torch.testing.assert_close(b[name], a[name], equal_nan=True)


def tiny(**kw):
    return TransformerConfig(d_model=16, n_layers=1, n_heads=2, d_mlp=32, seed=0, **kw)


def seq2seq_data(n=32):
    return synthetic.seq2seq("reverse", n, n_symbols=5, min_len=3, max_len=5)


KINDS = {
    # name: (model, data, probe batch or None, measures expected beyond loss / weight_norms)
    "decoder": (lambda: tiny_decoder(), lambda: induction_data(), None,
                {"loss_by_position", "head_scores.induction", "blocks.0.attn.hook_pattern"}),
    "linear_sum": (lambda: tiny_decoder(attention="linear"), lambda: induction_data(), None,
                   {"loss_by_position", "head_scores.induction", "blocks.0.attn.hook_pattern"}),
    "linear_delta": (lambda: tiny_decoder(attention="linear", update_rule="delta"), lambda: induction_data(), None,
                     {"loss_by_position", "blocks.0.attn.hook_pattern"}),
    "encoder_token": (lambda: Transformer(tiny(arch="encoder", head="token", d_vocab=8, n_ctx=6)),
                      lambda: DictDataset(tokens=torch.randint(0, 8, (32, 6)), labels=torch.randint(0, 8, (32, 6))),
                      "batch", {"loss_by_position", "blocks.0.attn.hook_pattern"}),
    "encoder_classifier": (lambda: Transformer(tiny(**synthetic.task_model_fields("majority", length=5))),
                           lambda: synthetic.majority(32, length=5), "batch", {"blocks.0.attn.hook_pattern"}),
    "encoder_decoder": (lambda: Transformer(tiny(**synthetic.task_model_fields("reverse", n_symbols=5, max_len=5))),
                        seq2seq_data, "batch",
                        {"loss_by_position", "encoder.0.attn.hook_pattern", "decoder.0.attn.hook_pattern",
                         "decoder.0.cross_attn.hook_pattern"}),
    "vit": (lambda: ViT(ViTConfig(d_model=16, n_layers=1, n_heads=2, seed=0)),
            lambda: DictDataset(images=torch.randn(32, 1, 8, 8), labels=torch.randint(0, 10, (32,))), "batch",
            {"blocks.0.attn.hook_pattern"}),
    "cnn": (lambda: CNN(CNNConfig(widths=(4,), seed=0)),
            lambda: DictDataset(images=torch.randn(32, 1, 8, 8), labels=torch.randint(0, 10, (32,))), None, set()),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_model_kind_records_what_applies_to_it(kind, tmp_path):
    make_model, make_data, probe_kind, expected = KINDS[kind]
    data = make_data()
    probe_batch = data[:2] if probe_kind == "batch" else None
    _, traj = fit(make_model(), data, tmp_path, steps=3, probe_batch=probe_batch)
    names = set(traj.names)
    assert {"loss", "weight_norms"} <= {n.split(".")[0] for n in names}
    assert expected <= names, sorted(names)
    has_heads = any(n.startswith("head_scores.") for n in names)
    assert has_heads == (kind in ("decoder", "linear_sum"))
    patterns = [n for n in names if n.endswith("hook_pattern")]
    for name in patterns:  # softmax attention and the normalised sum rule: each row is a distribution
        if kind != "linear_delta":
            torch.testing.assert_close(traj[name].sum(-1), torch.ones(traj[name].shape[:-1]))
    assert traj.steps.tolist() == [0, 2, 3]


def test_measures_that_do_not_apply_are_refused(tmp_path):
    model = Transformer(tiny(arch="encoder", head="token", d_vocab=8, n_ctx=6))
    data = DictDataset(tokens=torch.randint(0, 8, (32, 6)), labels=torch.randint(0, 8, (32, 6)))
    with pytest.raises(ValueError, match="head_scores.*head detectors apply to decoders"):
        fit(model, data, tmp_path, measures=("loss", "head_scores"), probe_batch=data[:2])
    with pytest.raises(ValueError, match="need a probe_batch"):
        fit(model, data, tmp_path, measures=("patterns",))
    with pytest.raises(ValueError, match="eval_loss.*no eval_data"):
        fit(tiny_decoder(), induction_data(), tmp_path, measures=("eval_loss",))


def test_constructor_validation(tmp_path):
    with pytest.raises(ValueError, match="every=0"):
        Recorder(tmp_path, every=0)
    with pytest.raises(ValueError, match="unknown measures \\['losses'\\]"):
        Recorder(tmp_path, measures=("losses",))
    with pytest.raises(TypeError, match="sequence of names"):
        Recorder(tmp_path, measures="loss")
    with pytest.raises(ValueError, match="clashes with a built-in"):
        Recorder(tmp_path, custom={"loss": lambda m, s: 0.0})
    with pytest.raises(TypeError, match="custom"):
        Recorder(tmp_path, custom={"x": 3})


def test_a_decoder_without_probe_batch_gets_a_repeated_random_block(tmp_path):
    cfg = TransformerConfig(d_model=16, n_layers=1, n_heads=2, d_vocab=10, n_ctx=12, bos_token_id=1, pad_token_id=0)
    batch = default_probe_batch(cfg)
    tokens = batch["tokens"]
    assert tokens.shape == (8, 11) and (tokens[:, 0] == 1).all()
    assert torch.equal(tokens[:, 1:6], tokens[:, 6:]) and not ((tokens[:, 1:] == 0) | (tokens[:, 1:] == 1)).any()
    _, traj = fit(tiny_decoder(), induction_data(), tmp_path, steps=2, measures=("patterns",))
    assert traj.probe["tokens"].shape[1] == 9 and traj["blocks.0.attn.hook_pattern"].shape[-1] == 9


def test_token_labels_of_the_probe_batch_go_into_meta(tmp_path):
    from probe.interop.bridge import vocab_tokenizer

    model = tiny_decoder()
    model.tokenizer = vocab_tokenizer(model.cfg.d_vocab)
    probe_batch = induction_data(2, seed=5)[:2]
    _, traj = fit(model, induction_data(), tmp_path, steps=2, probe_batch=probe_batch, measures=("loss",))
    labels = traj.meta["probe_token_labels"]["tokens"]
    assert labels[0] == [f"t{int(t)}" for t in probe_batch["tokens"][0]]


def test_float16_patterns_halve_the_store(tmp_path):
    _, traj = fit(tiny_decoder(), induction_data(), tmp_path, steps=2, measures=("patterns",),
                  pattern_dtype=torch.float16)
    assert traj["blocks.0.attn.hook_pattern"].dtype == torch.float16
