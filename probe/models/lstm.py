"""An LSTM language model (Hochreiter & Schmidhuber 1997), the recurrent baseline the seeds compare Transformers with.

Seeds 000 §1 and 001 §2.2: an RNN must finish step t before step t+1, so it cannot process a sequence's positions in
parallel; a Transformer can (003 #17). `probe.LSTM` is that baseline, hooked and trained by `probe.Trainer` like the
Transformer: `model(tokens, attention_mask=None, labels=None, return_type="logits"|"loss"|"both"|None)`.

    x_0 = W_E[tokens]                       hook_embed        [batch pos d_model]
    x_l = LSTM_l(x_{l-1})                   layers.{l}.hook_hidden [batch pos d_model]   (h_t for every t)
    logits = x_L W_U + b_U

Each layer is one `torch.nn.LSTM` (its fused kernel: the time loop runs in C++, the fairest recurrent baseline
on CPU and GPU). Loss (`probe.ops.loss`): cross-entropy on `labels` (-100 ignored) when given, else next-token
prediction on `tokens`, with padded targets (`attention_mask` 0) ignored. Padding must be on the right: the
recurrence runs left to right, so right padding never reaches a real token. Parameters per layer:
4 (d_model^2 + d_model^2 + 2 d_model), about 8 d_model^2, against a Transformer block's 12 d_model^2
(d_mlp = 4 d_model): three LSTM layers match two blocks. Initial weights come from a local generator seeded with
`cfg.seed` (the global RNG is never reseeded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from jaxtyping import Float, Int, Shaped
from torch import Tensor, nn

from probe.config import ConfigBase, check_fraction, check_positive
from probe.hooked import HookedModel, HookPoint, check_return_type, init_generator, output
from probe.nn.embed import Embed, Unembed
from probe.ops.loss import cross_entropy, mask_padding, next_token_labels


@dataclass
class LSTMConfig(ConfigBase):
    """Configuration of `probe.models.lstm.LSTM`."""

    kind: ClassVar[str] = "lstm"

    d_model: int = 64
    n_layers: int = 1
    d_vocab: int = 64
    d_vocab_out: int | None = None  # default d_vocab
    dropout: float = 0.0  # between layers and before the unembedding
    init_range: float | None = None  # std of the embedding and unembedding init; default 1 / sqrt(d_model)
    scale_embed: bool = False  # multiply token embeddings by sqrt(d_model)
    unembed_bias: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        self.check_types()
        for name in ("d_model", "n_layers", "d_vocab"):
            check_positive(name, getattr(self, name))
        if self.d_vocab_out is None:
            self.d_vocab_out = self.d_vocab
        check_positive("d_vocab_out", self.d_vocab_out)
        check_fraction("dropout", self.dropout)
        if self.init_range is None:
            self.init_range = self.d_model**-0.5

    @property
    def n_params(self) -> int:
        """Parameters of the recurrent layers (embeddings excluded, as TransformerConfig.n_params)."""
        return self.n_layers * 4 * (2 * self.d_model**2 + 2 * self.d_model)


class LSTMLayer(nn.Module):
    """One `torch.nn.LSTM` layer; with a generator its weights get PyTorch's default init, U(-1/sqrt(d), 1/sqrt(d)),
    drawn from it (the global RNG is not touched)."""

    def __init__(self, d_model: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if generator is None:
            self.lstm = nn.LSTM(d_model, d_model, batch_first=True)
        else:
            # built on the meta device (no init, no RNG), then materialised and drawn from the generator
            self.lstm = nn.LSTM(d_model, d_model, batch_first=True, device="meta").to_empty(device="cpu")
            with torch.no_grad():
                for p in self.lstm.parameters():
                    p.uniform_(-1 / math.sqrt(d_model), 1 / math.sqrt(d_model), generator=generator)
        self.hook_hidden = HookPoint()  # [batch pos d_model]

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        return self.hook_hidden(self.lstm(x)[0])


class LSTM(HookedModel):
    config_class = LSTMConfig

    def __init__(self, cfg: LSTMConfig) -> None:
        super().__init__(cfg)
        cfg, gen = self.cfg, init_generator(cfg)
        self.embed = Embed(cfg, gen)
        self.hook_embed = HookPoint()  # [batch pos d_model]
        self.layers = nn.ModuleList(LSTMLayer(cfg.d_model, gen) for _ in range(cfg.n_layers))
        self.dropout = nn.Dropout(cfg.dropout)
        self.unembed = Unembed(cfg, generator=gen)
        self.setup()

    W_E = property(lambda self: self.embed.W_E)
    W_U = property(lambda self: self.unembed.W_U)
    b_U = property(lambda self: self.unembed.b_U)

    def forward(
        self,
        tokens: Int[Tensor, "batch pos"],
        attention_mask: Shaped[Tensor, "batch pos"] | None = None,
        labels: Int[Tensor, "batch pos"] | None = None,
        return_type: str | None = "logits",
        label_smoothing: float = 0.0,
    ) -> Any:
        check_return_type(return_type)
        if not isinstance(tokens, Tensor) or tokens.dtype != torch.long or tokens.ndim != 2:
            raise ValueError(f"tokens must be an int64 tensor [batch, pos], got {getattr(tokens, 'dtype', tokens)!r}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.cfg.d_vocab):
            raise ValueError(f"tokens hold ids outside [0, d_vocab={self.cfg.d_vocab})")
        x = self.dropout(self.hook_embed(self.embed(tokens)))
        for layer in self.layers:
            x = self.dropout(layer(x))
        if attention_mask is not None and attention_mask.shape != tokens.shape:
            raise ValueError(f"attention_mask must have shape {tuple(tokens.shape)}, got {tuple(attention_mask.shape)}")
        logits = self.unembed(x)
        return output(logits, return_type, lambda: self.loss(logits, tokens, labels, label_smoothing, attention_mask))

    @staticmethod
    def loss(logits: Tensor, tokens: Tensor, labels: Tensor | None, label_smoothing: float = 0.0,
             mask: Tensor | None = None) -> Tensor:
        """Cross-entropy against `labels`, else the next tokens; targets at padding (`mask` 0) never count."""
        if labels is None:
            return cross_entropy(logits[:, :-1], next_token_labels(tokens, mask), label_smoothing)
        return cross_entropy(logits, mask_padding(labels, mask), label_smoothing)
