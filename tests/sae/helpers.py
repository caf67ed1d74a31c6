"""Tiny models of every kind and hand-built SAEs shared by the SAE tests."""

from __future__ import annotations

import torch

import probe
from probe.config import CNNConfig, TransformerConfig, ViTConfig
from probe.data.dataset import DictDataset
from probe.sae import SAEConfig, SparseAutoencoder


def decoder(**kw) -> probe.Transformer:
    return probe.Transformer(TransformerConfig(**{"d_model": 16, "n_layers": 1, "n_heads": 2, "d_mlp": 32,
                                                  "d_vocab": 12, "n_ctx": 16, "seed": 0, **kw}))


def tokens(n: int = 16, pos: int = 12, seed: int = 0) -> DictDataset:
    return DictDataset(tokens=torch.randint(0, 12, (n, pos), generator=torch.Generator().manual_seed(seed)))


def vit() -> probe.ViT:
    return probe.ViT(ViTConfig(d_model=16, n_layers=1, n_heads=2, seed=0))


def cnn() -> probe.CNN:
    return probe.CNN(CNNConfig(widths=(4,), seed=0))


def images(n: int = 16, seed: int = 0) -> DictDataset:
    gen = torch.Generator().manual_seed(seed)
    return DictDataset(images=torch.randn(n, 1, 8, 8, generator=gen), labels=torch.randint(0, 10, (n,), generator=gen))


def identity_sae(d_in: int, **kw) -> SparseAutoencoder:
    """A standard SAE that reconstructs exactly: latents relu(x) and relu(-x), decoded as relu(x) - relu(-x) = x."""
    sae = SparseAutoencoder(SAEConfig(d_in=d_in, d_sae=2 * d_in, **kw))
    eye = torch.eye(d_in)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], 1))
        sae.W_dec.copy_(torch.cat([eye, -eye], 0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae
