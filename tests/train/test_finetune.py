"""ULMFiT-style fine-tuning: a pretrained body under a new head; gradual unfreezing trains groups in order."""

import pytest
import torch

from probe import Transformer, TransformerConfig
from probe.train import TrainConfig, Trainer
from probe.train.finetune import GradualUnfreezing, layer_groups, load_body
from tests.train.helpers import induction_data


def decoder(**kw):
    base = dict(d_model=16, n_layers=2, n_heads=2, d_mlp=32, d_vocab=12, n_ctx=32, seed=0)
    return Transformer(TransformerConfig(**{**base, **kw}))


def classifier(seed=1):
    return decoder(head="classifier", pool="mean", d_vocab_out=2, seed=seed)


def test_load_body_copies_everything_but_the_head_and_refuses_another_body():
    lm, clf = decoder(), classifier()
    names = load_body(clf, lm)
    assert "embed.W_E" in names and not any(n.startswith("unembed.") for n in names)
    for n in names:
        assert torch.equal(clf.state_dict()[n], lm.state_dict()[n])
    assert clf.unembed.W_U.shape == (16, 2)
    with pytest.raises(ValueError, match="shapes differ.*blocks.0"):
        load_body(clf, decoder(d_mlp=24))


def test_layer_groups_run_from_the_head_down_and_cover_every_parameter():
    groups = layer_groups(classifier())
    assert groups[0] == ["unembed._W_U", "unembed.b_U"]
    assert all(n.startswith("blocks.1.") or n.startswith("ln_final.") for n in groups[1])
    assert any(n.startswith("ln_final.") for n in groups[1])
    assert all(n.startswith("blocks.0.") for n in groups[2])
    assert sorted(groups[3]) == ["embed.W_E", "pos_embed.W_pos"]
    assert sorted(n for g in groups for n in g) == sorted(n for n, _ in classifier().named_parameters())


def fine_tune(steps, every=2):
    model = classifier()
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    data = induction_data(32, targets="repeat")
    data.tensors["labels"] = data.tensors.pop("labels")[:, -1] % 2
    cb = GradualUnfreezing(layer_groups(model), every=every)
    Trainer(model, data, None, TrainConfig(steps=steps, batch_size=8, lr=1e-2, progress=False), callbacks=[cb]).fit()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, start[n])}
    return model, moved, cb


def test_gradual_unfreezing_trains_one_more_group_every_few_steps():
    groups = layer_groups(classifier())
    for steps, n_groups in [(2, 1), (4, 2), (6, 3), (8, 4)]:
        model, moved, cb = fine_tune(steps)
        assert moved == {n for g in groups[:n_groups] for n in g}, steps
    assert all(p.requires_grad for p in model.parameters())  # everything trains again after fit


def test_gradual_unfreezing_refuses_groups_that_miss_or_repeat_parameters():
    model = classifier()
    groups = layer_groups(model)
    data = induction_data(16, targets="repeat")
    data.tensors["labels"] = data.tensors.pop("labels")[:, -1] % 2
    for bad, message in [(groups[:-1], "in no group \\['embed.W_E'"), (groups + [groups[0]], "in two groups"),
                         (groups + [["nope"]], "not in the model \\['nope'\\]")]:
        trainer = Trainer(model, data, None, TrainConfig(steps=1, batch_size=8, progress=False),
                          callbacks=[GradualUnfreezing(bad, every=1)])
        with pytest.raises(ValueError, match=message):
            trainer.fit()
    with pytest.raises(ValueError, match="every=0"):
        GradualUnfreezing(groups, every=0)
