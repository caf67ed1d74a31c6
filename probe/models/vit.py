"""Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words") with every activation hooked.

    x_0 = [x_class; E x_p^1; ...; E x_p^N] + E_pos        (eq. 1; E is `PatchEmbed`, a strided Conv2d)
    x_l = TransformerBlock_l(x_{l-1})                       (probe.nn.block, bidirectional, pre-LN by default)
    y   = head(pool(LN(x_L)))                               (class token or mean over patches; Linear or
                                                             Linear-tanh-Linear, the pre-training head)

Positions: "learned" 1-D (one vector per token, class token included, as in the paper and Hugging Face; for another
image size the patch grid is resized bicubically, as HF's `interpolate_pos_encoding`), "sinusoidal_2d" (fixed,
`probe.nn.positional_2d`; the class token gets zeros) or "none". Images of any size divisible by the patch size work.

Hook names follow ViT-Prisma (HookedViT) and TransformerLens, with one deviation so that TransformerLens' cache
tools (decompose_resid, get_full_resid_decomposition) work unchanged: `hook_embed` carries the class token at
position 0 like every other [batch pos d_model] stream; the raw patch embeddings (ViT-Prisma's hook_embed) are
`hook_patch_embed`.
  hook_patch_embed [batch patch d_model]   patch embeddings (the conv), before the class token is prepended
  hook_embed       [batch pos d_model]     [class token; patch embeddings], pos = 1 + patch
  hook_pos_embed   [batch pos d_model]     position embeddings (zeros for "none")
  hook_full_embed  [batch pos d_model]     hook_embed + hook_pos_embed, the residual stream's start
  blocks.{L}.*     TransformerLens names (hook_resid_pre, attn.hook_pattern [batch head query_pos key_pos], ...)
  ln_final.hook_scale|hook_normalized      [batch pos 1] / [batch pos d_model]
  hook_pooled      [batch d_model]         after pooling, the head's input
  head.hook_pre_logits [batch d_model]     after tanh (head_type="mlp" only)
"""

from __future__ import annotations

import einops
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from probe.config import ViTConfig
from probe.hooked import HookedModel, HookPoint, check_return_type, init_generator, output
from probe.nn.block import TransformerBlock
from probe.nn.init import layer
from probe.nn.norm import make_final_norm
from probe.nn.patch_embed import PatchEmbed
from probe.nn.positional_2d import sincos_2d


class ViTHead(nn.Module):
    """`out(x)` (head_type="linear") or `out(tanh(pre_logits(x)))` (head_type="mlp")."""

    def __init__(self, cfg: ViTConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.mlp = cfg.head_type == "mlp"
        if self.mlp:
            self.pre_logits = layer(nn.Linear, cfg.d_model, cfg.d_model, generator=generator)
            self.hook_pre_logits = HookPoint()
        self.out = layer(nn.Linear, cfg.d_model, cfg.n_classes, generator=generator)

    def forward(self, x: Float[Tensor, "*batch d_model"]) -> Float[Tensor, "*batch n_classes"]:
        if self.mlp:
            x = self.hook_pre_logits(torch.tanh(self.pre_logits(x)))
        return self.out(x)


class ViT(HookedModel):
    """`model(images, labels=None, return_type="logits"|"loss"|"both"|None)`; logits [batch n_classes]."""

    config_class = ViTConfig

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__(cfg)
        if cfg.positional_embedding_type == "sinusoidal_2d" and cfg.d_model % 4:
            raise ValueError(
                f"positional_embedding_type='sinusoidal_2d' needs d_model divisible by 4; got d_model={cfg.d_model}"
            )
        cfg, gen = self.cfg, init_generator(cfg)
        self.grid = (cfg.image_size // cfg.patch_size,) * 2
        self.patch_embed = PatchEmbed(cfg.n_channels, cfg.d_model, cfg.patch_size, gen)
        self.cls_token = nn.Parameter(torch.randn(cfg.d_model, generator=gen) * cfg.init_range)
        if cfg.positional_embedding_type == "learned":
            self.W_pos = nn.Parameter(torch.randn(cfg.n_ctx, cfg.d_model, generator=gen) * cfg.init_range)
        self.dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(TransformerBlock(cfg, i, causal=False, generator=gen) for i in range(cfg.n_layers))
        self.ln_final = make_final_norm(cfg)
        self.head = ViTHead(cfg, gen)
        self.hook_patch_embed = HookPoint()
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
        self.hook_full_embed = HookPoint()
        self.hook_pooled = HookPoint()
        self.to(cfg.dtype)
        self.setup()

    # ---- embedding --------------------------------------------------------------------------------------------
    def pos_embed(self, grid: tuple[int, int]) -> Float[Tensor, "pos d_model"]:
        """Position embedding of the class token and each patch of a grid_h x grid_w grid (row-major)."""
        kind, d = self.cfg.positional_embedding_type, self.cfg.d_model
        n = grid[0] * grid[1] + 1
        dtype, device = self.cls_token.dtype, self.cls_token.device
        if kind == "none":
            return torch.zeros(n, d, dtype=dtype, device=device)
        if kind == "sinusoidal_2d":
            table = sincos_2d(d, *grid, dtype=dtype).to(device)
            return torch.cat([torch.zeros(1, d, dtype=dtype, device=device), table])
        if grid == self.grid:
            return self.W_pos
        patches = einops.rearrange(self.W_pos[1:], "(gh gw) d -> 1 d gh gw", gh=self.grid[0])
        patches = F.interpolate(patches, size=grid, mode="bicubic", align_corners=False)
        return torch.cat([self.W_pos[:1], einops.rearrange(patches, "1 d gh gw -> (gh gw) d")])

    def embed(self, images: Float[Tensor, "batch channel height width"]) -> Float[Tensor, "batch pos d_model"]:
        grid = self.patch_embed.grid(images)
        patches = self.hook_patch_embed(self.patch_embed(images))
        tokens = self.hook_embed(torch.cat([self.cls_token.expand(patches.shape[0], 1, -1), patches], dim=1))
        pos = self.hook_pos_embed(self.pos_embed(grid).expand(patches.shape[0], -1, -1))
        return self.hook_full_embed(tokens + pos)

    # ---- forward ----------------------------------------------------------------------------------------------
    def pool(self, resid: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch d_model"]:
        return resid[:, 0] if self.cfg.pool == "cls" else resid[:, 1:].mean(dim=1)

    def forward(
        self,
        images: Float[Tensor, "batch channel height width"],
        labels: Int[Tensor, " batch"] | None = None,
        return_type: str | None = "logits",
        label_smoothing: float = 0.0,
    ) -> Tensor | tuple | None:
        check_return_type(return_type)
        resid = self.dropout(self.embed(images))
        for block in self.blocks:
            resid = block(resid)
        logits = self.head(self.hook_pooled(self.pool(self.ln_final(resid))))
        return output(logits, return_type, lambda: self.class_loss(logits, labels, label_smoothing))

    def head_logits(self, resid: Float[Tensor, "*batch d_model"]) -> Float[Tensor, "*batch n_classes"]:
        """ln_final then the head, applied to any residual vectors (the logit lens, per patch or pooled)."""
        return self.head(self.ln_final(resid))

    @property
    def W_U(self) -> Float[Tensor, "d_model n_classes"]:
        """The head's last Linear as an unembedding (for head_type="mlp" it reads the tanh layer's output)."""
        return self.head.out.weight.T
