"""Activation patching (Meng et al. 2022, ROME; Wang et al. 2023, IOI) through `transformer_lens.patching`, and
attribution patching, its gradient estimate (Nanda 2023, "Attribution Patching: Activation Patching At Industrial
Scale"; Syed et al. 2023).

Exact patching runs the corrupted input once per (layer, head) or (layer, position) with that one activation taken
from the clean run, and reads the metric: `effect = metric(patched) - metric(corrupted)`. Attribution patching
estimates every effect at once from one clean forward, one corrupted forward and one backward:
`effect ~ (a_clean - a_corrupted) . d metric / d a` at the corrupted activations (the denoising convention of
TransformerLens' `attribution_patch`). Where the two disagree, the metric is not linear in that activation.

Heads are patched through `hook_z` at every position (TransformerLens' `get_act_patch_attn_head_out_all_pos`),
positions through `hook_resid_pre` (`get_act_patch_resid_pre`). TransformerLens' sweeps call
`model.run_with_hooks(tokens, ...)` on "blocks.{L}" names; `_StackView` lets the same sweeps run on an encoder-decoder
stack (other inputs held fixed) and on a ViT (whose positions are patches, not pixels).
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens import patching
from transformer_lens.tools.analysis._model_state import require_eval_mode
from transformer_lens.utilities import get_act_name

from probe.interp.components import Stack, get_stack

Metric = Callable[[Tensor], Tensor]
WHAT = {"heads": ("z", "hook_z", patching.layer_head_vector_patch_setter),
        "resid": ("resid_pre", "hook_resid_pre", patching.layer_pos_patch_setter)}


def logit_diff_metric(answer: int, wrong: int | None = None, pos: int | None = -1) -> Metric:
    """metric(logits) = logit of `answer` minus logit of `wrong` (or the answer's logit alone), at position `pos` of
    [batch, pos, vocab] logits (ignored for [batch, class] logits), averaged over the batch."""

    def metric(logits: Tensor) -> Tensor:
        at = logits[:, pos] if logits.ndim == 3 else logits
        out = at[:, answer] - (at[:, wrong] if wrong is not None else 0.0)
        return out.float().mean()

    return metric


def loss_metric(labels: Tensor) -> Metric:
    """metric(logits) = mean cross-entropy against `labels` ([batch, pos] or [batch], -100 ignored)."""

    def metric(logits: Tensor) -> Tensor:
        return F.cross_entropy(logits.flatten(0, -2).float(), labels.to(logits.device).flatten(), ignore_index=-100)

    return metric


def _positions(model: nn.Module, inputs: dict[str, Tensor], stack: Stack) -> int:
    if stack.queries == "images":
        images = inputs["images"]
        return (images.shape[-2] // model.cfg.patch_size) * (images.shape[-1] // model.cfg.patch_size) + 1
    return inputs[stack.queries].shape[1]


class _StackView:
    """What `transformer_lens.patching.generic_activation_patch` reads from a model, for any stack: `cfg`
    (n_layers, n_heads, device) and `run_with_hooks(x, fwd_hooks)`, where x is the patched input and the
    TransformerLens names "blocks.{L}.attn.*" / "blocks.{L}.*" are renamed to the stack's."""

    def __init__(self, model: nn.Module, stack: Stack, inputs: dict[str, Tensor], key: str) -> None:
        self.model, self.stack, self.inputs, self.key = model, stack, inputs, key
        device = str(next(model.parameters()).device)
        self.cfg = SimpleNamespace(n_layers=stack.n_layers, n_heads=stack.n_heads, n_key_value_heads=None,
                                   device=device)

    def rename(self, name: str) -> str:
        _, layer, rest = name.split(".", 2)
        if rest.startswith("attn."):
            return self.stack.attn_hook(int(layer), rest.removeprefix("attn."))
        return self.stack.block_hook(int(layer), rest)

    def run_with_hooks(self, x: Tensor, fwd_hooks: list) -> Tensor:
        hooks = [(self.rename(name), fn) for name, fn in fwd_hooks]
        return self.model.run_with_hooks(**{**self.inputs, self.key: x}, fwd_hooks=hooks)


def _names(st: Stack, what: str) -> list[str]:
    hook = WHAT[what][1]
    layers = range(st.n_layers)
    return [st.attn_hook(layer, hook) if what == "heads" else st.block_hook(layer, hook) for layer in layers]


def _check_pair(clean: dict[str, Tensor], corrupted: dict[str, Tensor]) -> str:
    """The one input that differs between clean and corrupted (the patched one); shapes must match."""
    if set(clean) != set(corrupted):
        raise ValueError(f"clean has inputs {sorted(clean)} but corrupted has {sorted(corrupted)}; give the same keys")
    for k in clean:
        if clean[k].shape != corrupted[k].shape:
            raise ValueError(f"clean[{k!r}] has shape {tuple(clean[k].shape)} but corrupted[{k!r}] has "
                             f"{tuple(corrupted[k].shape)}: patching needs position-aligned inputs of equal length")
    differ = [k for k in clean if not torch.equal(clean[k], corrupted[k])]
    if len(differ) > 1:
        raise ValueError(f"clean and corrupted differ in {differ}; corrupt one input and keep the others equal")
    return differ[0] if differ else next(iter(clean))


@torch.no_grad()
def activation_patching(
    model: nn.Module, clean: dict[str, Tensor], corrupted: dict[str, Tensor], metric: Metric, what: str = "heads",
    stack: str | None = None,
) -> Float[Tensor, "layer index"]:
    """Exact activation patching: metric of the corrupted run with one activation from the clean run, for every
    (layer, head) (`what="heads"`: that head's hook_z at every position) or every (layer, position)
    (`what="resid"`: hook_resid_pre at that position) of `stack`. Returns [layer, head] or [layer, pos]."""
    if what not in WHAT:
        raise ValueError(f"what={what!r} is not one of {list(WHAT)}")
    require_eval_mode(model, operation="activation patching")
    st = get_stack(model, stack)
    key = _check_pair(clean, corrupted)
    act, _, setter = WHAT[what]
    names = _names(st, what)
    _, cache = model.run_with_cache(**clean, names_filter=names)
    view = _StackView(model, st, corrupted, key)
    tl_cache = {get_act_name(act, layer): cache[name] for layer, name in enumerate(names)}
    width = st.n_heads if what == "heads" else _positions(model, corrupted, st)
    index = patching.make_df_from_ranges([st.n_layers, width], ["layer", "head" if what == "heads" else "pos"])
    out = patching.generic_activation_patch(view, corrupted[key], tl_cache, metric, setter, act, index_df=index)
    return out.reshape(st.n_layers, width).cpu()


def attribution_patching(
    model: nn.Module, clean: dict[str, Tensor], corrupted: dict[str, Tensor], metric: Metric, what: str = "heads",
    stack: str | None = None,
) -> Float[Tensor, "layer index"]:
    """Attribution patching: the first-order estimate of `activation_patching`'s effect (patched minus corrupted
    metric), (a_clean - a_corrupted) . grad, with the gradient of the metric at the corrupted run. Same shapes.
    Parameters' .grad are left untouched (torch.autograd.grad on the activations only)."""
    if what not in WHAT:
        raise ValueError(f"what={what!r} is not one of {list(WHAT)}")
    require_eval_mode(model, operation="attribution patching")
    st = get_stack(model, stack)
    _check_pair(clean, corrupted)
    names = _names(st, what)
    with torch.no_grad():
        _, clean_cache = model.run_with_cache(**clean, names_filter=names)
    acts: dict[str, Tensor] = {}

    def keep(act: Tensor, hook: Any) -> Tensor:
        if not act.requires_grad:  # a model without trainable parameters upstream
            act = act.detach().requires_grad_(True)
        acts[hook.name] = act
        return act

    with torch.enable_grad():
        value = metric(model.run_with_hooks(**corrupted, fwd_hooks=[(n, keep) for n in names]))
        grads = torch.autograd.grad(value, [acts[n] for n in names])
    rows = []
    for name, grad in zip(names, grads):
        contrib = (clean_cache[name] - acts[name].detach()) * grad  # [batch pos head d_head] or [batch pos d_model]
        rows.append(contrib.sum((0, 1, 3)) if what == "heads" else contrib.sum((0, 2)))
    return torch.stack(rows).detach().float().cpu()
