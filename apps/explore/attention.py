"""Attention patterns (`hook_pattern`, via run_with_cache): hover a query token to see where every head of the layer
attends, one head as a heat-map with token labels, and all heads of the layer as a grid with token labels on both
axes. A ViT adds the class token's attention laid over the image's patch grid."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from apps import figures, lib
from apps.explore.subject import Spec, Subject, choose_stack, make_inputs
from apps.hover import hover_attention
from probe.interp.components import stacks


@st.cache_data(show_spinner=False, max_entries=64)
def patterns(path: str, stamp: float, spec: Spec, stack: str) -> np.ndarray:
    """[layer, head, query, key] attention patterns of one stack on the first example."""
    model = lib.load_model(path)
    st_ = stacks(model)[stack]
    names = [st_.attn_hook(layer, "hook_pattern") for layer in range(st_.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(**make_inputs(spec, model.device), names_filter=names)
    return torch.stack([cache[n][0] for n in names]).float().cpu().numpy()


def choose_layer_head(n_layers: int, n_heads: int, with_mean: bool = False) -> tuple[int, int | str]:
    c1, c2 = st.columns(2)
    layer = c1.selectbox("Layer", list(range(n_layers)), key="layer", bind="query-params")
    options: list = ["mean over heads", *range(n_heads)] if with_mean else list(range(n_heads))
    head = c2.selectbox("Head", options, key="head", bind="query-params")
    return layer, head


def transformer_attention(s: Subject) -> None:
    stack = choose_stack(s.model, "Stack", "stack")
    st_ = stacks(s.model)[stack]
    layer, head = choose_layer_head(st_.n_layers, st_.n_heads)
    pat = patterns(s.path, s.stamp, s.spec, stack)[layer]  # [head query key]
    queries, keys = s.labels[st_.queries], s.labels[st_.keys]
    linear = getattr(s.model.cfg, "attention", "softmax") == "linear" and stack != "cross"
    if linear:
        st.caption("Linear attention: the pattern is the equivalent attention matrix A with output Y = A V "
                   "(`hook_pattern`, materialised because it is hooked); rows need not be distributions.")
    st.markdown(f"**{st_.label}, layer {layer}: hover a query token** (click to pin it)")
    shown = np.clip(pat / max(float(np.abs(pat).max()), 1e-12), 0, 1) if linear else pat
    hover_attention(shown, queries, keys, [f"head {h}" for h in range(st_.n_heads)], key=f"hover_{stack}")
    zmax = float(pat.max()) if linear else 1.0
    hook = st_.attn_hook(layer, "hook_pattern")
    st.plotly_chart(lib.heatmap(pat[head], keys, queries, f"{hook}, head {head}", zmax=zmax,
                                zmin=float(min(pat.min(), 0.0))), key="pattern")
    st.plotly_chart(figures.head_grid(pat, keys, queries, f"every head of {st_.label} layer {layer}", zmax=zmax),
                    key="all_heads")


def vit_attention(s: Subject) -> None:
    cfg = s.model.cfg
    layer, head = choose_layer_head(cfg.n_layers, cfg.n_heads, with_mean=True)
    pat = patterns(s.path, s.stamp, s.spec, "blocks")[layer]  # [head query key]
    grid = cfg.image_size // cfg.patch_size
    cls_rows = pat[:, 0, 1:]  # [head patch]
    cls_row = cls_rows.mean(0) if head == "mean over heads" else cls_rows[head]
    image = s.inputs["images"][0, 0].cpu().numpy()
    st.caption(f"Class-token attention of blocks.{layer}.attn.hook_pattern over the {grid}x{grid} patches "
               f"(the class token also attends to itself: {float(1 - cls_row.sum()):.3f} of the mass).")
    a, b = st.columns(2)
    a.plotly_chart(figures.image(image, f"test image (label {s.image_label})", zmax=1.0), key="image_fig")
    b.plotly_chart(figures.image(cls_row.reshape(grid, grid), "class-token attention", colorscale="Viridis"),
                   key="cls_attention")
    st.plotly_chart(figures.image_grid(cls_rows.reshape(-1, grid, grid), [f"head {h}" for h in range(cfg.n_heads)],
                                       f"class-token attention of every head, layer {layer}"), key="cls_heads")
    st.markdown(f"**Layer {layer}: hover a patch** (the class token first, then the patch grid; click to pin)")
    labels = s.labels["images"]
    hover_attention(pat, labels, labels, [f"head {h}" for h in range(cfg.n_heads)], key="hover_vit",
                    grid=(grid, grid))
    one = pat.mean(0) if head == "mean over heads" else pat[head]
    st.plotly_chart(lib.heatmap(one, labels, labels, f"blocks.{layer}.attn.hook_pattern, head {head}", zmax=1.0),
                    key="pattern")
