"""Interop with the ecosystem: Hugging Face `transformers` layouts and TransformerLens' `TransformerBridge`.

- `to_hf_gpt2` / `from_hf_gpt2` (hf_gpt2.py): LayerNorm + absolute-position decoders <-> GPT2LMHeadModel;
- `to_hf_llama` (hf_llama.py): RMSNorm + rotary decoders -> LlamaForCausalLM;
- `export` / `boot_bridge` (bridge.py): write a Hugging Face model directory (layout chosen from the config, with a
  tokenizer) and boot it offline in TransformerBridge;
- `export_vit` (hf_vit.py): ViTs -> ViTForImageClassification;
- `probe.interop.circuitsvis.attention` / `.offline`: circuitsvis views that render without a network.

Names are imported lazily, so `import probe.interop` does not import `transformers` or `circuitsvis`.
"""

from __future__ import annotations

from probe.lazy import lazy_exports

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
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
