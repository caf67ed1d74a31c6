"""A head's OV and QK circuits over the vocabulary (`probe.interp.circuits`, TransformerLens' FactoredMatrix):
token x token heat-maps, the OV circuit's top-1 diagonal accuracy (does the head copy what it attends to?) for the
chosen head and for every head of the stack."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from apps import figures, lib
from apps.explore.attention import choose_layer_head
from apps.explore.subject import Subject, choose_stack
from probe.interp.circuits import ov_accuracy_table, ov_circuit, qk_circuit, top1_diagonal_accuracy
from probe.interp.components import stacks


@st.cache_data(show_spinner=False, max_entries=64)
def circuit(path: str, stamp: float, which: str, stack: str, layer: int, head: int) -> np.ndarray:
    model = lib.load_model(path)
    fn = ov_circuit if which == "ov" else qk_circuit
    with torch.no_grad():
        return fn(model, layer, head, stack).AB.float().cpu().numpy()


@st.cache_data(show_spinner=False, max_entries=32)
def accuracies(path: str, stamp: float, stack: str) -> np.ndarray | None:
    model = lib.load_model(path)
    try:
        return ov_accuracy_table(model, stack).numpy()
    except ValueError:
        return None


def circuits_view(s: Subject) -> None:
    if s.kind != "transformer":
        st.info("OV / QK circuits over tokens need a token embedding; this model reads image patches.")
        return
    stack = choose_stack(s.model, "Heads of", "circuit_stack", exclude=("encoder",))  # the encoder writes no logits
    st_ = stacks(s.model)[stack]
    layer, head = choose_layer_head(st_.n_layers, st_.n_heads)
    vocab = lib.token_labels(s.model, list(range(s.model.cfg.d_vocab)))
    outs = s.out_labels
    ov = circuit(s.path, s.stamp, "ov", stack, layer, head)
    try:
        acc = top1_diagonal_accuracy(torch.from_numpy(ov))
        st.metric(f"OV top-1 diagonal accuracy, {st_.head_label(layer, head)}", f"{acc:.3f}",
                  help="fraction of tokens whose largest OV output logit is the token itself (1.0: a copying head)")
    except ValueError as e:
        st.caption(f"No diagonal accuracy: {e}")
    table = accuracies(s.path, s.stamp, stack)
    if table is not None:
        st.plotly_chart(figures.signed_heatmap(table, [f"H{h}" for h in range(st_.n_heads)],
                                               [f"L{i}" for i in range(st_.n_layers)],
                                               f"OV top-1 diagonal accuracy of every head ({st_.label})", "head",
                                               "layer", zmax=1.0, sequential=True,
                                               text=np.round(table, 2).astype(str)), key="ov_accuracy")
    left, right = st.columns(2)
    left.plotly_chart(figures.signed_heatmap(ov, outs, vocab, f"OV circuit W_E W_V W_O W_U, "
                                             f"{st_.head_label(layer, head)}", "output logit", "attended token",
                                             height=520), key="ov")
    try:
        qk = circuit(s.path, s.stamp, "qk", stack, layer, head)
    except ValueError as e:
        right.info(str(e))
        return
    key_label = "key token (source)" if stack == "cross" else "key token"
    right.plotly_chart(figures.signed_heatmap(qk, vocab, vocab, f"QK circuit W_E W_Q W_K^T W_E^T, "
                                              f"{st_.head_label(layer, head)}", key_label, "query token", height=520),
                       key="qk")
    st.caption("Direct token paths only: layer norms, biases and positions are left out, as in Elhage et al. 2021. "
               "For heads after layer 0 the QK circuit is the direct path of the embeddings.")
