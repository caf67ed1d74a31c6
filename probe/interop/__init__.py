"""Interop with the ecosystem: Hugging Face `transformers` layouts and TransformerLens' `TransformerBridge`.

- `to_hf_gpt2` / `from_hf_gpt2` (hf_gpt2.py): LayerNorm + absolute-position decoders <-> GPT2LMHeadModel;
- `to_hf_llama` (hf_llama.py): RMSNorm + rotary decoders -> LlamaForCausalLM;
- `export` / `boot_bridge` (bridge.py): write a Hugging Face model directory (layout chosen from the config, with a
  tokenizer) and boot it offline in TransformerBridge;
- `export_vit` (hf_vit.py): ViTs -> ViTForImageClassification.

Names are imported lazily, so `import probe.interop` does not import `transformers`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "to_hf_gpt2": "probe.interop.hf_gpt2",
    "from_hf_gpt2": "probe.interop.hf_gpt2",
    "to_hf_llama": "probe.interop.hf_llama",
    "export": "probe.interop.bridge",
    "boot_bridge": "probe.interop.bridge",
    "layout_of": "probe.interop.bridge",
    "vocab_tokenizer": "probe.interop.bridge",
    "export_vit": "probe.interop.hf_vit",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'probe.interop' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
