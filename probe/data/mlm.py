"""Masked language modelling data: BERT's input masking (Devlin et al. 2019, sec. 3.1 "Task #1: Masked LM").

Seed 003 #20: BERT masks *input tokens*, not attention. `mask_tokens` picks each maskable position with
probability `p` (0.15); of the picked positions 80% become `[MASK]`, 10% a random token and 10% stay unchanged; the
labels hold the original token at picked positions and -100 (not scored) everywhere else. Special tokens (`[PAD]`,
`[BOS]`, ...) and padded positions are never picked; random replacements are drawn from the non-special ids.

`mlm_examples` masks a token table `copies` times with independent draws (BERT duplicated its data 10 times with
different masks, Devlin et al. 2019 appendix A.2; RoBERTa sec. 4.1 calls this static masking), giving the tensors
{"tokens", "labels"} (plus "attention_mask" when given) that `probe.train.DictDataset(**examples)` feeds through the
Trainer to an encoder with a token head (`TransformerConfig(arch="encoder", head="token")`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Int, Shaped
from torch import Tensor

from probe.ops.loss import IGNORE_INDEX as IGNORE


def mask_tokens(
    tokens: Int[Tensor, "batch pos"],
    mask_id: int,
    vocab_size: int,
    special_ids: Sequence[int] = (),
    p: float = 0.15,
    replace: tuple[float, float] = (0.8, 0.1),
    attention_mask: Shaped[Tensor, "batch pos"] | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """(inputs, labels): `tokens` with BERT's masking applied, and the targets (-100 where nothing was picked).

    `replace` = (fraction of picked positions set to `mask_id`, fraction set to a random non-special id); the rest
    keep their token. `special_ids` (and `mask_id`) are never picked nor drawn as replacements.
    """
    if not isinstance(tokens, Tensor) or tokens.dtype != torch.long or tokens.ndim != 2:
        raise ValueError(f"tokens must be an int64 tensor [batch, pos], got {getattr(tokens, 'dtype', tokens)!r} "
                         f"of shape {tuple(getattr(tokens, 'shape', ()))}")
    if not 0.0 < p < 1.0:
        raise ValueError(f"p={p!r} must be in (0, 1)")
    to_mask, to_random = replace
    if not (0.0 <= to_mask and 0.0 <= to_random and to_mask + to_random <= 1.0):
        raise ValueError(f"replace={replace!r} must be two non-negative fractions summing to at most 1")
    specials = sorted({int(s) for s in special_ids} | {int(mask_id)})
    if not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id={mask_id} must be in [0, vocab_size={vocab_size})")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
        raise ValueError(f"tokens hold ids outside [0, vocab_size={vocab_size})")
    ordinary = torch.tensor([i for i in range(vocab_size) if i not in set(specials)], dtype=torch.long)
    if not len(ordinary):
        raise ValueError(f"vocab_size={vocab_size} leaves no non-special id to draw random replacements from")
    maskable = ~torch.isin(tokens, torch.tensor(specials, dtype=torch.long))
    if attention_mask is not None:
        if attention_mask.shape != tokens.shape:
            raise ValueError(f"attention_mask must have shape {tuple(tokens.shape)}, got {tuple(attention_mask.shape)}")
        maskable &= attention_mask.bool()
    u = torch.rand(tokens.shape, generator=generator)
    picked = maskable & (u < p)
    how = torch.rand(tokens.shape, generator=generator)  # which of the three treatments a picked position gets
    random_ids = ordinary[torch.randint(len(ordinary), tokens.shape, generator=generator)]
    inputs = torch.where(picked & (how < to_mask), mask_id, tokens)
    inputs = torch.where(picked & (how >= to_mask) & (how < to_mask + to_random), random_ids, inputs)
    labels = torch.where(picked, tokens, IGNORE)
    return inputs, labels


def mlm_examples(
    tokens: Int[Tensor, "batch pos"],
    mask_id: int,
    vocab_size: int,
    special_ids: Sequence[int] = (),
    copies: int = 1,
    p: float = 0.15,
    attention_mask: Shaped[Tensor, "batch pos"] | None = None,
    seed: int = 0,
) -> dict[str, Tensor]:
    """`copies` independently masked copies of `tokens`: {"tokens": inputs, "labels": targets[, "attention_mask"]}."""
    if not isinstance(copies, int) or copies < 1:
        raise ValueError(f"copies={copies!r} must be an integer >= 1")
    gen = torch.Generator().manual_seed(seed)
    pairs = [mask_tokens(tokens, mask_id, vocab_size, special_ids, p, attention_mask=attention_mask, generator=gen)
             for _ in range(copies)]
    out = {"tokens": torch.cat([i for i, _ in pairs]), "labels": torch.cat([lab for _, lab in pairs])}
    if attention_mask is not None:
        out["attention_mask"] = attention_mask.repeat(copies, 1)
    return out
