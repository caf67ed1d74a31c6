"""A small residual CNN with batch norm (He et al. 2016, "Deep Residual Learning"), the strong-inductive-bias
baseline the ViT is compared against.

stem: conv3x3 -> BN -> ReLU; then one stage per entry of `cfg.widths`, each `cfg.blocks_per_stage` basic blocks
(conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU); every stage after the first halves the resolution with a stride-2
first block and a 1x1 conv-BN projection shortcut. Global average pooling and one Linear give the logits.

Hooks ([batch channel height width] unless noted): `hook_stem`, `stages.{s}.blocks.{b}.hook_conv1` (after the
first conv-BN-ReLU), `stages.{s}.blocks.{b}.hook_out`, `stages.{s}.hook_out`, `hook_pooled` [batch channel].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from probe.config import CNNConfig
from probe.hooked import HookedModel, HookPoint, check_return_type, init_generator, output
from probe.nn.init import layer
from probe.nn.patch_embed import check_image_shape


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.conv1 = layer(nn.Conv2d, c_in, c_out, 3, stride=stride, padding=1, bias=False, generator=generator)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = layer(nn.Conv2d, c_out, c_out, 3, padding=1, bias=False, generator=generator)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            conv = layer(nn.Conv2d, c_in, c_out, 1, stride=stride, bias=False, generator=generator)
            self.shortcut = nn.Sequential(conv, nn.BatchNorm2d(c_out))
        self.hook_conv1 = HookPoint()
        self.hook_out = HookPoint()

    def forward(self, x: Float[Tensor, "batch c_in h w"]) -> Float[Tensor, "batch c_out h2 w2"]:
        h = self.hook_conv1(F.relu(self.bn1(self.conv1(x))))
        return self.hook_out(F.relu(self.bn2(self.conv2(h)) + self.shortcut(x)))


class Stage(nn.Module):
    def __init__(self, c_in: int, c_out: int, n_blocks: int, stride: int, generator: torch.Generator | None = None,
                 ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [BasicBlock(c_in if b == 0 else c_out, c_out, stride if b == 0 else 1, generator) for b in range(n_blocks)]
        )
        self.hook_out = HookPoint()

    def forward(self, x: Float[Tensor, "batch c_in h w"]) -> Float[Tensor, "batch c_out h2 w2"]:
        for block in self.blocks:
            x = block(x)
        return self.hook_out(x)


class CNN(HookedModel):
    """`model(images, labels=None, return_type="logits"|"loss"|"both"|None)`; logits [batch n_classes]."""

    config_class = CNNConfig

    def __init__(self, cfg: CNNConfig) -> None:
        super().__init__(cfg)
        cfg, gen = self.cfg, init_generator(cfg)
        w0 = cfg.widths[0]
        self.stem = nn.Sequential(
            layer(nn.Conv2d, cfg.n_channels, w0, 3, padding=1, bias=False, generator=gen), nn.BatchNorm2d(w0), nn.ReLU()
        )
        self.hook_stem = HookPoint()
        self.stages = nn.ModuleList(
            [
                Stage(cfg.widths[max(s - 1, 0)], w, cfg.blocks_per_stage, 1 if s == 0 else 2, gen)
                for s, w in enumerate(cfg.widths)
            ]
        )
        self.hook_pooled = HookPoint()
        self.head = layer(nn.Linear, cfg.widths[-1], cfg.n_classes, generator=gen)
        self.setup()

    def forward(
        self,
        images: Float[Tensor, "batch channel height width"],
        labels: Int[Tensor, " batch"] | None = None,
        return_type: str | None = "logits",
        label_smoothing: float = 0.0,
    ) -> Tensor | tuple | None:
        check_return_type(return_type)
        check_image_shape(images, self.cfg.n_channels, 1)
        x = self.hook_stem(self.stem(images))
        for stage in self.stages:
            x = stage(x)
        logits = self.head(self.hook_pooled(x.mean(dim=(2, 3))))
        return output(logits, return_type, lambda: self.class_loss(logits, labels, label_smoothing))
