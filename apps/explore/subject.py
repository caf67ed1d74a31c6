"""What the model explorer looks at: a checkpoint and one input, read from widgets bound to the URL.

An input is kept as a hashable `spec` (("tokens", (1, 3, 4)),) / (("src", ...), ("tgt", ...)) / (("images",
("digits", "test", 5)),) so that every cached computation (st.cache_data) is keyed on the checkpoint, its files'
modification time and the spec; `make_inputs(spec)` rebuilds the tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st
import torch

from apps import lib

Spec = tuple[tuple[str, Any], ...]


@dataclass
class Subject:
    name: str
    path: str
    model: Any
    meta: dict[str, Any]
    spec: Spec = ()
    labels: dict[str, list[str]] = field(default_factory=dict)  # per input: token names (or a ViT's patches)
    image_label: int | None = None

    @property
    def kind(self) -> str:
        return getattr(self.model.cfg, "kind", type(self.model).__name__)

    @property
    def stamp(self) -> float:
        return 0.0 if self.path == lib.DEMO else lib.stamp(Path(self.path))

    @property
    def inputs(self) -> dict[str, torch.Tensor]:
        return make_inputs(self.spec, self.model.device)

    @property
    def out_labels(self) -> list[str]:
        return lib.output_labels(self.model)

    @property
    def lm(self) -> bool:
        """Per-position next-token logits (a decoder, or an encoder-decoder's decoder)."""
        cfg = self.model.cfg
        return self.kind == "transformer" and cfg.head == "lm" and cfg.arch != "encoder"

    @property
    def out_key(self) -> str:
        """The input whose positions the output has: "tokens", "tgt" or "images"."""
        if self.kind == "vit":
            return "images"
        return "tgt" if self.model.cfg.arch == "encoder_decoder" else "tokens"


def make_inputs(spec: Spec, device: Any = "cpu") -> dict[str, torch.Tensor]:
    out = {}
    for key, value in spec:
        if key == "images":
            from probe.data.images import digits

            _, split, idx = value
            out[key] = torch.stack([digits(split)[i][0] for i in ([idx] if isinstance(idx, int) else idx)])
        else:
            out[key] = torch.tensor([list(value)], dtype=torch.long)
    return {k: v.to(device) for k, v in out.items()}


def token_spec(key: str, ids: list[int]) -> tuple[str, tuple[int, ...]]:
    return key, tuple(int(i) for i in ids)


def patch_labels(cfg: Any) -> list[str]:
    """Token names of a ViT on its native grid: the class token, then "(row,col)" of each patch."""
    grid = cfg.image_size // cfg.patch_size
    return ["cls"] + [f"({r},{c})" for r in range(grid) for c in range(grid)]


# ---- reading inputs -----------------------------------------------------------------------------------------------
def read_tokens(model: Any, label: str, key: str, default: list[int] | None, help: str | None = None) -> list[int]:
    """Text through the checkpoint's tokenizer when it has one, else token ids; the widget is bound to the URL.
    `default=None` shows an empty box whose meaning `help` explains (e.g. "the model's greedy output")."""
    cfg, tok = model.cfg, getattr(model, "tokenizer", None)
    if tok is not None:
        shown = tok.decode(default) if default is not None else ""
        text = st.text_input(f"{label} (text, encoded with the checkpoint's tokenizer)", shown, key=key,
                             bind="query-params", help=help)
    else:
        shown = " ".join(map(str, default)) if default is not None else ""
        text = st.text_input(f"{label} (token ids in [0, {cfg.d_vocab}), space separated)", shown, key=key,
                             bind="query-params", help=help)
    if not text.strip() and default is None:
        return []
    try:
        ids = lib.encode_text(tok, text, label) if tok is not None else lib.parse_ids(text, cfg.d_vocab, label)
    except ValueError as e:
        st.error(str(e))
        st.stop()
    if len(ids) > cfg.n_ctx and cfg.positional_embedding_type == "learned":
        st.error(f"{label} has {len(ids)} tokens but this model's learned position embeddings cover n_ctx="
                 f"{cfg.n_ctx}: shorten it.")
        st.stop()
    if len(ids) > cfg.n_ctx:
        st.warning(f"{label} has {len(ids)} tokens, more than the n_ctx={cfg.n_ctx} this model was built and trained "
                   f"for: positions from {cfg.n_ctx} on are outside anything it has seen.")
    return ids


@st.cache_data(show_spinner=False, max_entries=256)
def greedy(path: str, stamp: float, src: tuple[int, ...]) -> tuple[int, ...]:
    """The encoder-decoder's greedy decoding of `src`: [bos, ...] without the final eos (the decoder input that
    training used; the last position then predicts eos), at most n_ctx tokens."""
    model = lib.load_model(path)
    with torch.no_grad():
        out = model.generate(torch.tensor([list(src)], device=model.device), model.cfg.n_ctx - 1)[0].tolist()
    if model.cfg.eos_token_id in out:
        out = out[: out.index(model.cfg.eos_token_id)]
    return tuple(out[: model.cfg.n_ctx])


def transformer_subject(name: str, path: str, model: Any, meta: dict[str, Any]) -> Subject:
    cfg = model.cfg
    default = lib.default_tokens(model, meta)
    subject = Subject(name, path, model, meta)
    if cfg.arch == "encoder_decoder":
        c1, c2 = st.columns(2)
        with c1:
            src = read_tokens(model, "Source", "src", default)
        if cfg.bos_token_id is None:
            st.error("This encoder-decoder has no bos_token_id: its decoder input cannot be built.")
            st.stop()
        with c2:
            tgt = read_tokens(model, "Decoder input", "tgt", None,
                              help="empty: the model's own greedy output for the source (starting with bos)")
        if not tgt:
            tgt = list(greedy(path, subject.stamp, tuple(src)))
            st.caption(f"Decoder input: the model's greedy output, {' '.join(lib.token_labels(model, tgt))}")
        subject.spec = (token_spec("src", src), token_spec("tgt", tgt))
        subject.labels = {"src": lib.token_labels(model, src), "tgt": lib.token_labels(model, tgt)}
    else:
        ids = read_tokens(model, "Tokens", "tokens", default)
        subject.spec = (token_spec("tokens", ids),)
        subject.labels = {"tokens": lib.token_labels(model, ids)}
    return subject


def vit_subject(name: str, path: str, model: Any, meta: dict[str, Any]) -> Subject:
    from probe.data.images import digits

    cfg = model.cfg
    test = digits("test")
    idx = st.slider("Digits test image", 0, len(test) - 1, 0, key="image", bind="query-params")
    subject = Subject(name, path, model, meta, spec=(("images", ("digits", "test", idx)),),
                      image_label=int(test[idx][1]))
    if getattr(cfg, "kind", "") == "vit":
        subject.labels = {"images": patch_labels(cfg)}
    return subject


def image_ok(model: Any) -> bool:
    """The explorer's images are sklearn's 8x8 one-channel digits."""
    cfg = model.cfg
    size = getattr(cfg, "image_size", 8)
    return (size, cfg.n_channels) == (8, 1)


def choose_stack(model: Any, label: str, key: str, exclude: tuple[str, ...] = ()) -> str:
    """A stack of the model chosen by its label ("decoder cross-attention"; the label is what the URL holds), or the
    only one without a widget. Returns the stack's name."""
    from probe.interp.components import stacks

    found = {s.label: name for name, s in stacks(model).items() if name not in exclude}
    if len(found) == 1:
        return next(iter(found.values()))
    return found[st.selectbox(label, list(found), key=key, bind="query-params")]
