"""HookedModel: TransformerLens' `HookedRootModule` with the conveniences every probe model shares.

- `HookPoint`: TransformerLens' hook point that refuses a hook's return of another shape than its input, naming the
  hook (a hook edits an activation, it never silently truncates the sequence); the check runs only inside a hook;
- `run_with_cache` returns a real `transformer_lens.ActivationCache`;
- hook names are checked: an unknown name raises a KeyError listing the closest real names;
- `is_hooked(hook_point)` tells a module whether anyone is looking, through a TransformerLens hook or an nnsight
  trace (attention, norms and per-head results use it to pick the fused path, so looking costs nothing until someone
  looks, whichever tool looks);
- optional hook points (`HookPoint(flag=...)`: `attn.hook_attn_in`, `attn.hook_q_input|hook_k_input|hook_v_input`,
  `hook_mlp_in`) fire only when their TransformerLens config flag is on; `set_use_*` switch the flags as
  TransformerLens' `set_use_*` do, and a hook on a point whose flag is off is refused, naming the setter;
- a model keeps its own copy of the config it was given (moving it updates that copy's `device`, which
  TransformerLens' tools read, never the caller's object) and draws its initial weights from `init_generator(cfg)`;
- weight views in TransformerLens' layout: `AttentionWeights` gives every attention module (softmax or linear,
  self or cross) `OV` and `QK` as `FactoredMatrix`; the model stacks W_Q ... W_out over layers, with `OV`/`QK` too;
- `output(...)`: what `forward` returns for a `return_type`, shared by every model;
- `save(dir)` writes safetensors + JSON (see `probe.checkpoint`), `probe.load(dir)` reads it back.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from transformer_lens import ActivationCache, FactoredMatrix, HookedRootModule
from transformer_lens import hook_points as tl_hook_points

from probe import cpu_memory
from probe.ops.loss import cross_entropy

RETURN_TYPES = ("logits", "loss", "both", None)


class HookPoint(tl_hook_points.HookPoint):
    """TransformerLens' `HookPoint`; a hook may return None (observe) or a tensor of its input's shape (edit),
    anything else raises naming the hook. Only hooks pay for the check: with none attached the point is free.

    `flag`: the config flag (e.g. "use_split_qkv_input") without which the point never fires (TransformerLens'
    optional hooks); the model refuses a hook on it while the flag is off."""

    def __init__(self, flag: str | None = None) -> None:
        super().__init__()
        self.flag = flag

    def add_hook(self, hook: Callable, dir: str = "fwd", is_permanent: bool = False, level: int | None = None,
                 prepend: bool = False, alias_names: list[str] | None = None) -> tl_hook_points.LensHandle:
        user_hook = hook

        @functools.wraps(user_hook)
        def checked(tensor: Tensor, *, hook: Any) -> Any:
            out = user_hook(tensor, hook=hook)
            value = out[0] if isinstance(out, tuple) and len(out) == 1 else out
            if value is not None and (not isinstance(value, Tensor) or value.shape != tensor.shape):
                got = f"shape {tuple(value.shape)}" if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"the {dir} hook on {hook.name!r} returned {got}, but {hook.name} has shape "
                                 f"{tuple(tensor.shape)}: a hook returns None or a tensor of its input's shape")
            return out

        handle = super().add_hook(checked, dir=dir, is_permanent=is_permanent, level=level, prepend=prepend,
                                  alias_names=alias_names)
        handle.user_hook = user_hook
        return handle


def is_hooked(hook_point: HookPoint) -> bool:
    """True when anyone looks at `hook_point`: a forward or backward hook is attached, or an nnsight trace reads or
    edits it (`nnsight_looks`)."""
    return bool(hook_point._forward_hooks or hook_point._backward_hooks) or nnsight_looks(hook_point)


NNSIGHT_STATE = "__nnsight__"  # nnsight.intervention.source.STATE


def nnsight_looks(module: torch.nn.Module) -> bool:
    """True when a running nnsight trace waits for this module's input or output, or caches it.

    nnsight (0.8) wraps a module by putting a `State` into `module.__dict__["__nnsight__"]` (and a `Controller` as its
    forward); no torch hook is attached. During a trace `State.active()` returns the trace's interleaver, whose
    `parked` set holds the location each intervention waits for next ("model.blocks.1.attn.hook_pattern.output") and
    whose `observers` holds what `tracer.cache()` records. A module asks just before it would compute the value: an
    intervention that reads this point has by then been served everything the forward produced before it, so it waits
    here. Unwrapped modules pay one dict lookup; an nnsight this code does not know counts as looking (the observable
    path gives the same results, only slower)."""
    state = module.__dict__.get(NNSIGHT_STATE)
    if state is None:
        return False
    try:
        interleaver, _, locations = state.active()
        if interleaver is None:
            return False
        return any(loc in interleaver.parked or loc in interleaver.observers for loc in locations)
    except (AttributeError, TypeError, ValueError):
        return True


def init_generator(cfg: Any) -> torch.Generator | None:
    """The generator a model draws its initial weights from: a local one seeded with `cfg.seed`, or None (the
    global RNG, PyTorch's default) when no seed is set. Never reseeds the global RNG."""
    seed = getattr(cfg, "seed", None)
    return None if seed is None else torch.Generator().manual_seed(seed)


def check_return_type(return_type: str | None) -> None:
    if return_type not in RETURN_TYPES:
        raise ValueError(f"return_type={return_type!r} is not one of {RETURN_TYPES}")


def output(logits: Tensor, return_type: str | None, loss: Callable[[], Tensor]) -> Any:
    """What a model's forward returns: logits, the loss, (logits, loss) or None; `loss()` runs only if needed."""
    if return_type in ("logits", None):
        return logits if return_type else None
    value = loss()
    return value if return_type == "loss" else (logits, value)


def expand_kv_heads(W: Tensor, n_heads: int) -> Tensor:
    """Grouped-query attention keeps n_kv key/value heads on axis -3; query head h reads kv head
    h // (n_heads // n_kv) (TransformerLens' `_expand_kv_heads`): repeat each up to n_heads."""
    return W if W.shape[-3] == n_heads else W.repeat_interleave(n_heads // W.shape[-3], dim=-3)


class AttentionWeights:
    """The circuits `OV` and `QK` as TransformerLens' `FactoredMatrix`, for anything with W_Q, W_K, W_V
    [..., head (kv_head for K, V), d_model, d_head] and W_O [..., head, d_head, d_model]: one attention layer
    (`model.blocks[L].attn.OV`, softmax or linear attention, self or cross) or a model's stacked weights
    (`model.OV`, [layer, ...])."""

    @property
    def OV(self) -> FactoredMatrix:
        """Per-head OV circuit W_V W_O: [..., n_heads, d_model, d_model]."""
        return FactoredMatrix(expand_kv_heads(self.W_V, self.W_O.shape[-3]), self.W_O)

    @property
    def QK(self) -> FactoredMatrix:
        """Per-head QK circuit W_Q W_K^T: [..., n_heads, d_model, d_model] (for linear attention, the bilinear
        form q.k before the feature map)."""
        return FactoredMatrix(self.W_Q, expand_kv_heads(self.W_K, self.W_Q.shape[-3]).transpose(-2, -1))


class HookedModel(AttentionWeights, HookedRootModule):
    """Base class of probe's models: `super().__init__(cfg)`, build the modules (initial weights from
    `init_generator(self.cfg)`), then `self.setup()`. Subclasses name their `config_class`."""

    config_class: type
    cfg: Any

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        if not isinstance(cfg, self.config_class):
            raise TypeError(f"cfg must be a probe.{self.config_class.__name__}, got {type(cfg).__name__}")
        self.cfg = copy.deepcopy(cfg)  # the model's own: moving the model updates it, never the caller's config

    @staticmethod
    def class_loss(logits: Tensor, labels: Tensor | None, label_smoothing: float = 0.0) -> Tensor:
        """The loss of a classifier (one label per example): `probe.ops.loss.cross_entropy`."""
        if labels is None:
            raise ValueError("a loss needs labels [batch] of class indices; got labels=None")
        return cross_entropy(logits, labels, label_smoothing)

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

    def hook_fires(self, name: str) -> bool:
        """False for an optional hook point whose config flag is off (it never fires then)."""
        flag = getattr(self.hook_dict[name], "flag", None)
        return flag is None or bool(getattr(self.cfg, flag))

    def check_hook_fires(self, name: str) -> None:
        self.check_hook_name(name)
        if not self.hook_fires(name):
            flag = self.hook_dict[name].flag
            raise ValueError(f"{name} fires only with cfg.{flag}=True (it is False): call model.set_{flag}(True) "
                             "first, as TransformerLens' tools do")

    def _firing(self, names_filter: Callable[[str], bool]) -> Callable[[str], bool]:
        """A name filter (a sweep over hook names) skips optional points whose flag is off, as TransformerLens' does."""
        return lambda name: names_filter(name) and self.hook_fires(name)

    def add_hook(self, name, hook, dir="fwd", is_permanent=False, level=None, prepend=False) -> None:
        if isinstance(name, str):
            self.check_hook_fires(name)
        else:
            name = self._firing(name)
        super().add_hook(name, hook, dir=dir, is_permanent=is_permanent, level=level, prepend=prepend)

    def _enable_hook_with_name(self, name: str, hook: Callable, dir: str) -> None:  # run_with_hooks, hooks()
        self.check_hook_fires(name)
        super()._enable_hook_with_name(name=name, hook=hook, dir=dir)

    def _enable_hooks_for_points(self, hook_points, enabled: Callable, hook: Callable, dir: str) -> None:
        super()._enable_hooks_for_points(hook_points, self._firing(enabled), hook, dir)

    def get_caching_hooks(self, names_filter: Any = None, *args: Any, **kwargs: Any) -> tuple[dict, list, list]:
        if names_filter is None or (callable(names_filter) and not isinstance(names_filter, str)):
            names_filter = self._firing(names_filter or (lambda name: True))
        return super().get_caching_hooks(names_filter, *args, **kwargs)

    # ---- TransformerLens' switches for its optional hooks (its tools call these) ---------------------------------
    def _set_flag(self, flag: str, value: bool) -> None:
        """Set a config flag on the model's own config, after the config's own validation of the new value."""
        if not any(f.name == flag for f in dataclasses.fields(self.cfg)):
            raise ValueError(f"{type(self.cfg).__name__} has no {flag}: {type(self).__name__} has no such hooks")
        dataclasses.replace(self.cfg, **{flag: value})  # raises, naming the field, for a combination it refuses
        setattr(self.cfg, flag, value)

    def set_use_attn_result(self, use_attn_result: bool) -> None:
        """TransformerLens' switch for `attn.hook_result`; probe computes it whenever it is hooked, so this only
        records the flag its tools set and restore."""
        self._set_flag("use_attn_result", use_attn_result)

    def set_use_split_qkv_input(self, use_split_qkv_input: bool) -> None:
        """Each head reads its own copies of the residual stream: `attn.hook_q_input` [batch pos head d_model],
        `attn.hook_k_input` / `hook_v_input` [batch pos kv_head d_model] (before ln1). Excludes use_attn_in."""
        self._set_flag("use_split_qkv_input", use_split_qkv_input)

    def set_use_attn_in(self, use_attn_in: bool) -> None:
        """Each head reads its own copy of the residual stream, `attn.hook_attn_in` [batch pos head d_model]
        (before ln1), for its query, key and value. Excludes use_split_qkv_input."""
        self._set_flag("use_attn_in", use_attn_in)

    def set_use_hook_mlp_in(self, use_hook_mlp_in: bool) -> None:
        """`hook_mlp_in` [batch pos d_model]: the MLP's input before ln2 (a copy of resid_mid)."""
        self._set_flag("use_hook_mlp_in", use_hook_mlp_in)

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

    W_gate = property(lambda self: self._stack("mlp", "W_gate"), doc="[layer, d_model, d_mlp] (gated_mlp only)")
    b_gate = property(lambda self: self._stack("mlp", "b_gate"))

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
        """The direction in the normalised residual stream whose dot product is each token's (or class's) logit:
        [d_model] for one, [..., d_model] for a tensor. That is W_U[:, token] times the final norm's weight, which
        TransformerLens folds into W_U (probe keeps the norm unfolded), so `ActivationCache.logit_attrs` and direct
        logit attribution add up to the logits less b_U and the final LayerNorm's bias b . W_U[:, token]."""
        if isinstance(tokens, str):
            tokens = self.to_single_token(tokens)
        if isinstance(tokens, int) or (isinstance(tokens, torch.Tensor) and tokens.ndim == 0):
            direction = self.W_U[:, tokens]
        else:
            direction = self.W_U[:, tokens].movedim(0, -1)
        weight = getattr(getattr(self, "ln_final", None), "w", None)
        return direction if weight is None else direction * weight

    # ---- checkpoints --------------------------------------------------------------------------------------------
    def save(self, path: str | Path, meta: dict | None = None, tokenizer: Any = None) -> Path:
        from probe.checkpoint import save

        return save(self, path, meta=meta, tokenizer=tokenizer)

    def _apply(self, fn: Callable, recurse: bool = True):
        """Every move (`to`, `cuda`, `cpu`) keeps the model's own `cfg.device` in step (TransformerLens' tools
        read it)."""
        out = super()._apply(fn, recurse)
        if hasattr(self.cfg, "device") and next(self.parameters(), None) is not None:
            self.cfg.device = str(self.device)
        return out
