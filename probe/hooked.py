"""HookedModel: TransformerLens' `HookedRootModule` with the conveniences every probe model shares.

- `run_with_cache` returns a real `transformer_lens.ActivationCache`;
- hook names are checked: an unknown name raises a KeyError listing the closest real names;
- `is_hooked(hook_point)` tells a module whether anyone is looking (attention uses it to pick the fused path);
- `save(dir)` writes safetensors + JSON (see `probe.checkpoint`), `probe.load(dir)` reads it back.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformer_lens import ActivationCache, FactoredMatrix, HookedRootModule
from transformer_lens.hook_points import HookPoint

from probe import cpu_memory


def is_hooked(hook_point: HookPoint) -> bool:
    """True when a forward or backward hook is attached to `hook_point`."""
    return bool(hook_point._forward_hooks or hook_point._backward_hooks)


class HookedModel(HookedRootModule):
    """Base class of probe's models. Subclasses build their modules, then call `self.setup()`."""

    cfg: Any

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ---- hook names -------------------------------------------------------------------------------------------
    def check_hook_name(self, name: str) -> None:
        if name not in self.hook_dict:
            close = difflib.get_close_matches(name, list(self.hook_dict), n=5, cutoff=0.5)
            hint = f"; closest: {close}" if close else f"; hook names look like {list(self.hook_dict)[:4]}"
            raise KeyError(f"{type(self).__name__} has no hook named {name!r}{hint}")

    def _check_names(self, names: Any) -> None:
        if isinstance(names, str):
            self.check_hook_name(names)
        elif isinstance(names, Sequence) and not callable(names):
            for name in names:
                self._check_names(name)

    def add_hook(self, name, hook, dir="fwd", is_permanent=False, level=None, prepend=False) -> None:
        if isinstance(name, str):
            self.check_hook_name(name)
        super().add_hook(name, hook, dir=dir, is_permanent=is_permanent, level=level, prepend=prepend)

    def _enable_hook_with_name(self, name: str, hook: Callable, dir: str) -> None:  # run_with_hooks, hooks()
        self.check_hook_name(name)
        super()._enable_hook_with_name(name=name, hook=hook, dir=dir)

    def run_with_cache(self, *args: Any, names_filter: Any = None, **kwargs: Any) -> tuple[Any, ActivationCache]:
        """Run the model and return `(output, ActivationCache)`; `names_filter` as in TransformerLens."""
        self._check_names(names_filter)
        param = next(self.parameters(), None)
        if param is None or param.device.type == "cpu":
            cpu_memory.for_caching()  # reuse freed activation memory across calls (see probe/cpu_memory.py)
        out, cache = super().run_with_cache(*args, names_filter=names_filter, **kwargs)
        return out, ActivationCache(cache, self, has_batch_dim=not kwargs.get("remove_batch_dim", False))

    def hook_names(self, filter: Callable[[str], bool] | None = None) -> list[str]:
        return [n for n in self.hook_dict if filter is None or filter(n)]

    # ---- weights in TransformerLens' layout, stacked over layers ----------------------------------------------------
    @property
    def weight_blocks(self) -> torch.nn.ModuleList:
        """The blocks whose weights W_Q ... W_out stack (an encoder-decoder's decoder)."""
        return self.blocks

    def _stack(self, module: str, name: str) -> torch.Tensor:
        return torch.stack([getattr(getattr(block, module), name) for block in self.weight_blocks])

    W_Q = property(lambda self: self._stack("attn", "W_Q"), doc="[layer, head, d_model, d_head]")
    W_K = property(lambda self: self._stack("attn", "W_K"), doc="[layer, head, d_model, d_head]")
    W_V = property(lambda self: self._stack("attn", "W_V"), doc="[layer, head, d_model, d_head]")
    W_O = property(lambda self: self._stack("attn", "W_O"), doc="[layer, head, d_head, d_model]")
    b_Q = property(lambda self: self._stack("attn", "b_Q"))
    b_K = property(lambda self: self._stack("attn", "b_K"))
    b_V = property(lambda self: self._stack("attn", "b_V"))
    b_O = property(lambda self: self._stack("attn", "b_O"))
    W_in = property(lambda self: self._stack("mlp", "W_in"))
    W_out = property(lambda self: self._stack("mlp", "W_out"))
    b_in = property(lambda self: self._stack("mlp", "b_in"))
    b_out = property(lambda self: self._stack("mlp", "b_out"))

    @property
    def OV(self) -> FactoredMatrix:
        """Per-layer, per-head OV circuit W_V W_O: [n_layers, n_heads, d_model, d_model]."""
        return FactoredMatrix(self.W_V, self.W_O)

    @property
    def QK(self) -> FactoredMatrix:
        """Per-layer, per-head QK circuit W_Q W_K^T: [n_layers, n_heads, d_model, d_model]."""
        return FactoredMatrix(self.W_Q, self.W_K.transpose(-2, -1))

    # ---- what TransformerLens' ActivationCache helpers call on a model with `blocks` and `W_U` ------------------
    def accumulated_bias(self, layer: int, mlp_input: bool = False, include_mlp_biases: bool = True) -> torch.Tensor:
        """Sum of the attention (and MLP) output biases written to the residual stream before `layer`
        (and this layer's attention bias too with `mlp_input`)."""
        bias = torch.zeros(self.cfg.d_model, device=self.device)
        for block in self.blocks[:layer]:
            bias = bias + block.attn.b_O
            if include_mlp_biases and not self.cfg.attn_only:
                bias = bias + block.mlp.b_out
        if mlp_input:
            bias = bias + self.blocks[layer].attn.b_O
        return bias

    def tokens_to_residual_directions(self, tokens: int | str | torch.Tensor) -> torch.Tensor:
        """The unembedding direction of each token (or class): [d_model] for one, [..., d_model] for a tensor."""
        if isinstance(tokens, str):
            tokens = self.to_single_token(tokens)
        if isinstance(tokens, int) or (isinstance(tokens, torch.Tensor) and tokens.ndim == 0):
            return self.W_U[:, tokens]
        return self.W_U[:, tokens].movedim(0, -1)

    # ---- checkpoints --------------------------------------------------------------------------------------------
    def save(self, path: str | Path, meta: dict | None = None, tokenizer: Any = None) -> Path:
        from probe.checkpoint import save

        return save(self, path, meta=meta, tokenizer=tokenizer)

    def to(self, *args: Any, **kwargs: Any):
        """Move the model and keep `cfg.device` in step (TransformerLens' tools read it)."""
        out = super().to(*args, **kwargs)
        if hasattr(self.cfg, "device"):
            self.cfg.device = str(self.device)
        return out
