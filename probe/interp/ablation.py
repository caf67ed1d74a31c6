"""Head ablation: zero, mean and resample ablation of several attention heads at once (Olsson et al. 2022,
"In-context Learning and Induction Heads", sec. on ablations; Chan et al. 2022, "Causal scrubbing", for resampling;
Wang et al. 2023, IOI, for mean ablation), through forward hooks on each head's `hook_z`, and the loss at every
position to read the effect.

- zero: the head's z is 0 at every position;
- mean: z is replaced by its mean over a reference batch at the same position (keeps the head's average output);
- resample: z comes from the same head on another input (example i takes reference example perm[i]), at the
  same positions.

`reference` holds inputs of the same shape per example as the ablated run (e.g. `random_like`); `heads` are
(stack, layer, head) triples, stack as in `probe.interp.components.stacks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from probe.interp.components import get_stack

METHODS = ("zero", "mean", "resample")
Head = tuple[str, int, int]


def ablation_hooks(
    model: nn.Module, heads: Sequence[Head], method: str = "zero", reference: dict[str, Tensor] | None = None,
    seed: int = 0, batch: int = 1,
) -> list[tuple[str, Callable]]:
    """Forward hooks (for `model.run_with_hooks(..., fwd_hooks=...)`) that ablate every head in `heads` of an input
    batch of size `batch` by `method`. mean / resample read their values from `reference`."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    if method != "zero" and reference is None:
        raise ValueError(f"method={method!r} needs a reference batch of inputs (e.g. from random_like)")
    by_hook: dict[str, list[int]] = {}
    for stack_name, layer, head in heads:
        stack = get_stack(model, stack_name)
        if not (0 <= layer < stack.n_layers and 0 <= head < stack.n_heads):
            raise ValueError(f"head ({stack_name!r}, {layer}, {head}) is outside the {stack.name} stack's "
                             f"{stack.n_layers} layers x {stack.n_heads} heads")
        by_hook.setdefault(stack.attn_hook(layer, "hook_z"), []).append(head)
    values: dict[str, Tensor] = {}
    if method != "zero":
        with torch.no_grad():
            _, cache = model.run_with_cache(**reference, names_filter=list(by_hook))
        n_ref = next(iter(reference.values())).shape[0]
        gen = torch.Generator().manual_seed(seed)
        pick = torch.randint(n_ref, (batch,), generator=gen)
        for name in by_hook:
            z = cache[name]  # [ref pos head d_head]
            values[name] = z.mean(0, keepdim=True).expand(batch, *z.shape[1:]) if method == "mean" else z[pick]

    def make(name: str, idx: list[int]) -> Callable:
        def hook(z: Tensor, hook=None) -> Tensor:
            z = z.clone()
            if method == "zero":
                z[:, :, idx] = 0.0
            else:
                new = values[name].to(z.device, z.dtype)
                if new.shape != z.shape:
                    raise ValueError(f"{name}: the reference gives {tuple(new.shape)} but the run has "
                                     f"{tuple(z.shape)}; make the reference inputs the same length")
                z[:, :, idx] = new[:, :, idx]
            return z

        return hook

    return [(name, make(name, idx)) for name, idx in by_hook.items()]


def loss_by_position(model: nn.Module, inputs: dict[str, Tensor], logits: Tensor) -> Float[Tensor, "batch pos"]:
    """Next-token cross-entropy at every position of a language model's output: position t predicts token t+1 of
    `tokens` (decoder) or of `tgt` (encoder-decoder), as the model's own loss does; [batch, pos - 1]."""
    cfg = model.cfg
    if getattr(cfg, "kind", "") != "transformer" or cfg.head != "lm" or cfg.arch == "encoder":
        raise ValueError("loss by position needs a language model (a decoder or an encoder-decoder with head='lm')")
    targets = inputs["tgt" if cfg.arch == "encoder_decoder" else "tokens"]
    return F.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets[:, 1:].to(logits.device),
                           reduction="none")


def random_like(model: nn.Module, inputs: dict[str, Tensor], n: int, seed: int = 0,
                keep: Sequence[int] = ()) -> dict[str, Tensor]:
    """A reference batch of `n` token inputs shaped like the first example of `inputs`: uniform random ids, except
    that ids in `keep` (e.g. bos / pad / eos) stay where they are and are never drawn. Images are refused: pass real
    images (e.g. a test set) as the reference instead."""
    gen = torch.Generator().manual_seed(seed)
    vocab = torch.tensor([i for i in range(model.cfg.d_vocab) if i not in set(keep)])
    out = {}
    for key, x in inputs.items():
        if x.is_floating_point():
            raise ValueError(f"random_like makes token ids; {key!r} holds floats (images): pass real images")
        ex = x[:1].expand(n, -1)
        draw = vocab[torch.randint(len(vocab), ex.shape, generator=gen)].to(x.device)
        fixed = torch.isin(ex, torch.tensor(list(keep), dtype=x.dtype, device=x.device))
        out[key] = torch.where(fixed, ex, draw)
    return out
