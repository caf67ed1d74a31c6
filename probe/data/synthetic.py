"""Synthetic tasks with known solutions, the test beds of mechanistic interpretability.

Seq2seq (encoder-decoder; Vaswani et al. 2017 style): `copy`, `reverse`, `sort` a random symbol string.
Decoder: `induction` (random tokens with a block of varying length repeated, `probe.data.induction`; the second
copy is predictable only by induction heads, Olsson et al. 2022) and `associative_recall` (key-value pairs then
a query key; Ba et al. 2016, Zoology 2023).
Encoder: `majority` sequence classification (which symbol occurs most often, CLS-pooled).

Every task returns a `DictDataset` whose batches are the keyword arguments of `probe.Transformer`, and
`task_model_fields(name, ...)` gives the TransformerConfig fields the task needs (vocabulary, arch, head, n_ctx).
Token conventions: 0 = pad, 1 = bos, 2 = eos (seq2seq); symbols follow the specials. Label -100 = not scored.
"""

from __future__ import annotations

from typing import Any

import torch

from probe.data.dataset import DictDataset
from probe.data.induction import repeated_blocks
from probe.data.tokens import BOS, EOS, N_SPECIAL, PAD

__all__ = ["BOS", "EOS", "N_SPECIAL", "PAD", "TASKS", "associative_recall", "induction", "majority", "make_task",
           "seq2seq", "task_model_fields"]
SEQ2SEQ = ("copy", "reverse", "sort")
TASKS = (*SEQ2SEQ, "induction", "associative_recall", "majority")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _check(name: str, value: int, low: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}={value!r} must be an integer >= {low}")


def seq2seq(task: str, n: int, n_symbols: int = 10, min_len: int = 4, max_len: int = 8, seed: int = 0,
            ) -> DictDataset:
    """`src` = symbols (padded to max_len, `src_mask` 1 on real tokens); `tgt` = [bos, target...] and
    `labels` = [target..., eos], padded with pad / -100. Target: the source copied, reversed or sorted."""
    if task not in SEQ2SEQ:
        raise ValueError(f"task={task!r} is not one of {SEQ2SEQ}")
    for name, value in (("n", n), ("n_symbols", n_symbols), ("min_len", min_len), ("max_len", max_len)):
        _check(name, value)
    if min_len > max_len:
        raise ValueError(f"min_len={min_len} must be <= max_len={max_len}")
    g = _gen(seed)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=g)
    symbols = torch.randint(N_SPECIAL, N_SPECIAL + n_symbols, (n, max_len), generator=g)
    real = torch.arange(max_len)[None] < lengths[:, None]
    src = symbols.masked_fill(~real, PAD)
    if task == "copy":
        target = src
    elif task == "reverse":
        # reverse the first `length` symbols of each row: position i takes symbol length - 1 - i
        idx = (lengths[:, None] - 1 - torch.arange(max_len)[None]).clamp(min=0)
        target = torch.gather(symbols, 1, idx).masked_fill(~real, PAD)
    else:
        big = N_SPECIAL + n_symbols
        target = symbols.masked_fill(~real, big).sort(dim=1).values.masked_fill(~real, PAD)
    eos_at = torch.arange(max_len + 1)[None] == lengths[:, None]
    padded = torch.cat([target, torch.full((n, 1), PAD)], 1)
    labels = padded.masked_fill(eos_at, EOS)
    labels = labels.masked_fill(torch.arange(max_len + 1)[None] > lengths[:, None], -100)
    tgt = torch.cat([torch.full((n, 1), BOS), target], 1)
    return DictDataset(src=src, tgt=tgt, labels=labels, src_mask=real.long())


def induction(n: int, n_symbols: int = 32, min_block: int = 2, max_block: int = 16, length: int = 48,
              targets: str = "repeat", seed: int = 0) -> DictDataset:
    """Repeated random blocks (`probe.data.induction.repeated_blocks`: pairs of copies of blocks, B uniform in
    [min_block, max_block], `length` tokens). targets="repeat": `labels` score only the tokens induction can predict
    (r_2 .. r_B of the second copy), everything else -100; targets="all": `tokens` only, next-token loss on every
    position (the language-modelling loss of Olsson et al. 2022)."""

    if targets not in ("repeat", "all"):
        raise ValueError(f"targets={targets!r} is not 'repeat' or 'all'")
    data = repeated_blocks(n, n_symbols, min_block, max_block, length, seed)
    if targets == "all":
        return DictDataset(tokens=data.tokens)
    return DictDataset(tokens=data.tokens, labels=data.labels())


def associative_recall(n: int, n_keys: int = 8, n_values: int = 8, n_pairs: int = 4, seed: int = 0) -> DictDataset:
    """`tokens` = [k_1 v_1 ... k_P v_P q] with distinct keys and q one of them; the last position is labelled
    with q's value. Keys are ids [3, 3 + n_keys), values the next n_values ids."""
    for name, value in (("n", n), ("n_keys", n_keys), ("n_values", n_values), ("n_pairs", n_pairs)):
        _check(name, value)
    if n_pairs > n_keys:
        raise ValueError(f"n_pairs={n_pairs} must be <= n_keys={n_keys} (keys are distinct)")
    g = _gen(seed)
    keys = torch.rand(n, n_keys, generator=g).argsort(1)[:, :n_pairs] + N_SPECIAL
    values = torch.randint(0, n_values, (n, n_pairs), generator=g) + N_SPECIAL + n_keys
    which = torch.randint(0, n_pairs, (n, 1), generator=g)
    pairs = torch.stack([keys, values], 2).flatten(1)
    tokens = torch.cat([pairs, keys.gather(1, which)], 1)
    labels = torch.full_like(tokens, -100)
    labels[:, -1] = values.gather(1, which)[:, 0]
    return DictDataset(tokens=tokens, labels=labels)


def majority(n: int, n_classes: int = 4, length: int = 16, seed: int = 0) -> DictDataset:
    """`tokens` = [cls, s_1..s_L] with symbols 1..n_classes; `labels` [n] = the most frequent symbol's index
    (ties go to the smallest). Token 0 is the class token the classifier pools."""
    for name, value in (("n", n), ("n_classes", n_classes), ("length", length)):
        _check(name, value)
    sym = torch.randint(0, n_classes, (n, length), generator=_gen(seed))
    counts = torch.nn.functional.one_hot(sym, n_classes).sum(1)
    labels = counts.argmax(1)  # first maximum = smallest index
    tokens = torch.cat([torch.zeros(n, 1, dtype=torch.long), sym + 1], 1)
    return DictDataset(tokens=tokens, labels=labels)


def make_task(name: str, n: int, seed: int = 0, **kwargs: Any) -> DictDataset:
    """Build a task dataset by name (see TASKS)."""
    if name in SEQ2SEQ:
        return seq2seq(name, n, seed=seed, **kwargs)
    builders = {"induction": induction, "associative_recall": associative_recall, "majority": majority}
    if name not in builders:
        raise ValueError(f"task={name!r} is not one of {TASKS}")
    return builders[name](n, seed=seed, **kwargs)


def task_model_fields(name: str, **kwargs: Any) -> dict[str, Any]:
    """The TransformerConfig fields a task fixes (pass the same kwargs as to make_task)."""
    if name in SEQ2SEQ:
        n_symbols, max_len = kwargs.get("n_symbols", 10), kwargs.get("max_len", 8)
        return {"arch": "encoder_decoder", "d_vocab": N_SPECIAL + n_symbols, "n_ctx": max_len + 1,
                "pad_token_id": PAD, "bos_token_id": BOS, "eos_token_id": EOS}
    if name == "induction":
        return {"arch": "decoder", "d_vocab": N_SPECIAL + kwargs.get("n_symbols", 32),
                "n_ctx": kwargs.get("length", 48), "bos_token_id": BOS, "pad_token_id": PAD}
    if name == "associative_recall":
        return {"arch": "decoder", "d_vocab": N_SPECIAL + kwargs.get("n_keys", 8) + kwargs.get("n_values", 8),
                "n_ctx": 2 * kwargs.get("n_pairs", 4) + 1}
    if name == "majority":
        n_classes = kwargs.get("n_classes", 4)
        return {"arch": "encoder", "head": "classifier", "d_vocab": n_classes + 1, "d_vocab_out": n_classes,
                "n_ctx": kwargs.get("length", 16) + 1, "pool": "cls"}
    raise ValueError(f"task={name!r} is not one of {TASKS}")

