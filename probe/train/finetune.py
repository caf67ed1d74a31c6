"""Fine-tuning a pretrained model under a new head, with ULMFiT's gradual unfreezing (Howard & Ruder 2018, sec. 3.3).

Seed 002 ("Universal Language Model Fine-tuning for Text Classification"): pretrain a language model, fine-tune it on
the target task, and train the classifier "gradually unfreezing the layers to avoid catastrophic forgetting"; the seed
adds that Transformers usually fine-tune all layers at once instead.

- `load_body(model, pretrained)` copies every pretrained tensor into `model` except the head (`unembed.*`), and
  refuses a body whose names or shapes differ (nothing is loaded partially by accident).
- `layer_groups(model)` lists parameter names from the output down: the head, then each block (the last one with
  `ln_final`), then the embeddings: ULMFiT's "layers".
- `GradualUnfreezing(groups, every)` is a Trainer callback: before the first step only the first group (the head)
  trains; every `every` steps the next group down joins. Frozen parameters have `requires_grad=False`, so they get
  no gradient and the optimizer (built with every parameter before the first step) skips them. After training
  every parameter trains again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from torch import nn

from probe.train.callbacks import Callback

if TYPE_CHECKING:
    from probe.train.trainer import Trainer

HEAD = ("unembed.",)
_LAYER = re.compile(r"^(?:blocks|layers)\.(\d+)\.")


def load_body(model: nn.Module, pretrained: nn.Module, skip: Sequence[str] = HEAD) -> list[str]:
    """Copy `pretrained`'s tensors into `model`, except names starting with a prefix in `skip`; return the names
    copied. Every other tensor of `model` must exist in `pretrained` with the same shape."""
    source, target = pretrained.state_dict(), model.state_dict()
    names = [n for n in target if not n.startswith(tuple(skip))]
    missing = [n for n in names if n not in source]
    wrong = [f"{n} {tuple(source[n].shape)} -> {tuple(target[n].shape)}" for n in names
             if n in source and source[n].shape != target[n].shape]
    if missing or wrong:
        raise ValueError(f"load_body: the pretrained model does not match the new body: missing {missing[:6]}, "
                         f"shapes differ {wrong[:6]}; only names starting with {tuple(skip)} may differ")
    model.load_state_dict({n: source[n] for n in names}, strict=False)
    return names


def layer_groups(model: nn.Module) -> list[list[str]]:
    """Parameter names grouped from the output down: [head], [last block + ln_final], ..., [block 0], [embeddings]."""
    named = [n for n, _ in model.named_parameters()]
    layers = sorted({int(m.group(1)) for n in named if (m := _LAYER.match(n))})
    head = [n for n in named if n.startswith(HEAD)]
    blocks = [[n for n in named if (m := _LAYER.match(n)) and int(m.group(1)) == i] for i in reversed(layers)]
    if blocks:
        blocks[0] += [n for n in named if n.startswith("ln_final.")]
    grouped = set(head).union(*blocks)
    rest = [n for n in named if n not in grouped]
    return [g for g in [head, *blocks, rest] if g]


class GradualUnfreezing(Callback):
    """Train only `groups[0]` at first; at steps `every`, 2 `every`, ... unfreeze the next group (ULMFiT sec. 3.3)."""

    def __init__(self, groups: Sequence[Sequence[str]], every: int) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every={every!r} must be an integer >= 1")
        if not groups or any(not g for g in groups):
            raise ValueError("groups must be a non-empty list of non-empty lists of parameter names")
        self.groups = [list(g) for g in groups]
        self.every = every
        self.stage = 0

    def _check(self, model: nn.Module) -> None:
        named = [n for n, _ in model.named_parameters()]
        listed = [n for g in self.groups for n in g]
        twice = sorted({n for n in listed if listed.count(n) > 1})
        unknown = sorted(set(listed) - set(named))
        absent = [n for n in named if n not in set(listed)]
        if twice or unknown or absent:
            raise ValueError(f"GradualUnfreezing groups must list every parameter once: in two groups {twice[:4]}, "
                             f"not in the model {unknown[:4]}, in no group {absent[:4]}")

    def on_step(self, trainer: Trainer, step: int) -> None:
        if step == 0:
            self._check(trainer.model)
        self.stage = min(step // self.every + 1, len(self.groups))
        trainable = {n for g in self.groups[: self.stage] for n in g}
        for name, param in trainer.model.named_parameters():
            param.requires_grad_(name in trainable)

    def on_end(self, trainer: Trainer) -> None:
        for param in trainer.model.parameters():
            param.requires_grad_(True)
