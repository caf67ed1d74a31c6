"""Repeated random blocks: the data on which induction heads form (Olsson et al. 2022, "In-context learning and
induction heads"; Elhage et al. 2021), the one generator of the induction task (`probe.data.synthetic.induction`,
`probe train --task induction`, `analyses/dynamics/induction_formation`, `make demo`).

Each sequence holds `length` tokens: bos, then pairs of copies of random blocks, one pair after another,
[bos, r_1 .. r_B, r_1 .. r_B, s_1 .. s_C, s_1 .. s_C, ...], cut off at `length` (the last pair may be cut short).
Each block's length is drawn uniformly from {min_block .. max_block}, independently for every pair; every block
token is drawn uniformly and independently from the `n_symbols` symbols (ids N_SPECIAL .. N_SPECIAL + n_symbols - 1;
collisions happen as chance has it). A block's first copy is unpredictable (best loss ln n_symbols); in its second
copy, r_{j+1} is predictable from r_j by induction: find the earlier occurrence of the current token and copy the
token that followed it. Within one sequence the distance between copies changes from pair to pair and pairs start
anywhere, so neither a fixed offset nor an absolute position predicts the repeats; half the tokens are repeats, so
the signal is dense.

Token conventions as in `probe.data.synthetic`: 0 pad, 1 bos, symbols from 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from probe.data.tokens import BOS, N_SPECIAL

BLOCK_DISTS = ("inverse", "uniform")


def _check_int(name: str, value: int, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}={value!r} must be an integer >= {low}")


@dataclass(frozen=True)
class RepeatedBlocks:
    """A batch of repeated-block sequences and, for every token, where it sits.

    `tokens` [n, length]; `copy` [n, length]: 0 for bos, 1 in a block's first copy, 2 in its second copy;
    `index` [n, length]: the token's index j inside its block (0 for r_1); `block` [n, length]: the length B of the
    block the token belongs to (0 for bos). The target masks mark *predicted* tokens (token positions)."""

    tokens: Int[Tensor, "n length"]
    copy: Int[Tensor, "n length"]
    index: Int[Tensor, "n length"]
    block: Int[Tensor, "n length"]

    @property
    def first_targets(self) -> Bool[Tensor, "n length"]:
        """r_2 .. r_B of first copies (unpredictable: the in-context score's early tokens)."""
        return (self.copy == 1) & (self.index >= 1)

    @property
    def repeat_targets(self) -> Bool[Tensor, "n length"]:
        """r_2 .. r_B of second copies (predictable by induction from the token before: the late tokens)."""
        return (self.copy == 2) & (self.index >= 1)

    @property
    def second_copy(self) -> Bool[Tensor, "n length"]:
        """Every token of a second copy: the queries an induction head serves."""
        return self.copy == 2

    def labels(self) -> Int[Tensor, "n length"]:
        """Labels for `Transformer(tokens, labels=...)`: at position p the next token when that token is a repeat
        target, else -100 (not scored)."""
        labels = torch.full_like(self.tokens, -100)
        keep = self.repeat_targets[:, 1:]
        labels[:, :-1][keep] = self.tokens[:, 1:][keep]
        return labels


def repeated_blocks(n: int, n_symbols: int = 32, min_block: int = 2, max_block: int = 16, length: int = 48,
                    seed: int = 0, block_dist: str = "inverse", max_gap: int = 0) -> RepeatedBlocks:
    """`n` sequences of `length` tokens: bos, then pairs of copies of random blocks with lengths uniform in
    [min_block, max_block] (module docstring)."""
    for name, value, low in (("n", n, 1), ("n_symbols", n_symbols, 2), ("min_block", min_block, 2),
                             ("max_block", max_block, 2), ("length", length, 5), ("max_gap", max_gap, 0)):
        _check_int(name, value, low)
    if min_block > max_block:
        raise ValueError(f"min_block={min_block} must be <= max_block={max_block}")
    if block_dist not in BLOCK_DISTS:
        raise ValueError(f"block_dist={block_dist!r} is not one of {BLOCK_DISTS}")
    if length < 2 * max_block + 1:
        raise ValueError(f"length={length} must be >= 2 * max_block + 1 = {2 * max_block + 1} (bos and two copies "
                         "of the longest block)")
    g = torch.Generator().manual_seed(seed)
    n_pairs = (length - 1) // (2 * min_block) + 1  # enough pairs to fill any row
    lengths = torch.arange(min_block, max_block + 1)
    weights = 1.0 / lengths if block_dist == "inverse" else torch.ones(len(lengths))
    blocks = lengths[torch.multinomial(weights, n * n_pairs, replacement=True, generator=g)].view(n, n_pairs)
    gaps = torch.randint(0, max_gap + 1, (n, n_pairs), generator=g)
    symbols = torch.randint(N_SPECIAL, N_SPECIAL + n_symbols, (n, length), generator=g)
    sizes = 2 * blocks + gaps
    starts = 1 + torch.cumsum(sizes, 1) - sizes  # position of each pair's first token
    pos = torch.arange(length).expand(n, length)
    pair = (torch.searchsorted(starts, pos.contiguous(), right=True) - 1).clamp(min=0)
    block, gap = blocks.gather(1, pair), gaps.gather(1, pair)
    offset = pos - starts.gather(1, pair)  # position inside the pair, 0 .. 2B + G - 1
    second = offset >= block + gap
    in_gap = (offset >= block) & ~second
    tokens = symbols.gather(1, torch.where(second, pos - block - gap, pos))  # a second copy repeats its first
    is_bos = pos == 0
    tokens = tokens.masked_fill(is_bos, BOS)
    copy = torch.where(is_bos, 0, torch.where(in_gap, 3, 1 + second.long()))
    index = torch.where(is_bos, 0, torch.where(second, offset - block - gap, torch.where(in_gap, offset - block,
                                                                                         offset)))
    return RepeatedBlocks(tokens, copy, index, block.masked_fill(is_bos, 0))


def induction_prediction(tokens: Int[Tensor, "n length"]) -> Int[Tensor, "n length"]:
    """What pure induction predicts after each position: the token that followed the most recent earlier
    occurrence of the current token (-1 where it has none). Its accuracy on the repeat targets is the ceiling an
    ideal induction head reaches on these sequences (chance collisions make it less than 1)."""
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be [n, length], got {tuple(tokens.shape)}")
    length = tokens.shape[1]
    pos = torch.arange(length)
    earlier = (tokens[:, :, None] == tokens[:, None, :]) & (pos[None, None, :] < pos[None, :, None])
    last = torch.where(earlier, pos[None, None, :], -1).amax(-1)  # [n, q]: the latest earlier occurrence
    nxt = tokens.gather(1, (last + 1).clamp(max=length - 1))
    return torch.where(last >= 0, nxt, -1)
