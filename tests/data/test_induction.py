"""probe.data.induction: repeated random blocks are what their docstring says."""

import pytest
import torch

from probe.data.induction import induction_prediction, repeated_blocks
from probe.data.synthetic import BOS, N_SPECIAL


def test_pairs_of_copies_fill_the_sequence():
    d = repeated_blocks(200, n_symbols=7, min_block=2, max_block=6, length=30, seed=3, block_dist="uniform")
    assert d.tokens.shape == (200, 30) and (d.tokens[:, 0] == BOS).all()
    assert ((d.tokens[:, 1:] >= N_SPECIAL) & (d.tokens[:, 1:] < N_SPECIAL + 7)).all()
    for row in range(200):
        tokens, copy, index, block = (t[row].tolist() for t in (d.tokens, d.copy, d.index, d.block))
        p = 1
        while p < 30:  # walk the pairs: B tokens of a first copy, then the same B tokens again
            B = block[p]
            assert 2 <= B <= 6
            for j in range(2 * B):
                if p + j >= 30:
                    break
                assert block[p + j] == B and index[p + j] == j % B and copy[p + j] == 1 + (j >= B)
                if j >= B:
                    assert tokens[p + j] == tokens[p + j - B]
            p += 2 * B
    assert set(d.block[:, 1].tolist()) == set(range(2, 7))  # every length occurs


def test_block_lengths_follow_the_chosen_distribution():
    first = repeated_blocks(20_000, min_block=2, max_block=5, length=11, seed=0).block[:, 1]  # the first pair's B
    freq = torch.bincount(first, minlength=6)[2:].float() / len(first)
    expected = torch.tensor([1 / 2, 1 / 3, 1 / 4, 1 / 5])
    torch.testing.assert_close(freq, expected / expected.sum(), atol=0.01, rtol=0)  # "inverse": P(B) ~ 1/B
    uniform = repeated_blocks(20_000, min_block=2, max_block=5, length=11, seed=0, block_dist="uniform").block[:, 1]
    torch.testing.assert_close(torch.bincount(uniform, minlength=6)[2:].float() / 20_000, torch.full((4,), 0.25),
                               atol=0.01, rtol=0)


def test_target_masks_and_labels():
    d = repeated_blocks(50, min_block=3, max_block=5, length=20, seed=1)
    labels = d.labels()
    scored = labels != -100
    assert torch.equal(scored[:, :-1], d.repeat_targets[:, 1:]) and not scored[:, -1].any()
    assert torch.equal(labels[scored], d.tokens[:, 1:][d.repeat_targets[:, 1:]])
    assert torch.equal(d.repeat_targets, (d.copy == 2) & (d.index > 0))
    assert torch.equal(d.first_targets, (d.copy == 1) & (d.index > 0))
    assert torch.equal(d.second_copy, d.copy == 2)


def test_seeded():
    a, b = repeated_blocks(8, seed=4), repeated_blocks(8, seed=4)
    assert torch.equal(a.tokens, b.tokens) and not torch.equal(a.tokens, repeated_blocks(8, seed=5).tokens)


def test_induction_prediction_by_hand():
    tokens = torch.tensor([[1, 5, 6, 5, 7, 5, 6]])
    # after 5 at pos 3: the last earlier 5 is pos 1, followed by 6; after 5 at pos 5: pos 3 -> 7; 6 at pos 6 -> 5
    assert induction_prediction(tokens).tolist() == [[-1, -1, -1, 6, -1, 7, 5]]


@pytest.mark.parametrize("kwargs, match", [
    ({"min_block": 1}, "min_block=1"),
    ({"min_block": 5, "max_block": 4}, "min_block=5 must be <= max_block=4"),
    ({"max_block": 10, "length": 20}, "length=20 must be >= 2 \\* max_block \\+ 1 = 21"),
    ({"block_dist": "zipf"}, "block_dist='zipf'"),
    ({"n_symbols": 1}, "n_symbols=1"),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        repeated_blocks(4, **kwargs)
