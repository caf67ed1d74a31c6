"""Export a probe decoder as a Hugging Face model directory and boot it in TransformerLens' `TransformerBridge`.

`export` picks the layout from the config: LayerNorm + absolute positions -> GPT-2 (`hf_gpt2`), RMSNorm + rotary
-> Llama (`hf_llama`); anything else raises with what each layout needs. The directory holds what
`AutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained` read (config.json, model.safetensors,
tokenizer.json, tokenizer_config.json) plus `probe_export.json` (layout and the probe config it came from).
`boot_bridge` loads it offline: TransformerBridge.boot_transformers with a local model and a tokenizer read back from
the directory (ecosystem.md: an in-memory tokenizer fails, one saved and reloaded works).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probe.models.transformer import Transformer

LAYOUTS = ("gpt2", "llama")


def vocab_tokenizer(d_vocab: int | None = None, names: Sequence[str] | None = None, unk_id: int = 0) -> Any:
    """A `tokenizers.Tokenizer` naming each token id: one whitespace-separated word per id ("t0 t1 ..." by default,
    or `names`). It lets synthetic-token models use text-based tools (`model.to_tokens`, HF tokenizers).
    Unknown words map to id `unk_id` (Hugging Face tokenizers and TransformerLens' bridge need an unknown token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    if names is None:
        if not isinstance(d_vocab, int) or d_vocab < 1:
            raise ValueError(f"d_vocab={d_vocab!r} must be an integer >= 1 when names is not given")
        names = [f"t{i}" for i in range(d_vocab)]
    names = list(names)
    if len(set(names)) != len(names) or any(not n or any(c.isspace() for c in n) for n in names):
        raise ValueError(f"names={names[:8]}... must be distinct, non-empty and free of whitespace")
    if not 0 <= unk_id < len(names):
        raise ValueError(f"unk_id={unk_id} must be in [0, {len(names)})")
    tok = Tokenizer(models.WordLevel({n: i for i, n in enumerate(names)}, unk_token=names[unk_id]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    return tok


def layout_of(model: Transformer) -> str:
    """"gpt2" or "llama": the Hugging Face layout that represents `model` exactly (ValueError if none does)."""
    from probe.interop.hf_gpt2 import check_gpt2_exportable
    from probe.interop.hf_llama import check_llama_exportable

    errors = []
    for layout, check in (("gpt2", check_gpt2_exportable), ("llama", check_llama_exportable)):
        try:
            check(model)
            return layout
        except ValueError as e:
            errors.append(str(e))
    raise ValueError("no Hugging Face layout represents this model exactly:\n  " + "\n  ".join(errors))


def to_hf(model: Transformer, layout: str | None = None) -> Any:
    """`model` as a Hugging Face causal LM in `layout` (default: `layout_of(model)`)."""
    layout = layout or layout_of(model)
    if layout == "gpt2":
        from probe.interop.hf_gpt2 import to_hf_gpt2

        return to_hf_gpt2(model)
    if layout == "llama":
        from probe.interop.hf_llama import to_hf_llama

        return to_hf_llama(model)
    raise ValueError(f"layout={layout!r} is not one of {LAYOUTS}")


def hf_tokenizer(tokenizer: Any, cfg: Any) -> Any:
    """Wrap a `tokenizers.Tokenizer` as a `transformers.PreTrainedTokenizerFast` with the model's special tokens."""
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

    if isinstance(tokenizer, PreTrainedTokenizerBase):
        return tokenizer
    special = {}
    for role in ("bos", "eos", "pad"):
        token_id = getattr(cfg, f"{role}_token_id")
        if token_id is not None:
            special[f"{role}_token"] = tokenizer.id_to_token(token_id)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **special)


def export(model: Transformer, out_dir: str | Path, tokenizer: Any = None, layout: str | None = None) -> Path:
    """Write `model` as a Hugging Face model directory `out_dir` (layout chosen by `layout_of` unless given).

    The tokenizer saved beside it is `tokenizer`, else `model.tokenizer`, else `vocab_tokenizer(d_vocab)`.
    Returns the directory; `AutoModelForCausalLM.from_pretrained(out_dir)` and `boot_bridge(out_dir)` read it.
    """
    layout = layout or layout_of(model)
    hf = to_hf(model, layout)
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    tokenizer = tokenizer if tokenizer is not None else vocab_tokenizer(model.cfg.d_vocab)
    tok = hf_tokenizer(tokenizer, model.cfg)
    if len(tok) != model.cfg.d_vocab:
        raise ValueError(f"tokenizer has {len(tok)} tokens but the model's d_vocab={model.cfg.d_vocab}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(out)
    tok.save_pretrained(out)
    info = {"layout": layout, "probe_config": {"kind": model.cfg.kind, **model.cfg.to_dict()}}
    (out / "probe_export.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    return out


def load_hf(out_dir: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) of an exported directory, offline, eval mode, eager attention."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = Path(out_dir)
    if not (out / "config.json").is_file():
        raise FileNotFoundError(f"out_dir={str(out)!r} holds no config.json: not an exported model directory")
    hf = AutoModelForCausalLM.from_pretrained(out, local_files_only=True, attn_implementation="eager")
    tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    return hf.eval(), tok


def boot_bridge(out_dir: str | Path, device: str = "cpu") -> Any:
    """TransformerLens' `TransformerBridge` over the model exported to `out_dir`, booted offline."""
    from transformer_lens.model_bridge import TransformerBridge

    hf, tok = load_hf(out_dir)
    return TransformerBridge.boot_transformers(str(out_dir), hf_model=hf, tokenizer=tok, device=device)
