"""Model configurations: validated dataclasses that speak TransformerLens' field names.

`TransformerConfig` carries every field `transformer_lens.ActivationCache`, `patching` and `head_detector` read from
`model.cfg` (n_layers, d_model, n_heads, d_head, d_mlp, d_vocab, n_ctx, act_fn, normalization_type, attn_only,
positional_embedding_type, ...), so TransformerLens' tools work on our models unchanged.
Invalid values fail at construction with a message naming the field, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

ARCHS = ("decoder", "encoder", "encoder_decoder")
ACT_FNS = ("relu", "gelu", "gelu_new", "silu", "linear")
NORMS = ("LN", "RMS", "BN", None)
NORM_PLACEMENTS = ("pre", "post")
POSITIONAL = ("sinusoidal", "learned", "rotary", "none")
HEADS = ("lm", "classifier", "token")
POOLS = ("cls", "mean")
ATTENTIONS = ("softmax", "linear", "additive")
FEATURE_MAPS = ("elu_plus_one", "identity", "dpfp", "favor_plus")
UPDATE_RULES = ("sum", "delta")


def check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {choices}")


def check_positive(name: str, value: Any, allow_zero: bool = False) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and (value >= 0 if allow_zero else value >= 1)
    if not ok:
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{name}={value!r} must be an integer {bound}")


def check_fraction(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name}={value!r} must be a float in [0, 1)")


class ConfigBase:
    """JSON round trip shared by every config (checkpoints store `to_dict()` as config.json)."""

    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value).removeprefix("torch.") if isinstance(value, torch.dtype) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {unknown}; expected a subset of {sorted(known)}")
        data = dict(data)
        if isinstance(data.get("dtype"), str):
            data["dtype"] = getattr(torch, data["dtype"])
        for f in dataclasses.fields(cls):  # JSON has no tuples
            if isinstance(data.get(f.name), list) and str(f.type).startswith("tuple"):
                data[f.name] = tuple(data[f.name])
        return cls(**data)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclass
class TransformerConfig(ConfigBase):
    """Configuration of `probe.Transformer` (decoder, encoder or encoder-decoder).

    For "encoder_decoder", `n_layers` counts encoder layers and `n_decoder_layers` (default n_layers) decoder layers.
    """

    kind: ClassVar[str] = "transformer"

    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_head: int | None = None  # default d_model // n_heads
    d_mlp: int | None = None  # default 4 * d_model; ignored when attn_only
    d_vocab: int = 64
    d_vocab_out: int | None = None  # default d_vocab; the number of classes for a classifier head
    n_ctx: int = 128
    arch: str = "decoder"
    n_decoder_layers: int | None = None
    act_fn: str = "gelu"
    attn_only: bool = False
    normalization_type: str | None = "LN"
    norm_placement: str = "pre"
    final_norm: bool = True  # a norm after the last block (pre-LN); post-LN blocks already end in one
    positional_embedding_type: str = "learned"
    rotary_dim: int | None = None  # default d_head
    rotary_base: float = 10000.0
    scale_embed: bool = False  # multiply token embeddings by sqrt(d_model), as in Vaswani et al. 2017
    tie_embed: bool = False
    unembed_bias: bool = True  # False: b_U is a fixed zero buffer (GPT-2 and Llama have no lm_head bias)
    use_attn_scale: bool = True  # divide scores by sqrt(d_head)
    residual: bool = True  # False: blocks without residual connections (x -> f(norm(x)) / norm(f(x)))
    tie_qk: bool = False  # W_K = W_Q and b_K = b_Q (a symmetric QK circuit)
    causal_mask: bool = True  # False: a decoder whose self-attention sees every position (generate: use_cache=False)
    dropout: float = 0.0
    head: str = "lm"  # lm (per-token logits over d_vocab_out) | classifier (one per sequence) | token
    pool: str = "cls"  # classifier pooling: first token or mean over unpadded tokens
    pad_token_id: int | None = None
    bos_token_id: int | None = None  # encoder-decoder decoding starts from it
    eos_token_id: int | None = None
    attention: str = "softmax"
    feature_map: str = "elu_plus_one"
    dpfp_nu: int = 1
    favor_features: int = 64
    update_rule: str = "sum"
    short_conv: int = 0  # kernel of a causal depthwise conv before each token mixer (Zoology); 0: none
    init_range: float | None = None  # std of weight init; default 1 / sqrt(d_model)
    seed: int | None = None
    eps: float = 1e-5
    dtype: torch.dtype = torch.float32
    device: str | None = None
    # fields TransformerLens' tools read; fixed here, kept for compatibility
    use_attn_result: bool = False
    use_split_qkv_input: bool = False
    default_prepend_bos: bool = False
    n_key_value_heads: int | None = None
    gated_mlp: bool = False
    final_rms: bool = False
    layer_norm_folding: bool = False
    tokenizer_name: str | None = None
    model_name: str = "probe-transformer"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice("arch", self.arch, ARCHS)
        for name in ("d_model", "n_layers", "n_heads", "d_vocab", "n_ctx"):
            check_positive(name, getattr(self, name))
        if self.d_head is None:
            if self.d_model % self.n_heads:
                raise ValueError(
                    f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                    "choose n_heads dividing d_model or set d_head explicitly"
                )
            self.d_head = self.d_model // self.n_heads
        check_positive("d_head", self.d_head)
        if self.d_mlp is None:
            self.d_mlp = 4 * self.d_model
        check_positive("d_mlp", self.d_mlp)
        if self.d_vocab_out is None:
            self.d_vocab_out = self.d_vocab
        check_positive("d_vocab_out", self.d_vocab_out)
        if self.n_decoder_layers is None:
            self.n_decoder_layers = self.n_layers
        check_positive("n_decoder_layers", self.n_decoder_layers)
        check_choice("act_fn", self.act_fn, ACT_FNS)
        check_choice("normalization_type", self.normalization_type, NORMS)
        check_choice("norm_placement", self.norm_placement, NORM_PLACEMENTS)
        check_choice("positional_embedding_type", self.positional_embedding_type, POSITIONAL)
        check_choice("head", self.head, HEADS)
        check_choice("pool", self.pool, POOLS)
        check_choice("attention", self.attention, ATTENTIONS)
        check_choice("feature_map", self.feature_map, FEATURE_MAPS)
        check_choice("update_rule", self.update_rule, UPDATE_RULES)
        check_fraction("dropout", self.dropout)
        check_positive("short_conv", self.short_conv, allow_zero=True)
        if self.short_conv and self.arch != "decoder":
            raise ValueError(f"short_conv={self.short_conv} is a causal convolution: it needs arch='decoder'")
        if self.rotary_dim is None:
            self.rotary_dim = self.d_head
        if self.positional_embedding_type == "rotary":
            if self.rotary_dim % 2 or not 0 < self.rotary_dim <= self.d_head:
                raise ValueError(f"rotary_dim={self.rotary_dim} must be even and in (0, d_head={self.d_head}]")
            if self.attention == "linear":
                raise ValueError("positional_embedding_type='rotary' is not supported with attention='linear'")
        if self.head != "lm" and self.arch != "encoder":
            raise ValueError(f"head={self.head!r} needs arch='encoder' (got arch={self.arch!r}); decoders use 'lm'")
        if self.tie_embed and self.d_vocab_out != self.d_vocab:
            raise ValueError(f"tie_embed=True needs d_vocab_out == d_vocab (got {self.d_vocab_out} != {self.d_vocab})")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.d_vocab:
                raise ValueError(f"{name}={value} must be in [0, d_vocab={self.d_vocab})")
        if self.attention == "linear" and self.update_rule == "delta" and (self.arch != "decoder" or
                                                                          not self.causal_mask):
            raise ValueError("update_rule='delta' is a causal recurrence: it needs arch='decoder' and causal_mask=True")
        if self.attention == "additive":
            bad = [why for why, refused in (
                ("use_attn_scale=True (additive scores are not scaled: set use_attn_scale=False)", self.use_attn_scale),
                ("arch='encoder_decoder' (its cross-attention is dot-product)", self.arch == "encoder_decoder"),
                ("positional_embedding_type='rotary' (rotary acts on dot products)",
                 self.positional_embedding_type == "rotary"),
            ) if refused]
            if bad:
                raise ValueError("attention='additive' does not combine with " + "; ".join(bad))
        if self.tie_qk and self.n_key_value_heads not in (None, self.n_heads):
            raise ValueError(f"tie_qk=True needs as many key heads as query heads (n_key_value_heads="
                             f"{self.n_key_value_heads}, n_heads={self.n_heads})")
        if not self.causal_mask and self.arch != "decoder":
            raise ValueError(f"causal_mask=False removes a decoder's mask: it needs arch='decoder' (got {self.arch!r})")
        if self.init_range is None:
            self.init_range = self.d_model**-0.5
        if isinstance(self.dtype, str):
            self.dtype = getattr(torch, self.dtype)

    # names TransformerLens reads
    @property
    def attention_dir(self) -> str:
        return "causal" if self.arch == "decoder" and self.causal_mask else "bidirectional"

    @property
    def uses_rms_norm(self) -> bool:
        return self.normalization_type == "RMS"

    @property
    def n_params(self) -> int:
        per_layer = 4 * self.d_model * self.n_heads * self.d_head + (
            0 if self.attn_only else 2 * self.d_model * self.d_mlp
        )
        return per_layer * (self.n_layers + self.n_decoder_layers * (self.arch == "encoder_decoder"))


VIT_POSITIONAL = ("learned", "sinusoidal_2d", "none")
VIT_HEADS = ("linear", "mlp")


@dataclass
class ViTConfig(ConfigBase):
    """Configuration of `probe.ViT` (Dosovitskiy et al. 2021). Block fields mirror `TransformerConfig`."""

    kind: ClassVar[str] = "vit"

    image_size: int = 8
    patch_size: int = 2
    n_channels: int = 1
    n_classes: int = 10
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_head: int | None = None
    d_mlp: int | None = None
    act_fn: str = "gelu"
    attn_only: bool = False
    normalization_type: str | None = "LN"
    norm_placement: str = "pre"
    positional_embedding_type: str = "learned"
    pool: str = "cls"
    head_type: str = "linear"  # linear | mlp (Linear-tanh-Linear, the pre-training head)
    use_attn_scale: bool = True
    dropout: float = 0.0
    init_range: float | None = None
    eps: float = 1e-5
    dtype: torch.dtype = torch.float32
    attention: str = "softmax"
    seed: int | None = None
    # fields TransformerLens' tools read
    use_attn_result: bool = False
    use_split_qkv_input: bool = False
    default_prepend_bos: bool = False
    n_key_value_heads: int | None = None
    gated_mlp: bool = False
    final_rms: bool = False
    layer_norm_folding: bool = False
    model_name: str = "probe-vit"

    def __post_init__(self) -> None:
        for name in ("image_size", "patch_size", "n_channels", "n_classes", "d_model", "n_layers", "n_heads"):
            check_positive(name, getattr(self, name))
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size={self.image_size} is not divisible by patch_size={self.patch_size}")
        if self.d_head is None:
            if self.d_model % self.n_heads:
                raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
            self.d_head = self.d_model // self.n_heads
        if self.d_mlp is None:
            self.d_mlp = 4 * self.d_model
        check_choice("act_fn", self.act_fn, ACT_FNS)
        check_choice("normalization_type", self.normalization_type, NORMS)
        check_choice("norm_placement", self.norm_placement, NORM_PLACEMENTS)
        check_choice("positional_embedding_type", self.positional_embedding_type, VIT_POSITIONAL)
        check_choice("pool", self.pool, POOLS)
        check_choice("head_type", self.head_type, VIT_HEADS)
        check_choice("attention", self.attention, ("softmax",))
        check_fraction("dropout", self.dropout)
        if self.init_range is None:
            self.init_range = self.d_model**-0.5
        if isinstance(self.dtype, str):
            self.dtype = getattr(torch, self.dtype)

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def n_ctx(self) -> int:
        return self.n_patches + 1

    @property
    def d_vocab_out(self) -> int:
        return self.n_classes

    @property
    def arch(self) -> str:
        return "encoder"

    @property
    def attention_dir(self) -> str:
        return "bidirectional"


@dataclass
class CNNConfig(ConfigBase):
    """Configuration of `probe.CNN`, the residual convolutional baseline (He et al. 2016)."""

    kind: ClassVar[str] = "cnn"

    n_channels: int = 1
    n_classes: int = 10
    widths: tuple[int, ...] = (16, 32)
    blocks_per_stage: int = 1
    seed: int | None = None

    def __post_init__(self) -> None:
        check_positive("n_channels", self.n_channels)
        check_positive("n_classes", self.n_classes)
        check_positive("blocks_per_stage", self.blocks_per_stage)
        self.widths = tuple(self.widths)
        if not self.widths or any(not isinstance(w, int) or w < 1 for w in self.widths):
            raise ValueError(f"widths={self.widths!r} must be a non-empty tuple of positive integers")
