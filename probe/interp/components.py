"""The attention stacks of a probe model and the hook names of their parts (ARCHITECTURE.md, "Hook names").

A decoder, an encoder and a ViT have one stack, "blocks"; an encoder-decoder has three: "encoder" (self-attention
over the source), "decoder" (causal self-attention over the target) and "cross" (the decoder's attention over the
encoder output). Every interpretability function of `probe.interp` takes a stack name and builds hook names from it,
so the same code runs on every model kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class Stack:
    """One stack of attention layers. `queries` / `keys` name the forward input whose positions the attention
    pattern's rows / columns index ("tokens", "src", "tgt" or "images")."""

    name: str
    label: str
    prefix: str  # blocks | encoder | decoder
    attn: str  # attn | cross_attn
    n_layers: int
    n_heads: int
    queries: str
    keys: str

    def attn_hook(self, layer: int, hook: str) -> str:
        """e.g. attn_hook(1, "hook_z") -> "decoder.1.cross_attn.hook_z"."""
        return f"{self.prefix}.{layer}.{self.attn}.{hook}"

    def block_hook(self, layer: int, hook: str) -> str:
        """e.g. block_hook(0, "hook_resid_pre") -> "encoder.0.hook_resid_pre"."""
        return f"{self.prefix}.{layer}.{hook}"

    def module(self, model: nn.Module, layer: int) -> nn.Module:
        """The attention module of `layer` (its W_Q, W_K, W_V, W_O)."""
        return getattr(getattr(model, self.prefix)[layer], self.attn)

    def head_label(self, layer: int, head: int) -> str:
        prefix = {"blocks": "", "encoder": "enc.", "decoder": "dec.", "cross": "cross."}[self.name]
        return f"{prefix}L{layer}H{head}"


def input_key(model: nn.Module) -> str:
    """The forward argument that carries the model's main input: "tokens", "src" or "images"."""
    cfg = model.cfg
    if getattr(cfg, "kind", "") == "vit":
        return "images"
    return "src" if cfg.arch == "encoder_decoder" else "tokens"


def stacks(model: nn.Module) -> dict[str, Stack]:
    """The model's attention stacks in forward order. Raises ValueError for a model without attention."""
    cfg = model.cfg
    kind = getattr(cfg, "kind", "")
    if kind not in ("transformer", "vit"):
        raise ValueError(f"{type(model).__name__} (kind {kind!r}) has no attention stacks; expected a Transformer "
                         "or a ViT")
    h = cfg.n_heads
    if kind == "vit":
        return {"blocks": Stack("blocks", "self-attention", "blocks", "attn", cfg.n_layers, h, "images", "images")}
    if cfg.arch == "encoder_decoder":
        return {
            "encoder": Stack("encoder", "encoder self-attention", "encoder", "attn", cfg.n_layers, h, "src", "src"),
            "decoder": Stack("decoder", "decoder self-attention", "decoder", "attn", cfg.n_decoder_layers, h,
                             "tgt", "tgt"),
            "cross": Stack("cross", "decoder cross-attention", "decoder", "cross_attn", cfg.n_decoder_layers, h,
                           "tgt", "src"),
        }
    return {"blocks": Stack("blocks", "self-attention", "blocks", "attn", cfg.n_layers, h, "tokens", "tokens")}


def get_stack(model: nn.Module, name: str | None = None) -> Stack:
    """`stacks(model)[name]`; `name=None` is the stack that writes the output's residual stream ("blocks", or
    "decoder" for an encoder-decoder). A clear error lists the valid names."""
    found = stacks(model)
    if name is None:
        name = "decoder" if "decoder" in found else "blocks"
    if name not in found:
        raise ValueError(f"stack={name!r} is not one of {list(found)} for this {type(model).__name__}")
    return found[name]


def output_positions(model: nn.Module, inputs: dict[str, Any]) -> int:
    """Number of positions of the output residual stream (the target for an encoder-decoder, patches + class token
    for a ViT)."""
    stack = get_stack(model)
    if stack.queries == "images":
        images = inputs["images"]
        return (images.shape[-2] // model.cfg.patch_size) * (images.shape[-1] // model.cfg.patch_size) + 1
    return inputs[stack.queries].shape[1]
