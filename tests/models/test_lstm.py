"""probe.models.lstm: a hooked LSTM language model trained by the Trainer, causal, checkpointed, parameter count."""

import pytest
import torch

import probe
from probe.models.lstm import LSTM, LSTMConfig
from probe.train import TrainConfig, Trainer
from tests.train.helpers import induction_data


def test_outputs_at_t_ignore_later_tokens_and_hooks_hold_every_layer():
    model = LSTM(LSTMConfig(d_model=16, n_layers=2, d_vocab=11, seed=0)).eval()
    tokens = torch.randint(0, 11, (2, 9))
    changed = tokens.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 11
    a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert (a[:, 5:] - b[:, 5:]).abs().max() > 1e-4
    logits, cache = model.run_with_cache(tokens)
    assert set(cache.keys()) == {"hook_embed", "layers.0.hook_hidden", "layers.1.hook_hidden"}
    torch.testing.assert_close(logits, cache["layers.1.hook_hidden"] @ model.W_U + model.b_U)


def test_parameter_count_matches_the_formula_and_two_transformer_blocks():
    cfg = LSTMConfig(d_model=64, n_layers=3, d_vocab=7)
    model = LSTM(cfg)
    recurrent = sum(p.numel() for n, p in model.named_parameters() if n.startswith("layers."))
    assert recurrent == cfg.n_params == 3 * 4 * (2 * 64 * 64 + 2 * 64)
    blocks = probe.TransformerConfig(d_model=64, n_layers=2, n_heads=4).n_params
    assert abs(cfg.n_params / blocks - 1) < 0.02


def test_trains_with_the_trainer_and_round_trips_a_checkpoint(tmp_path):
    data = induction_data()
    model = LSTM(LSTMConfig(d_model=16, n_layers=1, d_vocab=int(data.tensors["tokens"].max()) + 1, seed=0))
    trainer = Trainer(model, data, None, TrainConfig(steps=30, batch_size=16, lr=1e-2, log_every=10, progress=False))
    losses = trainer.fit() and trainer.losses()
    assert losses[-1] < losses[0]
    model.save(tmp_path / "lstm")
    again = probe.load(tmp_path / "lstm")
    assert isinstance(again, LSTM) and again.cfg == model.cfg
    tokens = data.tensors["tokens"][:2]
    torch.testing.assert_close(again(tokens), model(tokens))


def test_loss_ignores_padded_targets_and_bad_input_is_refused():
    model = LSTM(LSTMConfig(d_model=8, d_vocab=5, seed=0))
    tokens = torch.tensor([[1, 2, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    loss = model(tokens, attention_mask=mask, return_type="loss")
    torch.testing.assert_close(loss, model(tokens[:, :3], return_type="loss"))
    with pytest.raises(ValueError, match="outside \\[0, d_vocab=5\\)"):
        model(torch.tensor([[7]]))
    with pytest.raises(ValueError, match="return_type"):
        model(tokens, return_type="probs")
    with pytest.raises(ValueError, match="d_model"):
        LSTMConfig(d_model=0)
    with pytest.raises(ValueError, match="dropout"):
        LSTMConfig(dropout=1.0)


def test_seeded_init_is_local_and_has_pytorchs_default_distribution():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = LSTM(LSTMConfig(d_model=64, d_vocab=5, seed=7)), LSTM(LSTMConfig(d_model=64, d_vocab=5, seed=7))
    assert torch.equal(torch.rand(1), before)  # the global RNG was not touched
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    w = a.layers[0].lstm.weight_hh_l0.detach()
    # U(-1/sqrt(d), 1/sqrt(d)): bounded by 1/8 for d=64, standard deviation 1/8/sqrt(3)
    assert w.abs().max() <= 1 / 8 and w.std().item() == pytest.approx(1 / 8 / 3**0.5, rel=0.05)
    assert not torch.equal(w, LSTM(LSTMConfig(d_model=64, d_vocab=5, seed=8)).layers[0].lstm.weight_hh_l0)
