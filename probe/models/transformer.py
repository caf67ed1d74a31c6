"""`probe.Transformer`: decoder, encoder or encoder-decoder (Vaswani et al. 2017) with TransformerLens hooks.

Hook names (ARCHITECTURE.md): `hook_embed`, `hook_pos_embed`, `blocks.{L}.*`, `ln_final.*` for decoder and encoder;
`encoder.{L}.*`, `encoder_ln_final.*`, `hook_tgt_embed`, `hook_tgt_pos_embed`, `decoder.{L}.*` (with `cross_attn.*`)
and `ln_final.*` for encoder-decoder. A classifier encoder adds `hook_pooled` [batch d_model].
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float, Int, Shaped
from torch import Tensor, nn

from probe.config import TransformerConfig
from probe.hooked import HookedModel, HookPoint, check_return_type, init_generator, output
from probe.nn.block import TransformerBlock
from probe.nn.embed import Embed, Unembed
from probe.nn.norm import make_final_norm, make_norm
from probe.nn.positional import make_pos_embed
from probe.ops.loss import cross_entropy, mask_padding, next_token_labels


class Transformer(HookedModel):
    config_class = TransformerConfig

    def __init__(self, cfg: TransformerConfig, tokenizer: Any = None) -> None:
        super().__init__(cfg)
        cfg, gen = self.cfg, init_generator(cfg)
        self.tokenizer = tokenizer
        self.embed = Embed(cfg, gen)
        self.pos_embed = make_pos_embed(cfg, gen)
        self.hook_embed = HookPoint()  # [batch pos d_model]
        self.hook_pos_embed = HookPoint()  # [batch pos d_model]
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.arch == "encoder_decoder":
            self.encoder = nn.ModuleList(TransformerBlock(cfg, i, False, generator=gen) for i in range(cfg.n_layers))
            self.encoder_ln_final = make_norm(cfg) if cfg.has_final_norm else nn.Identity()
            self.hook_tgt_embed = HookPoint()
            self.hook_tgt_pos_embed = HookPoint()
            self.decoder = nn.ModuleList(
                TransformerBlock(cfg, i, causal=True, cross=True, generator=gen) for i in range(cfg.n_decoder_layers)
            )
        else:
            causal = cfg.arch == "decoder"
            self.blocks = nn.ModuleList(
                TransformerBlock(cfg, i, causal=causal, generator=gen) for i in range(cfg.n_layers))
        self.ln_final = make_final_norm(cfg)
        if cfg.head == "classifier":
            self.hook_pooled = HookPoint()  # [batch d_model]
        self.unembed = Unembed(cfg, self.embed if cfg.tie_embed else None, gen)
        self.to(device=cfg.device, dtype=cfg.dtype)  # also sets self.cfg.device (the model's own copy)
        self.setup()

    # ---- input checks ----------------------------------------------------------------------------------------------
    def check_tokens(self, tokens: Tensor, name: str = "tokens", offset: int = 0) -> None:
        if not isinstance(tokens, Tensor) or tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            kind = tokens.dtype if isinstance(tokens, Tensor) else type(tokens).__name__
            raise TypeError(f"{name} must be an integer tensor of token ids [batch, pos], got {kind}")
        if tokens.ndim != 2:
            raise ValueError(f"{name} must have shape [batch, pos], got {tuple(tokens.shape)}")
        if tokens.numel():
            lo, hi = torch.aminmax(tokens)
            if lo < 0 or hi >= self.cfg.d_vocab:
                raise ValueError(
                    f"{name} holds ids in [{int(lo)}, {int(hi)}]; expected ids in [0, d_vocab={self.cfg.d_vocab})"
                )
        if self.cfg.positional_embedding_type == "learned" and offset + tokens.shape[1] > self.cfg.n_ctx:
            raise ValueError(
                f"{name} has {offset + tokens.shape[1]} positions but learned position embeddings cover "
                f"n_ctx={self.cfg.n_ctx}; shorten the input or use sinusoidal / rotary / none"
            )

    @staticmethod
    def _padding(mask: Tensor | None, shape: tuple[int, int], name: str) -> Tensor | None:
        """`mask` (1 = token, 0 = padding) as a bool key mask of `shape` [batch, all positions so far]."""
        if mask is None:
            return None
        if tuple(mask.shape) != tuple(shape):
            raise ValueError(f"{name} must have shape {tuple(shape)} (batch, positions), got {tuple(mask.shape)}")
        return mask.bool()

    @staticmethod
    def _offset(caches: list[dict] | None) -> int:
        return caches[0].get("self", {}).get("pos", 0) if caches else 0

    # ---- pieces of the forward pass ------------------------------------------------------------------------------
    def _embed(self, tokens: Tensor, embed_hook: HookPoint, pos_hook: HookPoint, offset: int = 0) -> Tensor:
        resid = embed_hook(self.embed(tokens))
        if self.pos_embed is not None:
            resid = resid + pos_hook(self.pos_embed(tokens.shape[0], tokens.shape[1], offset))
        return self.dropout(resid)

    def _run(self, blocks, resid, mask, caches=None, encoder_out=None, encoder_mask=None) -> Tensor:
        for i, block in enumerate(blocks):
            cache = caches[i] if caches is not None else None
            resid = block(resid, mask, encoder_out=encoder_out, encoder_mask=encoder_mask, cache=cache)
        return resid

    def encode(
        self, src: Int[Tensor, "batch pos"], src_mask: Shaped[Tensor, "batch pos"] | None = None
    ) -> Float[Tensor, "batch pos d_model"]:
        """Encoder-decoder: the encoder's output (after its final norm)."""
        self.check_tokens(src, "src")
        mask = self._padding(src_mask, src.shape, "src_mask")
        return self.encoder_ln_final(
            self._run(self.encoder, self._embed(src, self.hook_embed, self.hook_pos_embed), mask)
        )

    def _pool(self, resid: Tensor, mask: Tensor | None) -> Tensor:
        if self.cfg.pool == "cls":
            return self.hook_pooled(resid[:, 0])
        if mask is None:
            return self.hook_pooled(resid.mean(1))
        weights = mask.to(resid.dtype)[..., None]
        return self.hook_pooled((resid * weights).sum(1) / weights.sum(1).clamp_min(1.0))

    def forward(
        self,
        tokens: Int[Tensor, "batch pos"] | None = None,
        tgt: Int[Tensor, "batch tgt_pos"] | None = None,
        attention_mask: Shaped[Tensor, "batch kpos"] | None = None,
        labels: Int[Tensor, "..."] | None = None,
        return_type: str | None = "logits",
        *,
        src: Int[Tensor, "batch src_pos"] | None = None,
        src_mask: Shaped[Tensor, "batch src_pos"] | None = None,
        label_smoothing: float = 0.0,
        caches: list[dict] | None = None,
    ) -> Any:
        """Decoder / encoder: `model(tokens, attention_mask=None, labels=None, return_type=...)`.
        Encoder-decoder: `model(src, tgt, src_mask=None, labels=None, return_type=...)`.

        Loss (`probe.ops.loss.cross_entropy`): against `labels` (-100 ignored) when given, else next-token
        prediction on the tokens (decoder) or on `tgt` (encoder-decoder); padded targets (attention_mask 0) never
        count. `return_type`: "logits", "loss", "both" (logits, loss) or None.
        """
        check_return_type(return_type)
        mask = None
        if self.cfg.arch == "encoder_decoder":
            src = tokens if src is None else src
            if src is None or tgt is None:
                raise ValueError("an encoder-decoder needs src and tgt (the decoder input, starting with bos)")
            src_mask = src_mask if src_mask is not None else attention_mask
            memory = self.encode(src, src_mask)
            logits = self.decode(tgt, memory, self._padding(src_mask, src.shape, "src_mask"), caches)
            targets = tgt
        else:
            if tokens is None:
                raise ValueError(f"arch={self.cfg.arch!r} needs tokens [batch, pos]")
            offset = self._offset(caches)
            self.check_tokens(tokens, offset=offset)
            mask = self._padding(attention_mask, (tokens.shape[0], offset + tokens.shape[1]), "attention_mask")
            resid = self._embed(tokens, self.hook_embed, self.hook_pos_embed, offset)
            resid = self.ln_final(self._run(self.blocks, resid, mask, caches))
            if self.cfg.head == "classifier":
                resid = self._pool(resid, mask)
            logits = self.unembed(resid)
            targets = tokens
        return output(logits, return_type, lambda: self.loss(logits, targets, labels, label_smoothing, mask))

    def decode(self, tgt: Tensor, memory: Tensor, src_mask: Tensor | None, caches: list[dict] | None = None) -> Tensor:
        """Encoder-decoder: decoder logits for `tgt` given the encoder output `memory`."""
        offset = self._offset(caches)
        self.check_tokens(tgt, "tgt", offset)
        resid = self._embed(tgt, self.hook_tgt_embed, self.hook_tgt_pos_embed, offset)
        resid = self._run(self.decoder, resid, None, caches, encoder_out=memory, encoder_mask=src_mask)
        return self.unembed(self.ln_final(resid))

    def loss(self, logits: Tensor, tokens: Tensor, labels: Tensor | None, label_smoothing: float = 0.0,
             mask: Tensor | None = None) -> Tensor:
        """Cross-entropy against `labels`, else the next tokens; targets at padding (`mask` 0) never count."""
        mask = None if mask is None else mask[:, -tokens.shape[1]:]  # a KV cache's mask covers earlier positions
        if labels is None:
            if self.cfg.head != "lm" or self.cfg.arch == "encoder":
                raise ValueError(f"an encoder with head={self.cfg.head!r} needs labels for its loss")
            return cross_entropy(logits[:, :-1], next_token_labels(tokens, mask), label_smoothing)
        return cross_entropy(logits, mask_padding(labels, mask), label_smoothing)

    # ---- generation ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        tokens: Int[Tensor, "batch pos"],
        max_new_tokens: int,
        temperature: float = 0.0,
        top_k: int | None = None,
        src_mask: Shaped[Tensor, "batch pos"] | None = None,
        attention_mask: Shaped[Tensor, "batch pos"] | None = None,
        use_cache: bool = True,
    ) -> Int[Tensor, "batch new_pos"]:
        """Decoder: continue `tokens` by `max_new_tokens` (greedy at temperature 0, else sampling, optionally top-k),
        one token at a time through a KV cache. Encoder-decoder: greedy decoding of `tokens` (the source) from
        `cfg.bos_token_id`, returning the target sequence with bos."""
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens={max_new_tokens} must be >= 0")
        if temperature < 0:
            raise ValueError(f"temperature={temperature} must be >= 0")
        if self.cfg.arch == "encoder":
            raise ValueError("generate() needs arch='decoder' or 'encoder_decoder'; an encoder does not generate")
        if self.cfg.arch == "encoder_decoder":
            if self.cfg.bos_token_id is None:
                raise ValueError("encoder-decoder generation needs cfg.bos_token_id")
            memory = self.encode(tokens, src_mask)
            mask = self._padding(src_mask, tokens.shape, "src_mask")
            out = torch.full((tokens.shape[0], 1), self.cfg.bos_token_id, device=tokens.device, dtype=torch.long)
            caches = [{} for _ in self.decoder] if use_cache else None
            step_in = out
            for _ in range(max_new_tokens):
                logits = self.decode(step_in, memory, mask, caches)[:, -1]
                nxt = self._sample(logits, temperature, top_k)
                out = torch.cat([out, nxt], 1)
                step_in = nxt if use_cache else out
                if self.cfg.eos_token_id is not None and (out == self.cfg.eos_token_id).any(1).all():
                    break
            return out
        caches = [{} for _ in self.blocks] if use_cache else None
        out, step_in = tokens, tokens
        for _ in range(max_new_tokens):
            logits = self(step_in, attention_mask=attention_mask, caches=caches)[:, -1]
            nxt = self._sample(logits, temperature, top_k)
            out = torch.cat([out, nxt], 1)
            if attention_mask is not None:
                attention_mask = torch.cat([attention_mask, torch.ones_like(nxt, dtype=attention_mask.dtype)], 1)
            step_in = nxt if use_cache else out
        return out

    @staticmethod
    def _sample(logits: Tensor, temperature: float, top_k: int | None) -> Tensor:
        if temperature == 0:
            return logits.argmax(-1, keepdim=True)
        logits = logits / temperature
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return torch.multinomial(logits.softmax(-1), 1)

    # ---- weights TransformerLens' tools read ------------------------------------------------------------------------
    @property
    def weight_blocks(self) -> nn.ModuleList:
        return self.blocks if hasattr(self, "blocks") else self.decoder

    W_E = property(lambda self: self.embed.W_E)
    W_U = property(lambda self: self.unembed.W_U)
    b_U = property(lambda self: self.unembed.b_U)

    @property
    def W_pos(self) -> Tensor:
        if self.pos_embed is None:
            raise AttributeError(f"positional_embedding_type={self.cfg.positional_embedding_type!r} has no W_pos")
        return self.pos_embed.W_pos

    # ---- tokenizer -------------------------------------------------------------------------------------------------
    def _require_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise ValueError(
                "this model has no tokenizer: pass one to Transformer(cfg, tokenizer=...) or set model.tokenizer"
            )
        return self.tokenizer

    def to_tokens(self, text: str | list[str], prepend_bos: bool | None = None) -> Int[Tensor, "batch pos"]:
        """Encode text with the attached tokenizer (a `tokenizers.Tokenizer` or a transformers tokenizer);
        `prepend_bos` (default `cfg.default_prepend_bos`) puts `cfg.bos_token_id` first, as TransformerLens does."""
        tok = self._require_tokenizer()
        prepend_bos = self.cfg.default_prepend_bos if prepend_bos is None else prepend_bos
        if prepend_bos and self.cfg.bos_token_id is None:
            raise ValueError("prepend_bos=True needs cfg.bos_token_id")
        texts = [text] if isinstance(text, str) else list(text)
        encoded = [tok.encode(t) for t in texts]
        bos = [self.cfg.bos_token_id] if prepend_bos else []
        ids = [bos + (e.ids if hasattr(e, "ids") else list(e)) for e in encoded]
        if len({len(i) for i in ids}) > 1:
            pad = self.cfg.pad_token_id
            if pad is None:
                raise ValueError("texts of different lengths need cfg.pad_token_id to be padded")
            width = max(len(i) for i in ids)
            ids = [i + [pad] * (width - len(i)) for i in ids]
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    def to_single_token(self, text: str) -> int:
        tokens = self.to_tokens(text, prepend_bos=False)
        if tokens.shape[1] != 1:
            raise ValueError(f"{text!r} is {tokens.shape[1]} tokens, expected exactly one")
        return int(tokens[0, 0])

    def to_string(self, tokens: Tensor | list[int]) -> str | list[str]:
        tok = self._require_tokenizer()
        tokens = tokens.tolist() if isinstance(tokens, Tensor) else tokens
        if tokens and isinstance(tokens[0], list):
            return [tok.decode(t) for t in tokens]
        return tok.decode(tokens)
