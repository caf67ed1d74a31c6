"""The logit lens (nostalgebraist 2020, "interpreting GPT: the logit lens"): the model's final norm and unembedding
applied to the residual stream after every layer, as if the model stopped there.

For a decoder or an encoder the lens reads every position; for an encoder-decoder the decoder's stream; for a ViT
and a classifier encoder every token (class token and patches), through the head, as the patch-wise lens of
analyses/vision/vit_attention.py. The last stream's lens equals the model's own logits (at every position for a language
model; at the pooled token for a class-token classifier).
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from probe.interp.components import get_stack


def readout(model: nn.Module, resid: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_out"]:
    """Final norm then unembedding (or the ViT's head) applied to any residual vectors."""
    if getattr(model.cfg, "kind", "") == "vit":
        return model.head_logits(resid)
    return model.unembed(model.ln_final(resid))


@torch.no_grad()
def logit_lens(
    model: nn.Module, inputs: dict[str, Tensor]
) -> tuple[list[str], Float[Tensor, "stream batch pos d_out"]]:
    """Stream labels ("embed", "L0", "L1", ...) and the lens logits of each stream at every position of the output
    stack (the decoder of an encoder-decoder)."""
    stack = get_stack(model)
    names = [stack.block_hook(0, "hook_resid_pre")] + [stack.block_hook(layer, "hook_resid_post")
                                                       for layer in range(stack.n_layers)]
    _, cache = model.run_with_cache(**inputs, names_filter=names)
    prefix = "dec." if stack.name == "decoder" else ""
    labels = ["embed"] + [f"{prefix}L{layer}" for layer in range(stack.n_layers)]
    return labels, torch.stack([readout(model, cache[n]) for n in names])
