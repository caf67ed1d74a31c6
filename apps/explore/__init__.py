"""The model explorer's views, one module each: attention, predictions with direct logit attribution, the logit
lens, activation and attribution patching, head ablation, OV / QK circuits, and a CNN's feature maps. Each view takes
a `Subject` (checkpoint + input) and lays out what `probe.interp` computes; the page runs only the open tab."""
