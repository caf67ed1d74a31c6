"""What every Hugging Face export shares: the activation names, the checks that a probe decoder is a plain pre-norm
causal LM, the `transformers` config builder (the fields every layout fills alike) and a strict, loud load."""

from __future__ import annotations

from typing import Any

import torch

from probe.models.transformer import Transformer

TO_HF_ACT = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu_new", "silu": "silu", "linear": "linear"}


def decoder_problems(model: Transformer) -> list[str]:
    """What stops `model` from being a plain pre-norm causal LM (shared by the GPT-2 and Llama layouts)."""
    if not isinstance(model, Transformer):
        raise TypeError(f"model must be a probe.Transformer, got {type(model).__name__}")
    cfg, bad = model.cfg, []
    expected = {"arch": "decoder", "attention": "softmax", "norm_placement": "pre", "final_norm": True, "short_conv": 0}
    bad += [f"{k}={getattr(cfg, k)!r} (needs {v!r})" for k, v in expected.items() if getattr(cfg, k) != v]
    if cfg.d_vocab_out != cfg.d_vocab:
        bad.append(f"d_vocab_out={cfg.d_vocab_out} != d_vocab={cfg.d_vocab} (the LM head predicts the input vocab)")
    if model.b_U.detach().abs().max() > 0:
        bad.append("b_U is nonzero (the LM head has no bias; train with unembed_bias=False)")
    if cfg.scale_embed and cfg.tie_embed:
        bad.append("scale_embed=True with tie_embed=True (the sqrt(d_model) factor cannot be folded into a tied W_E)")
    return bad


def refuse(bad: list[str], target: str) -> None:
    """Raise ValueError naming every problem, if any."""
    if bad:
        raise ValueError(f"cannot export this model to Hugging Face {target}: " + "; ".join(bad))


def hf_config(config_class: str, model: Transformer, **fields: Any) -> Any:
    """`transformers.<config_class>` of a decoder: the vocabulary, tied embeddings and special tokens, which every
    layout names alike, plus the layout's own `fields`."""
    import transformers

    cfg = model.cfg
    common = dict(vocab_size=cfg.d_vocab, tie_word_embeddings=cfg.tie_embed, bos_token_id=cfg.bos_token_id,
                  eos_token_id=cfg.eos_token_id, pad_token_id=cfg.pad_token_id)
    return getattr(transformers, config_class)(**common, **fields)


def load_checked(hf: Any, sd: dict[str, torch.Tensor], layout: str) -> Any:
    """Load `sd` into `hf` strictly, failing loudly if the installed transformers renamed or reshaped anything."""
    expected = hf.state_dict()
    missing, unexpected = sorted(set(expected) - set(sd)), sorted(set(sd) - set(expected))
    shapes = [f"{k}: HF {tuple(expected[k].shape)} vs ours {tuple(v.shape)}"
              for k, v in sd.items() if k in expected and v.shape != expected[k].shape]
    if missing or unexpected or shapes:
        raise RuntimeError(f"the installed transformers' {layout} layout differs from the one probe maps to: "
                           f"missing {missing}, unexpected {unexpected}, shapes {shapes}")
    hf.load_state_dict(sd, strict=True)
    return hf.eval()


def as_export(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached float32 CPU copies, contiguous: what `save_pretrained` and `load_state_dict` want."""
    return {k: v.detach().float().cpu().clone().contiguous() for k, v in sd.items()}
