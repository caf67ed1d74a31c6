"""BERT's 80/10/10 input masking: proportions, labels, specials and padding never picked, determinism."""

import pytest
import torch

from probe.data.mlm import IGNORE, mask_tokens, mlm_examples

VOCAB, MASK, SPECIALS = 50, 4, (0, 1, 2, 3)


def tokens(n=400, t=50, seed=0):
    return torch.randint(5, VOCAB, (n, t), generator=torch.Generator().manual_seed(seed))


def test_picks_fifteen_percent_and_splits_them_eighty_ten_ten():
    x = tokens()
    inputs, labels = mask_tokens(x, MASK, VOCAB, SPECIALS, generator=torch.Generator().manual_seed(1))
    picked = labels != IGNORE
    assert picked.float().mean().item() == pytest.approx(0.15, abs=0.01)
    assert torch.equal(labels[picked], x[picked])  # labels are the original tokens
    assert torch.equal(inputs[~picked], x[~picked])  # nothing else changes
    n = picked.sum().item()
    masked = (inputs[picked] == MASK).sum().item() / n
    kept = (inputs[picked] == x[picked]).sum().item() / n
    random = 1 - masked - kept
    assert masked == pytest.approx(0.8, abs=0.02) and random == pytest.approx(0.1, abs=0.015)
    # a random replacement may draw the original token (1/45 of the time): kept is 10% plus that share
    assert kept == pytest.approx(0.1 + 0.1 / 45, abs=0.015)
    assert not torch.isin(inputs[picked & (inputs != MASK)], torch.tensor(SPECIALS)).any()


def test_specials_and_padding_are_never_picked():
    x = tokens(50, 20)
    x[:, 0], x[:, -1] = 2, 3  # bos, eos
    pad = torch.ones_like(x)
    pad[:, 15:] = 0
    x[:, 15:] = 0
    inputs, labels = mask_tokens(x, MASK, VOCAB, SPECIALS, p=0.9, attention_mask=pad,
                                 generator=torch.Generator().manual_seed(0))
    assert (labels[:, 0] == IGNORE).all() and (labels[:, 15:] == IGNORE).all()
    assert torch.equal(inputs[:, 15:], x[:, 15:]) and torch.equal(inputs[:, 0], x[:, 0])
    assert (labels[:, 1:15] != IGNORE).float().mean() > 0.8


def test_deterministic_given_a_generator_and_copies_differ():
    x = tokens(8, 16)
    a = mask_tokens(x, MASK, VOCAB, SPECIALS, generator=torch.Generator().manual_seed(3))
    b = mask_tokens(x, MASK, VOCAB, SPECIALS, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    ex = mlm_examples(x, MASK, VOCAB, SPECIALS, copies=3, seed=0, attention_mask=torch.ones_like(x))
    assert set(ex) == {"tokens", "labels", "attention_mask"} and all(len(v) == 24 for v in ex.values())
    assert not torch.equal(ex["labels"][:8], ex["labels"][8:16])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(p=0.0), "p=0.0"),
        (dict(replace=(0.9, 0.2)), "replace="),
        (dict(mask_id=99), "mask_id=99"),
        (dict(vocab_size=10), "outside \\[0, vocab_size=10\\)"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    args = dict(mask_id=MASK, vocab_size=VOCAB, special_ids=SPECIALS) | kwargs
    with pytest.raises(ValueError, match=message):
        mask_tokens(tokens(2, 4), **args)
    with pytest.raises(ValueError, match="int64"):
        mask_tokens(tokens(2, 4).int(), MASK, VOCAB)
