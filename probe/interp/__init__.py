"""Interpretability tools that work on every probe model kind (decoder, encoder, encoder-decoder, ViT, linear
attention): activation and attribution patching, direct logit attribution, the logit lens, head ablation and
OV / QK circuits. The dashboards lay these out; a notebook calls the same functions.

Inputs are always the keyword arguments of the model's forward as a dict (`{"tokens": ...}`, `{"src": ..., "tgt":
...}` or `{"images": ...}`), so one function serves every kind; `probe.interp.components.stacks(model)` names the
attention stacks ("blocks", or "encoder" / "decoder" / "cross" for an encoder-decoder) that the functions take.
"""
