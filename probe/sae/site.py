"""Where an SAE reads: one hook point of a probe model, and how its activation becomes rows of vectors and back.

Every hook of probe's models has one of these layouts (ARCHITECTURE.md, hook names); an SAE sees one row per
example and position, its input the remaining axes flattened:

    [batch d_model]                  hook_pooled, head.hook_pre_logits          rows: b
    [batch pos d]                    residual stream, MLP, norms, embeddings    rows: (b pos)
    [batch pos head d_head]          attn.hook_q|k|v|z|phi_q|phi_k|result       rows: (b pos), input (head d_head)
    [batch head pos d_head d_phi]    linear attention's attn.hook_fast_weight   rows: (b pos), input (head d_head d_phi)
    [batch channel height width]     the CNN's feature maps                     rows: (b height width)

Per-head layouts read every head concatenated (as attention-output SAEs on hook_z do, Kissane et al. 2024) or one
head (`head=h`). Attention patterns and scores have no fixed feature axis and are refused.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from einops import rearrange
from torch import Tensor

LAYOUTS = {  # layout -> (its axes, the rows it becomes)
    "b d": ("b d", "b d"),
    "b p d": ("b p d", "(b p) d"),
    "b p h e": ("b p h e", "(b p) (h e)"),
    "b h p e f": ("b h p e f", "(b p) (h e f)"),
    "b d y x": ("b d y x", "(b y x) d"),
}
HEAD_AXIS = {"b p h e": 2, "b h p e f": 1}
REFUSED = ("hook_pattern", "hook_attn_scores")


class Site:
    """`Site(model, "blocks.0.hook_resid_post")`, or `head=h` for one head of a per-head hook.

    `read(batch)` runs the model and returns the hook's activation; `rows(act)` [n d_in], `put(act, rows)` the
    activation with the site's part replaced by `rows`; `positions(act)` rows per example (rows are ordered example
    by example, positions row-major)."""

    def __init__(self, model: Any, hook: str, head: int | None = None) -> None:
        if not hasattr(model, "hook_dict"):
            raise TypeError(f"model must be a probe model with hook points, got {type(model).__name__}")
        if hook not in model.hook_dict:
            model.check_hook_name(hook)  # raises, naming the closest hooks
        if hook.endswith(REFUSED):
            raise ValueError(f"{hook} is [batch head query_pos key_pos]: it has no fixed feature axis for an SAE; "
                             "read hook_z, hook_result, the residual stream or hook_fast_weight instead")
        self.model, self.hook, self.head = model, hook, head
        self.cnn = getattr(getattr(model, "cfg", None), "kind", "") == "cnn"

    def layout(self, act: Tensor) -> str:
        if act.ndim == 4:
            layout = "b d y x" if self.cnn else "b p h e"
        else:
            layout = {2: "b d", 3: "b p d", 5: "b h p e f"}.get(act.ndim)
        if layout is None:
            raise ValueError(f"{self.hook} has shape {tuple(act.shape)}, which is none of the layouts an SAE reads "
                             f"({list(LAYOUTS)})")
        if self.head is not None:
            if layout not in HEAD_AXIS:
                raise ValueError(f"head={self.head} given, but {self.hook} [{layout}] has no head axis")
            n_heads = act.shape[HEAD_AXIS[layout]]
            if not 0 <= self.head < n_heads:
                raise ValueError(f"head={self.head} is out of range: {self.hook} has {n_heads} heads")
        return layout

    def _patterns(self, act: Tensor) -> tuple[str, str, Tensor]:
        layout = self.layout(act)
        src, dst = LAYOUTS[layout]
        if self.head is None:
            return src, dst, act
        return src.replace("h ", ""), dst.replace("h ", ""), act.select(HEAD_AXIS[layout], self.head)

    def rows(self, act: Tensor) -> Tensor:
        src, dst, part = self._patterns(act)
        return rearrange(part, f"{src} -> {dst}")

    def put(self, act: Tensor, rows: Tensor) -> Tensor:
        src, dst, part = self._patterns(act)
        sizes = dict(zip(src.split(), part.shape))
        back = rearrange(rows.to(act.dtype), f"{dst} -> {src}", **sizes)
        if self.head is None:
            return back
        out = act.clone()
        out.select(HEAD_AXIS[self.layout(act)], self.head).copy_(back)
        return out

    def positions(self, act: Tensor) -> int:
        src, dst, part = self._patterns(act)
        sizes = dict(zip(src.split(), part.shape))
        group = dst.split(")")[0].strip("(").split() if dst.startswith("(") else ["b"]
        return math.prod(sizes[a] for a in group if a != "b")

    @torch.no_grad()
    def read(self, batch: dict[str, Tensor]) -> Tensor:
        """The hook's activation on `batch` (the model's keyword inputs), dropout off."""
        was_training = self.model.training
        self.model.eval()
        try:
            _, cache = self.model.run_with_cache(**batch, return_type=None, names_filter=[self.hook])
        finally:
            self.model.train(was_training)
        return cache[self.hook]

    def __repr__(self) -> str:
        return f"Site({self.hook!r}" + (f", head={self.head})" if self.head is not None else ")")
