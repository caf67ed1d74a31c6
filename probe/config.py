"""Model configurations: validated dataclasses that speak TransformerLens' field names.

`TransformerConfig`, `ViTConfig` (sharing `BlockConfig`'s validation), `CNNConfig` and `ScanSnapConfig`.
`TransformerConfig` carries every field `transformer_lens.ActivationCache`, `patching` and `head_detector` read from
`model.cfg` (n_layers, d_model, n_heads, d_head, d_mlp, d_vocab, n_ctx, act_fn, normalization_type, attn_only,
positional_embedding_type, ...), so TransformerLens' tools work on our models unchanged.
Invalid values fail at construction with a message naming the field, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from probe.ops.feature_maps import FEATURE_MAPS

ARCHS = ("decoder", "encoder", "encoder_decoder")
ACT_FNS = ("relu", "gelu", "gelu_new", "silu", "linear")
NORMS = ("LN", "RMS", "BN", None)
NORM_PLACEMENTS = ("pre", "post")
POSITIONAL = ("sinusoidal", "learned", "rotary", "none")
HEADS = ("lm", "classifier", "token")
POOLS = ("cls", "mean")
ATTENTIONS = ("softmax", "linear", "additive")
UPDATE_RULES = ("sum", "delta")


def check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {choices}")


def check_positive(name: str, value: Any, allow_zero: bool = False) -> None:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and (
        value >= 0 if allow_zero else value >= 1)
    if not ok:
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{name}={value!r} must be an integer {bound}")


def check_fraction(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name}={value!r} must be a float in [0, 1)")


def refuse(name: str, value: Any, why: str) -> None:
    raise ValueError(f"{name}={value!r} is not supported: {why}")


_SIMPLE_TYPES = {"bool": (bool,), "int": (numbers.Integral,), "float": (numbers.Real,), "str": (str,)}


class ConfigBase:
    """What every config shares: field type checks, the JSON round trip (checkpoints store `to_dict()` as
    config.json) and `replace`."""

    kind: ClassVar[str] = ""

    def check_types(self) -> None:
        """TypeError for a value whose type does not match its field's annotation (bool, int, float, str, None)."""
        for f in dataclasses.fields(self):
            options = [t.strip() for t in str(f.type).split("|")]
            if not set(options) <= {*_SIMPLE_TYPES, "None"}:
                continue
            value = getattr(self, f.name)
            if value is None and "None" in options:
                continue
            allowed = tuple(t for o in options if o != "None" for t in _SIMPLE_TYPES[o])
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                raise TypeError(f"{f.name}={value!r} must be of type {f.type} (got {type(value).__name__})")

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


class BlockConfig(ConfigBase):
    """The validation every config built from `probe.nn` blocks shares (TransformerConfig, ViTConfig): one place
    checks and fills d_head, d_mlp, n_key_value_heads, the norm, MLP and attention fields and the dtype, and
    refuses the TransformerLens fields probe does not implement."""

    def check_blocks(self) -> None:
        self.check_types()
        for name in ("d_model", "n_layers", "n_heads"):
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
        check_choice("act_fn", self.act_fn, ACT_FNS)
        check_choice("normalization_type", self.normalization_type, NORMS)
        check_choice("norm_placement", self.norm_placement, NORM_PLACEMENTS)
        check_fraction("dropout", self.dropout)
        if not self.eps > 0:
            raise ValueError(f"eps={self.eps!r} must be > 0")
        if self.n_key_value_heads is not None:
            check_positive("n_key_value_heads", self.n_key_value_heads)
            if self.n_heads % self.n_key_value_heads:
                raise ValueError(f"n_key_value_heads={self.n_key_value_heads} must divide n_heads={self.n_heads} "
                                 "(each key/value head serves a group of query heads)")
            if self.attention != "softmax":
                refuse("n_key_value_heads", self.n_key_value_heads,
                       f"grouped-query attention needs attention='softmax' (got {self.attention!r})")
        if self.gated_mlp and self.attn_only:
            refuse("gated_mlp", True, "attn_only=True has no MLP to gate")
        self.check_optional_hooks()
        if self.final_rms and not self.has_final_norm:
            refuse("final_rms", True, "the model has no final norm to make RMS (it needs normalization_type set, "
                   "norm_placement='pre' and final_norm=True)")
        if self.layer_norm_folding:
            refuse("layer_norm_folding", True, "probe does not fold norm weights into the next layer")
        if self.init_range is None:
            self.init_range = self.d_model**-0.5
        if isinstance(self.dtype, str):
            if not isinstance(getattr(torch, self.dtype, None), torch.dtype):
                raise ValueError(f"dtype={self.dtype!r} is not a torch dtype (e.g. 'float32', 'float64')")
            self.dtype = getattr(torch, self.dtype)
        if not isinstance(self.dtype, torch.dtype) or not self.dtype.is_floating_point:
            raise ValueError(f"dtype={self.dtype!r} must be a floating-point torch dtype")

    def check_optional_hooks(self) -> None:
        """TransformerLens' optional input hooks: the combinations probe implements (self-attention only; an
        encoder-decoder's cross-attention reads its inputs whole)."""
        if self.use_attn_in and self.use_split_qkv_input:
            refuse("use_attn_in", True, "it excludes use_split_qkv_input=True, as in TransformerLens (one per-head "
                   "copy for q, k and v, or one copy each)")
        if self.use_attn_in and self.n_key_value_heads not in (None, self.n_heads):
            refuse("use_attn_in", True, f"hook_attn_in holds one copy per query head, but n_key_value_heads="
                   f"{self.n_key_value_heads} key/value heads are shared by groups; use use_split_qkv_input")
        per_head = "use_attn_in" if self.use_attn_in else "use_split_qkv_input" if self.use_split_qkv_input else None
        if per_head and getattr(self, "short_conv", 0):
            refuse(per_head, True, f"per-head inputs are not implemented with short_conv={self.short_conv} (the "
                   "convolution mixes positions before the per-head projections)")
        if self.use_hook_mlp_in and self.attn_only:
            refuse("use_hook_mlp_in", True, "attn_only=True has no MLP")

    # names TransformerLens reads
    @property
    def n_kv_heads(self) -> int:
        """Key/value heads: n_key_value_heads for grouped-query attention, else n_heads."""
        return self.n_key_value_heads or self.n_heads

    @property
    def has_final_norm(self) -> bool:
        """A norm after the last block: pre-norm models with a normalization (post-norm blocks end in one)."""
        return self.normalization_type is not None and self.norm_placement == "pre" and self.final_norm

    @property
    def attention_dir(self) -> str:
        return "causal" if self.arch == "decoder" else "bidirectional"

    @property
    def uses_rms_norm(self) -> bool:
        return self.normalization_type == "RMS"


@dataclass
class TransformerConfig(BlockConfig):
    """Configuration of `probe.Transformer` (decoder, encoder or encoder-decoder).

    For "encoder_decoder", `n_layers` counts encoder layers and `n_decoder_layers` (default n_layers) decoder layers.
    Every field is implemented or refused: a value the code cannot honour fails here, naming the field.
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
    bos_token_id: int | None = None  # encoder-decoder decoding starts from it; to_tokens prepends it (see below)
    eos_token_id: int | None = None
    attention: str = "softmax"
    feature_map: str = "elu_plus_one"
    dpfp_nu: int = 1
    favor_features: int = 64
    update_rule: str = "sum"
    short_conv: int = 0  # kernel of a causal depthwise conv before each token mixer (Zoology); 0: none
    init_range: float | None = None  # std of weight init; default 1 / sqrt(d_model)
    seed: int | None = None  # seeds a local generator for the initial weights (the global RNG is left alone)
    eps: float = 1e-5
    dtype: torch.dtype = torch.float32  # the parameters' dtype
    device: str | None = None  # where the model is built; the model's own cfg then tracks where it lives
    # TransformerLens' names
    use_attn_result: bool = False  # hook_result is computed whenever it is hooked, whatever this flag
    use_split_qkv_input: bool = False  # attn.hook_q_input|hook_k_input|hook_v_input: per-head residual copies
    use_attn_in: bool = False  # attn.hook_attn_in: one per-head residual copy for q, k and v
    use_hook_mlp_in: bool = False  # hook_mlp_in: the MLP's input before ln2
    default_prepend_bos: bool = False  # to_tokens prepends bos_token_id
    n_key_value_heads: int | None = None  # grouped-query attention: key/value heads (default n_heads)
    gated_mlp: bool = False  # act(x W_gate + b_gate) * (x W_in + b_in), then W_out (SwiGLU with act_fn="silu")
    final_rms: bool = False  # the final norm is RMSNorm whatever normalization_type is
    layer_norm_folding: bool = False  # refused: probe does not fold norms
    tokenizer_name: str | None = None  # refused: probe never loads a tokenizer by name (pass tokenizer=)
    model_name: str = "probe-transformer"  # a label
    extra: dict = field(default_factory=dict)  # free-form metadata, saved with the config

    # field: (default, whether it applies, what it needs); a non-default value where it does not apply is refused
    APPLIES: ClassVar[dict[str, tuple[Any, Any, str]]] = {
        "pool": ("cls", lambda c: c.head == "classifier", "head='classifier'"),
        "rotary_base": (10000.0, lambda c: c.positional_embedding_type == "rotary", "positional_embedding_type="
                        "'rotary'"),
        "feature_map": ("elu_plus_one", lambda c: c.attention == "linear", "attention='linear'"),
        "update_rule": ("sum", lambda c: c.attention == "linear", "attention='linear'"),
    }  # dpfp_nu and favor_features may be shared by a sweep over feature maps

    def __post_init__(self) -> None:
        check_choice("arch", self.arch, ARCHS)
        check_choice("attention", self.attention, ATTENTIONS)
        self.check_blocks()
        for name in ("d_vocab", "n_ctx"):
            check_positive(name, getattr(self, name))
        if self.d_vocab_out is None:
            self.d_vocab_out = self.d_vocab
        check_positive("d_vocab_out", self.d_vocab_out)
        if self.n_decoder_layers is None:
            self.n_decoder_layers = self.n_layers
        check_positive("n_decoder_layers", self.n_decoder_layers)
        if self.arch != "encoder_decoder" and self.n_decoder_layers != self.n_layers:
            refuse("n_decoder_layers", self.n_decoder_layers, f"it needs arch='encoder_decoder' (got {self.arch!r})")
        check_choice("positional_embedding_type", self.positional_embedding_type, POSITIONAL)
        check_choice("head", self.head, HEADS)
        check_choice("pool", self.pool, POOLS)
        check_choice("feature_map", self.feature_map, FEATURE_MAPS)
        check_choice("update_rule", self.update_rule, UPDATE_RULES)
        for name, (default, applies, needs) in self.APPLIES.items():
            if getattr(self, name) != default and not applies(self):
                refuse(name, getattr(self, name), f"it only applies with {needs}")
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
        elif self.rotary_dim != self.d_head:
            refuse("rotary_dim", self.rotary_dim, "it only applies with positional_embedding_type='rotary'")
        archs = ("encoder", "decoder") if self.head == "classifier" else ("encoder",)
        if self.head != "lm" and self.arch not in archs:
            raise ValueError(f"head={self.head!r} needs arch in {archs} (got arch={self.arch!r})")
        if self.head == "classifier" and self.arch == "decoder" and self.pool != "mean":
            raise ValueError(f"head='classifier' with arch='decoder' needs pool='mean' (got pool={self.pool!r}): "
                             "a causal decoder's first token sees only itself (ULMFiT / GPT-style fine-tuning)")
        if self.tie_embed and self.d_vocab_out != self.d_vocab:
            raise ValueError(f"tie_embed=True needs d_vocab_out == d_vocab (got {self.d_vocab_out} != {self.d_vocab})")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.d_vocab:
                raise ValueError(f"{name}={value} must be in [0, d_vocab={self.d_vocab})")
        if self.default_prepend_bos and self.bos_token_id is None:
            raise ValueError("default_prepend_bos=True needs bos_token_id (the token to_tokens prepends)")
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
        if self.tokenizer_name is not None:
            refuse("tokenizer_name", self.tokenizer_name, "probe never loads a tokenizer by name (no network); "
                   "pass one to Transformer(cfg, tokenizer=...)")
        if self.device is not None:
            try:
                torch.device(self.device)
            except RuntimeError as e:
                raise ValueError(f"device={self.device!r} is not a torch device ({e})") from None

    @property
    def attention_dir(self) -> str:
        return "causal" if self.arch == "decoder" and self.causal_mask else "bidirectional"

    @property
    def n_params(self) -> int:
        attn = 2 * self.d_model * self.d_head * (self.n_heads + self.n_kv_heads)
        mlp = 0 if self.attn_only else (3 if self.gated_mlp else 2) * self.d_model * self.d_mlp
        return (attn + mlp) * (self.n_layers + self.n_decoder_layers * (self.arch == "encoder_decoder"))


VIT_POSITIONAL = ("learned", "sinusoidal_2d", "none")
VIT_HEADS = ("linear", "mlp")


@dataclass
class ViTConfig(BlockConfig):
    """Configuration of `probe.ViT` (Dosovitskiy et al. 2021). Block fields mirror `TransformerConfig` and share
    its validation."""

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
    seed: int | None = None  # seeds a local generator for the initial weights (the global RNG is left alone)
    # TransformerLens' names (see TransformerConfig)
    use_attn_result: bool = False
    use_split_qkv_input: bool = False
    use_attn_in: bool = False
    use_hook_mlp_in: bool = False
    default_prepend_bos: bool = False  # refused: a ViT reads images, not tokens
    n_key_value_heads: int | None = None
    gated_mlp: bool = False
    final_rms: bool = False
    layer_norm_folding: bool = False
    model_name: str = "probe-vit"

    def __post_init__(self) -> None:
        check_choice("attention", self.attention, ("softmax",))
        self.check_blocks()
        for name in ("image_size", "patch_size", "n_channels", "n_classes"):
            check_positive(name, getattr(self, name))
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size={self.image_size} is not divisible by patch_size={self.patch_size}")
        check_choice("positional_embedding_type", self.positional_embedding_type, VIT_POSITIONAL)
        check_choice("pool", self.pool, POOLS)
        check_choice("head_type", self.head_type, VIT_HEADS)
        if self.default_prepend_bos:
            refuse("default_prepend_bos", True, "a ViT reads images, it has no tokens to prepend to")

    @property
    def has_final_norm(self) -> bool:
        return self.normalization_type is not None  # the ViT normalises before its head in every placement

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
        self.check_types()
        check_positive("n_channels", self.n_channels)
        check_positive("n_classes", self.n_classes)
        check_positive("blocks_per_stage", self.blocks_per_stage)
        self.widths = tuple(self.widths)
        if not self.widths or any(not isinstance(w, int) or w < 1 for w in self.widths):
            raise ValueError(f"widths={self.widths!r} must be a non-empty tuple of positive integers")


SCAN_SNAP_INITS = ("zero", "default")


@dataclass
class ScanSnapConfig(ConfigBase):
    """The Scan-and-Snap data model and reparameterised 1-layer model (Tian et al. 2023, arXiv 2305.16380).

    Field names and defaults follow the authors' `Dataset2` / `Model2` (facebookresearch/luckmatters,
    ssl/real-dataset/decoder_only.py). Vocabulary layout, in token-id order: common tokens, per-query common
    tokens, distinct tokens (num_distinct_per_next for each next token), query tokens, next tokens; M (`d_vocab`)
    is the total. The data model (`probe.data.scan_snap`) and the model (`probe.models.scan_snap`) both read it.
    """

    kind: ClassVar[str] = "scan_snap"

    num_last: int = 1  # query tokens m
    num_next_per_last: int = 2  # next tokens n per query: K = |psi^{-1}(m)|
    num_common: int = 10
    num_common_per_last: int = 0
    num_distinct_per_next: int = 10
    common_prob: float = 1.0  # unnormalised probability of each common token
    distinct_min: float = 0.1  # distinct tokens get linspace(distinct_min, distinct_max) unnormalised
    distinct_max: float = 1.0
    seq_len: int = 128  # L: L-1 context tokens then the query token
    init: str = "default"  # "zero" (Figure 4) | "default": nn.Linear's U(-1/sqrt(M), 1/sqrt(M)) (Figure 6)
    normalize: bool = True  # L2-normalise the attention-weighted bag
    seed: int | None = None

    def __post_init__(self) -> None:
        self.check_types()
        for name in ("num_last", "num_next_per_last", "num_distinct_per_next"):
            check_positive(name, getattr(self, name))
        for name in ("num_common", "num_common_per_last"):
            check_positive(name, getattr(self, name), allow_zero=True)
        if self.seq_len < 2:
            raise ValueError(f"seq_len={self.seq_len!r} must be an integer >= 2 (context tokens plus the query)")
        for name in ("common_prob", "distinct_min", "distinct_max"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive number")
        if self.distinct_min > self.distinct_max:
            raise ValueError(f"distinct_min={self.distinct_min} must be <= distinct_max={self.distinct_max}")
        check_choice("init", self.init, SCAN_SNAP_INITS)

    # ---- vocabulary layout (as Dataset2) ------------------------------------------------------------------------
    @property
    def num_next(self) -> int:
        return self.num_last * self.num_next_per_last

    @property
    def common_per_last_offset(self) -> int:
        return self.num_common

    @property
    def distinct_offset(self) -> int:
        return self.num_common + self.num_common_per_last * self.num_last

    @property
    def query_offset(self) -> int:
        return self.distinct_offset + self.num_distinct_per_next * self.num_next

    @property
    def next_offset(self) -> int:
        return self.query_offset + self.num_last

    @property
    def d_vocab(self) -> int:
        """M, the vocabulary size: Z and Y are M x M."""
        return self.next_offset + self.num_next

    @property
    def tokens_per_class(self) -> int:
        return self.num_common + self.num_common_per_last + self.num_distinct_per_next
