"""Small models of every kind the interpretability tools serve, with matching inputs (a clean and a corrupted one
that differ in one input)."""

from __future__ import annotations

import pytest
import torch

from probe.config import TransformerConfig, ViTConfig
from probe.models.transformer import Transformer
from probe.models.vit import ViT


def tiny(**kw) -> TransformerConfig:
    return TransformerConfig(**{"d_model": 16, "n_layers": 2, "n_heads": 2, "d_mlp": 32, "d_vocab": 13, "n_ctx": 16,
                                "seed": 0, **kw})


def _pair(key: str, gen: torch.Generator, n: int, vocab: int = 13, batch: int = 2) -> tuple[torch.Tensor, ...]:
    clean = torch.randint(3, vocab, (batch, n), generator=gen)
    corrupted = clean.clone()
    corrupted[:, : n // 2] = torch.randint(3, vocab, (batch, n // 2), generator=gen)
    return clean, corrupted


def make_case(kind: str):
    """(model, clean inputs, corrupted inputs) for `kind`."""
    gen = torch.Generator().manual_seed(1)
    if kind == "vit":
        model = ViT(ViTConfig(d_model=16, n_layers=2, n_heads=2, seed=0)).eval()
        clean = torch.rand(2, 1, 8, 8, generator=gen)
        corrupted = clean.clone()
        corrupted[:, :, :4] = torch.rand(2, 1, 4, 8, generator=gen)
        return model, {"images": clean}, {"images": corrupted}
    if kind == "encdec":
        model = Transformer(tiny(arch="encoder_decoder", bos_token_id=1)).eval()
        src, src_c = _pair("src", gen, 6)
        tgt = torch.randint(3, 13, (2, 5), generator=gen)
        tgt[:, 0] = 1
        return model, {"src": src, "tgt": tgt}, {"src": src_c, "tgt": tgt}
    cfg = {"decoder": tiny(), "encoder": tiny(arch="encoder", head="classifier", d_vocab_out=3),
           "linear": tiny(attention="linear"), "attn_only": tiny(attn_only=True, normalization_type=None)}[kind]
    model = Transformer(cfg).eval()
    clean, corrupted = _pair("tokens", gen, 7)
    return model, {"tokens": clean}, {"tokens": corrupted}


KINDS = ["decoder", "encoder", "encdec", "vit", "linear"]


@pytest.fixture(params=KINDS)
def case(request):
    return (request.param, *make_case(request.param))
