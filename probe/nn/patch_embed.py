"""Patch embedding of the Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", eq. 1).

An image [channel height width] is cut into non-overlapping P x P patches, each flattened and mapped linearly to
d_model. That linear map is a Conv2d with kernel = stride = P (a 224 x 224 x 3 image with 16 x 16 patches becomes
14 * 14 = 196 tokens of 768), the layout Hugging Face's `ViTPatchEmbeddings.projection` and timm use.
`patchify` + `naive_patch_embed` are the plain reference (cut, flatten, matmul) the conv is tested against.
Tokens come out in row-major patch order: token i*grid_w + j is the patch at row i, column j.

Dimensions: batch, channel, height, width of the image; patch (= grid_h * grid_w tokens); d_model.
"""

from __future__ import annotations

import einops
import torch
from jaxtyping import Float
from torch import Tensor, nn

from probe.nn.init import layer


def check_image_shape(images: Tensor, n_channels: int, patch_size: int, name: str = "images") -> tuple[int, int]:
    """Validate a [batch channel height width] image batch; return the patch grid (grid_h, grid_w)."""
    if images.ndim != 4:
        raise ValueError(f"{name} must be [batch, channel, height, width]; got shape {tuple(images.shape)}")
    _, c, h, w = images.shape
    if c != n_channels:
        raise ValueError(
            f"{name} has {c} channels (shape {tuple(images.shape)}) but the model expects n_channels={n_channels}"
        )
    if h % patch_size or w % patch_size or h == 0 or w == 0:
        raise ValueError(
            f"{name} height x width = {h} x {w} is not divisible by patch_size={patch_size}; "
            f"resize or crop to a multiple of {patch_size}"
        )
    return h // patch_size, w // patch_size


def patchify(
    images: Float[Tensor, "batch channel height width"], patch_size: int
) -> Float[Tensor, "batch patch patch_dim"]:
    """Cut into P x P patches, row-major, each flattened in (channel, row, column) order like Conv2d's weight."""
    return einops.rearrange(images, "b c (gh p1) (gw p2) -> b (gh gw) (c p1 p2)", p1=patch_size, p2=patch_size)


def naive_patch_embed(
    images: Float[Tensor, "batch channel height width"], weight: Float[Tensor, "d c p1 p2"], bias: Float[Tensor, " d"]
) -> Float[Tensor, "batch patch d"]:
    """Reference for `PatchEmbed`: flatten each patch and multiply by the flattened conv kernel."""
    w = einops.rearrange(weight, "d c p1 p2 -> (c p1 p2) d")
    return patchify(images, weight.shape[-1]) @ w + bias


class PatchEmbed(nn.Module):
    """Conv2d(n_channels, d_model, kernel=stride=patch_size), flattened to tokens [batch patch d_model]."""

    def __init__(self, n_channels: int, d_model: int, patch_size: int, generator: torch.Generator | None = None,
                 ) -> None:
        super().__init__()
        self.n_channels, self.d_model, self.patch_size = n_channels, d_model, patch_size
        self.proj = layer(nn.Conv2d, n_channels, d_model, kernel_size=patch_size, stride=patch_size,
                          generator=generator)

    def grid(self, images: Tensor) -> tuple[int, int]:
        return check_image_shape(images, self.n_channels, self.patch_size)

    def forward(self, images: Float[Tensor, "batch channel height width"]) -> Float[Tensor, "batch patch d_model"]:
        self.grid(images)
        return einops.rearrange(self.proj(images), "b d gh gw -> b (gh gw) d")
