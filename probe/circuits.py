"""Circuit measurements on any probe model with TransformerLens hook names and weight views.

- Head detectors (TransformerLens' `head_detector`): `detection_pattern(tokens, kind)` builds the
  previous-token / duplicate-token / induction detection patterns for a whole batch at once, equal row for row to
  `transformer_lens.head_detector.get_*_detection_pattern`; `detector_scores(pattern, tokens, kind)` is
  `detect_head`'s default "mul" score (attention on the detection pattern / all attention) averaged over the batch,
  from one cached forward instead of one forward per prompt.
- Prefix matching (Olsson et al. 2022, "In-context learning and induction heads", §2): on sequences that repeat,
  the attention a head pays from a token to the token *after* that token's earlier occurrences, averaged over the
  query positions that have such an earlier occurrence. An ideal induction head scores 1.
- In-context score (Olsson et al. 2022): the loss on late tokens minus the loss on early tokens of the same
  sequences (negative when the model learns in context). `token_losses` gives the per-token loss it is made of.
- Composition scores (Elhage et al. 2021, "A mathematical framework for transformer circuits", "Composition"):
  ||W_QK^h2 (W_OV^h1)|| / (||W_QK^h2|| ||W_OV^h1||) (Frobenius) for K-composition, and the Q and V analogues,
  computed with TransformerLens' `composition_scores` on the model's per-head factored circuits; and the same score
  for random Gaussian matrices of the same shapes (`random_composition_scores`), the paper's baseline.
- `repeat_accuracy`: how often the model's top prediction is right on chosen (e.g. repeated) tokens.
- `head_ablation_hooks`: mean- or zero-ablate chosen heads' outputs (`hook_z`) for `run_with_hooks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor
from transformer_lens import FactoredMatrix
from transformer_lens.utilities import composition_scores as _tl_composition_scores

HEAD_KINDS = ("previous_token", "duplicate", "induction")
COMPOSITION_MODES = ("Q", "K", "V")


def _check_tokens(tokens: Tensor) -> None:
    if not isinstance(tokens, Tensor) or tokens.ndim != 2:
        shape = tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__
        raise ValueError(f"tokens must be a [batch, pos] tensor of token ids, got {shape}")


def detection_pattern(tokens: Int[Tensor, "batch pos"], kind: str) -> Float[Tensor, "batch qpos kpos"]:
    """The detection pattern of `kind` (one of HEAD_KINDS) for every row of `tokens`: 1 where a head of that kind
    attends from query q to key k, else 0; lower triangular. Same as TransformerLens' `get_{kind}_head_detection
    pattern` (tested equal), batched."""
    _check_tokens(tokens)
    if kind not in HEAD_KINDS:
        raise ValueError(f"kind={kind!r} is not one of {HEAD_KINDS}")
    batch, pos = tokens.shape
    if kind == "previous_token":
        return torch.ones(pos - 1, device=tokens.device).diag_embed(-1).expand(batch, pos, pos).clone()
    eye = torch.eye(pos, dtype=torch.bool, device=tokens.device)
    duplicate = ((tokens[:, :, None] == tokens[:, None, :]) & ~eye).tril()
    if kind == "duplicate":
        return duplicate.float()
    induction = torch.zeros_like(duplicate)
    induction[:, :, 1:] = duplicate[:, :, :-1]  # key k is the token after an earlier occurrence (at k - 1)
    return induction.tril().float()


def detector_scores(pattern: Float[Tensor, "batch head qpos kpos"], tokens: Int[Tensor, "batch pos"],
                    kind: str) -> Float[Tensor, " head"]:
    """TransformerLens' `detect_head(..., error_measure="mul")` score of every head, averaged over the batch:
    per sequence, the attention that falls on `kind`'s detection pattern divided by all attention. Rows without a
    target count in the denominator, so even an ideal head scores below 1 (see `prefix_matching_score`)."""
    det = detection_pattern(tokens, kind).to(pattern)
    if pattern.ndim != 4 or pattern.shape[-2:] != det.shape[-2:] or pattern.shape[0] != det.shape[0]:
        raise ValueError(f"pattern has shape {tuple(pattern.shape)}; expected [batch, head, {tokens.shape[1]}, "
                         f"{tokens.shape[1]}] for tokens of shape {tuple(tokens.shape)}")
    return match_score(pattern, det)


def match_score(pattern: Float[Tensor, "batch head qpos kpos"], det: Float[Tensor, "batch qpos kpos"],
                ) -> Float[Tensor, " head"]:
    """`detect_head`'s "mul" score with a ready detection pattern: per sequence, attention on `det` / all
    attention, averaged over the batch."""
    return ((pattern * det[:, None]).sum((-2, -1)) / pattern.sum((-2, -1))).mean(0)


def prefix_matching_score(pattern: Float[Tensor, "batch head qpos kpos"], tokens: Int[Tensor, "batch pos"],
                          queries: Bool[Tensor, "batch pos"] | None = None) -> Float[Tensor, " head"]:
    """Olsson et al.'s prefix-matching score of every head: over the query positions whose token occurred earlier
    (restricted to `queries` when given, e.g. the second copy of a repeated block), the mean attention paid to the
    tokens that followed its earlier occurrences. 1 for an ideal induction head, about 1/pos for uniform attention.
    """
    det = detection_pattern(tokens, "induction").to(pattern)
    if pattern.ndim != 4 or pattern.shape[-2:] != det.shape[-2:] or pattern.shape[0] != det.shape[0]:
        raise ValueError(f"pattern has shape {tuple(pattern.shape)}; expected [batch, head, {tokens.shape[1]}, "
                         f"{tokens.shape[1]}] for tokens of shape {tuple(tokens.shape)}")
    rows = det.sum(-1) > 0
    if queries is not None:
        if queries.shape != tokens.shape:
            raise ValueError(f"queries has shape {tuple(queries.shape)}; expected the tokens' {tuple(tokens.shape)}")
        rows = rows & queries.to(rows.device, torch.bool)
    if not rows.any():
        raise ValueError("no query position has an earlier occurrence of its token: nothing to score")
    mass = (pattern * det[:, None]).sum(-1)  # [batch head qpos]
    return (mass * rows[:, None]).sum((0, 2)) / rows.sum()


def token_losses(logits: Float[Tensor, "batch pos vocab"], tokens: Int[Tensor, "batch pos"],
                 ) -> Float[Tensor, "batch pos_minus_1"]:
    """Next-token cross-entropy at every position: entry [b, i] is the loss of predicting tokens[b, i + 1]."""
    _check_tokens(tokens)
    if logits.shape[:2] != tokens.shape:
        raise ValueError(f"logits have shape {tuple(logits.shape)}; expected [{tokens.shape[0]}, {tokens.shape[1]}, "
                         "vocab] for the tokens")
    return F.cross_entropy(logits[:, :-1].float().transpose(1, 2), tokens[:, 1:], reduction="none")


def in_context_score(losses: Float[Tensor, "batch pos"], late: Bool[Tensor, "batch pos"],
                     early: Bool[Tensor, "batch pos"]) -> float:
    """Olsson et al.'s in-context learning score: mean loss over the `late` positions minus the mean loss over the
    `early` ones (negative: the model predicts better with more context)."""
    for name, mask in (("late", late), ("early", early)):
        if mask.shape != losses.shape:
            raise ValueError(f"{name} has shape {tuple(mask.shape)}; expected the losses' {tuple(losses.shape)}")
        if not mask.any():
            raise ValueError(f"{name} selects no position")
    return (losses[late.bool()].mean() - losses[early.bool()].mean()).item()


@torch.no_grad()
def repeat_accuracy(model, tokens: Int[Tensor, "batch pos"], targets: Bool[Tensor, "batch pos"]) -> float:
    """The fraction of `targets` (token positions, e.g. `RepeatedBlocks.repeat_targets`) that the model's argmax
    predicts from the position before."""
    _check_tokens(tokens)
    if targets.shape != tokens.shape or not targets[:, 1:].any():
        raise ValueError(f"targets must be a non-empty mask of the tokens' shape {tuple(tokens.shape)}")
    device = next(model.parameters()).device
    pred = model(tokens.to(device)).argmax(-1)[:, :-1].cpu()
    keep = targets[:, 1:].cpu()
    return (pred == tokens[:, 1:])[keep].float().mean().item()


def _folded_weights(model) -> dict[str, Tensor]:
    """W_Q, W_K, W_V [layer head d_model d_head] with each block's ln1 gain folded into the rows they read."""
    out = {name: getattr(model, name) for name in ("W_Q", "W_K", "W_V")}
    gains = [getattr(block.ln1, "w", None) for block in model.weight_blocks]
    if all(g is not None for g in gains):
        g = torch.stack(gains)[:, None, :, None]
        out = {name: w * g for name, w in out.items()}
    return out


@torch.no_grad()
def composition_scores(model, mode: str = "K") -> Float[Tensor, "layer_l head_l layer_r head_r"]:
    """Elhage et al.'s composition score of every (earlier head h1, later head h2) pair: how much h2's queries ("Q"),
    keys ("K") or values ("V") read what h1 writes. Entry [l1, h1, l2, h2] is
    ||OV^{h1} @ M^{h2}|| / (||OV^{h1}|| ||M^{h2}||) with M = QK (Q), QK^T (K) or OV (V), TransformerLens'
    convention (`TransformerBridge.all_composition_scores`); 0 where l1 >= l2. Each block's input norm gain is
    folded into the weights that read it; norms' centring and scaling are ignored, as in the paper."""
    if mode not in COMPOSITION_MODES:
        raise ValueError(f"mode={mode!r} is not one of {COMPOSITION_MODES}")
    w = _folded_weights(model)
    left = FactoredMatrix(w["W_V"], model.W_O)
    qk = FactoredMatrix(w["W_Q"], w["W_K"].transpose(-2, -1))
    right = {"Q": qk, "K": qk.T, "V": left}[mode]
    scores = _tl_composition_scores(left, right, broadcast_dims=True)
    n_layers = scores.shape[0]
    later = torch.arange(n_layers)[:, None] < torch.arange(n_layers)[None, :]
    return scores * later[:, None, :, None].to(scores)


@torch.no_grad()
def random_composition_scores(d_model: int, d_head: int, mode: str = "K", n: int = 1000,
                              seed: int = 0) -> Float[Tensor, " n"]:
    """The composition score of `n` pairs of heads whose W_Q, W_K, W_V, W_O are independent Gaussian matrices of
    the given shapes: Elhage et al.'s random baseline (the score does not depend on the matrices' scale)."""
    if mode not in COMPOSITION_MODES:
        raise ValueError(f"mode={mode!r} is not one of {COMPOSITION_MODES}")
    for name, value in (("d_model", d_model), ("d_head", d_head), ("n", n)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be an integer >= 1")
    g = torch.Generator().manual_seed(seed)

    def draw(*shape: int) -> Tensor:
        return torch.randn(n, *shape, generator=g)

    left = FactoredMatrix(draw(d_model, d_head), draw(d_head, d_model))
    qk = FactoredMatrix(draw(d_model, d_head), draw(d_head, d_model))
    right = {"Q": qk, "K": qk.T, "V": FactoredMatrix(draw(d_model, d_head), draw(d_head, d_model))}[mode]
    return _tl_composition_scores(left, right, broadcast_dims=False)


@torch.no_grad()
def head_ablation_hooks(model, heads: Sequence[tuple[int, int]], tokens: Tensor | None = None, how: str = "mean",
                        ) -> list[tuple[str, Callable]]:
    """Forward hooks for `model.run_with_hooks(tokens, fwd_hooks=...)` that replace the output (`hook_z`) of each
    (layer, head) in `heads` by zero (how="zero") or by its mean over the batch `tokens` at each position
    (how="mean", mean ablation of a run on a batch of the same shape): `probe.interp.ablation.ablation_hooks` on the
    model's one stack, addressed by (layer, head)."""
    from probe.interp.ablation import ablation_hooks

    if how not in ("mean", "zero"):
        raise ValueError(f"how={how!r} is not 'mean' or 'zero'")
    for layer, head in heads:
        if not (0 <= layer < model.cfg.n_layers and 0 <= head < model.cfg.n_heads):
            raise ValueError(f"head ({layer}, {head}) is not in the model's {model.cfg.n_layers} layers x "
                             f"{model.cfg.n_heads} heads")
    if how == "zero":
        return ablation_hooks(model, [("blocks", layer, head) for layer, head in heads], "zero")
    if tokens is None:
        raise ValueError("how='mean' needs tokens (the batch whose mean output replaces the heads')")
    return ablation_hooks(model, [("blocks", layer, head) for layer, head in heads], "mean",
                          reference={"tokens": tokens.to(model.device)}, batch=tokens.shape[0])
