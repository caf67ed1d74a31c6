"""A head's OV and QK circuits over the vocabulary (Elhage et al. 2021, "A Mathematical Framework for Transformer
Circuits", sec. "Attention heads are independent and additive"; TransformerLens' `FactoredMatrix` and the
"copying" check of its induction-heads tutorial).

- OV circuit W_E W_V^h W_O^h W_U [token, output]: what logits the head writes when it attends to a token;
- QK circuit W_E W_Q^h (W_E W_K^h)^T [query token, key token]: how much a query token attends to a key token
  (layer-0 heads read the embeddings directly; for later heads this is the direct path only);
- top-1 diagonal accuracy of the OV circuit: the fraction of tokens whose largest output logit is the token
  itself; 1.0 for a head that copies what it attends to.

Layer norms, biases and positions are left out (the direct token path), as in the paper. Cross-attention heads of
an encoder-decoder read source tokens and write target logits, through the same embedding. Linear attention's
scores are not bilinear in the embeddings (a feature map sits between q and k), so its QK circuit is refused.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens import FactoredMatrix

from probe.interp.components import get_stack


def _head(model: nn.Module, stack: str | None, layer: int, head: int):
    st = get_stack(model, stack)
    if not (0 <= layer < st.n_layers and 0 <= head < st.n_heads):
        raise ValueError(f"(layer {layer}, head {head}) is outside the {st.name} stack's {st.n_layers} layers x "
                         f"{st.n_heads} heads")
    if not hasattr(model, "W_E"):
        raise ValueError(f"{type(model).__name__} has no token embedding W_E: OV / QK circuits over tokens need "
                         "discrete inputs (a ViT reads image patches)")
    return st, st.module(model, layer)


def ov_circuit(model: nn.Module, layer: int, head: int, stack: str | None = None) -> FactoredMatrix:
    """W_E W_V W_O W_U of one head as a FactoredMatrix [d_vocab, d_vocab_out]."""
    _, attn = _head(model, stack, layer, head)
    return model.W_E @ FactoredMatrix(attn.W_V[head], attn.W_O[head]) @ model.W_U


def qk_circuit(model: nn.Module, layer: int, head: int, stack: str | None = None) -> FactoredMatrix:
    """W_E W_Q (W_E W_K)^T of one head as a FactoredMatrix [query token, key token]."""
    st, attn = _head(model, stack, layer, head)
    if getattr(model.cfg, "attention", "softmax") == "linear" and st.name != "cross":
        raise ValueError("linear attention scores are phi(q) . phi(k), not bilinear in the embeddings: no QK circuit "
                         f"(feature_map={model.cfg.feature_map!r})")
    return model.W_E @ FactoredMatrix(attn.W_Q[head], attn.W_K[head].T) @ model.W_E.T


def top1_diagonal_accuracy(circuit: FactoredMatrix | Tensor) -> float:
    """Fraction of rows whose largest entry is on the diagonal (the head maps each token to itself)."""
    full = circuit.AB if isinstance(circuit, FactoredMatrix) else circuit
    if full.shape[-2] != full.shape[-1]:
        raise ValueError(f"a top-1 diagonal accuracy needs a square circuit, got {tuple(full.shape)} (inputs and "
                         "outputs are different vocabularies, e.g. a classifier's classes)")
    return (full.argmax(-1) == torch.arange(full.shape[-1], device=full.device)).float().mean().item()


@torch.no_grad()
def ov_accuracy_table(model: nn.Module, stack: str | None = None) -> Float[Tensor, "layer head"]:
    """Top-1 diagonal accuracy of every head's OV circuit in `stack`."""
    st = get_stack(model, stack)
    return torch.tensor([[top1_diagonal_accuracy(ov_circuit(model, layer, h, stack)) for h in range(st.n_heads)]
                         for layer in range(st.n_layers)])
