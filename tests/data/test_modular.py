"""probe.data.modular: (a + b) mod p, every pair once, a seeded 30% split."""

import pytest
import torch

from probe.config import TransformerConfig
from probe.data.modular import all_pairs, modular_addition
from probe.models.transformer import Transformer


def test_all_pairs_layout_and_answers():
    tokens, labels = all_pairs(5)
    assert tokens.shape == (25, 3) and labels.shape == (25, 3)
    i = 3 * 5 + 4  # pair (3, 4)
    assert tokens[i].tolist() == [3, 4, 5] and labels[i].tolist() == [-100, -100, 2]
    assert (labels[:, :2] == -100).all() and (tokens[:, 2] == 5).all()


def test_split_is_a_seeded_partition_of_every_pair():
    task = modular_addition(7, frac_train=0.3, seed=1)
    assert int(task.train_mask.sum()) == round(0.3 * 49) == len(task.train) and len(task.test) == 49 - 15
    pairs = {tuple(t[:2]) for t in task.train.tensors["tokens"].tolist()}
    pairs |= {tuple(t[:2]) for t in task.test.tensors["tokens"].tolist()}
    assert pairs == {(a, b) for a in range(7) for b in range(7)}
    assert torch.equal(modular_addition(7, 0.3, seed=1).train_mask, task.train_mask)
    assert not torch.equal(modular_addition(7, 0.3, seed=2).train_mask, task.train_mask)
    t = task.train.tensors
    assert torch.equal(t["labels"][:, 2], (t["tokens"][:, 0] + t["tokens"][:, 1]) % 7)


def test_model_fields_fit_a_decoder():
    task = modular_addition(7, 0.5)
    model = Transformer(TransformerConfig(n_layers=1, d_model=8, n_heads=2, **task.model_fields()))
    loss = model(**task.train[:4], return_type="loss")
    assert loss.ndim == 0 and torch.isfinite(loss)


@pytest.mark.parametrize(("kwargs", "match"), [({"p": 2}, "p=2"),
                                                ({"frac_train": 1.0}, "frac_train=1.0"),
                                                ({"p": 3, "frac_train": 0.01}, "leaves 0")])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        modular_addition(**kwargs)
