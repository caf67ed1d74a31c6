"""Activation patching and attribution patching side by side (`probe.interp.patching`, exact sweeps through
`transformer_lens.patching`): a clean and a corrupted input, a metric (a logit difference, or the loss), and the
effect of restoring each head (layer x head) or each residual position (layer x position) from the clean run into
the corrupted one, next to the gradient estimate of the same effect."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from apps import figures, lib
from apps.explore.predictions import AUTO, choose_position, choose_token, output_logits
from apps.explore.subject import Spec, Subject, choose_stack, make_inputs, read_tokens
from probe.interp.components import stacks
from probe.interp.patching import activation_patching, attribution_patching, logit_diff_metric, loss_metric

MetricSpec = tuple[Any, ...]


def make_metric(spec: MetricSpec, device: Any):
    if spec[0] == "logit_diff":
        _, answer, wrong, pos = spec
        return logit_diff_metric(answer, wrong, pos)
    return loss_metric(torch.tensor([list(spec[1])], device=device).reshape(spec[2]))


@st.cache_data(show_spinner=False, max_entries=64)
def sweep(path: str, stamp: float, clean: Spec, corrupted: Spec, metric: MetricSpec, what: str, stack: str,
          method: str) -> np.ndarray:
    """[layer, head|pos] exact patched metric (method "exact") or attribution estimate of the effect."""
    model = lib.load_model(path)
    fn = activation_patching if method == "exact" else attribution_patching
    dev = model.device
    return fn(model, make_inputs(clean, dev), make_inputs(corrupted, dev), make_metric(metric, dev), what,
              stack).numpy()


@st.cache_data(show_spinner=False, max_entries=64)
def metric_value(path: str, stamp: float, spec: Spec, metric: MetricSpec) -> float:
    model = lib.load_model(path)
    with torch.no_grad():
        return float(make_metric(metric, model.device)(model(**make_inputs(spec, model.device))))


def corrupted_input(s: Subject) -> Spec | None:
    """The corrupted input: typed, or by default the clean one with its first half changed (a ViT: another test
    image of a different class)."""
    if s.kind == "vit":
        from probe.data.images import digits

        test = digits("test")
        default = next(i for i in range(len(test)) if int(test[i][1]) != s.image_label)
        idx = st.slider("Corrupted image (digits test set)", 0, len(test) - 1, default, key="corrupted_image",
                        bind="query-params")
        a, b = st.columns(2)
        a.plotly_chart(figures.image(test[dict(s.spec)["images"][2]][0][0].numpy(), f"clean (label {s.image_label})",
                                     height=220, zmax=1.0), key="clean_image")
        b.plotly_chart(figures.image(test[idx][0][0].numpy(), f"corrupted (label {int(test[idx][1])})", height=220,
                                     zmax=1.0), key="corrupted_image_fig")
        return (("images", ("digits", "test", idx)),)
    key = "src" if s.model.cfg.arch == "encoder_decoder" else "tokens"
    clean_ids = list(dict(s.spec)[key])
    default = lib.default_corruption(s.model, clean_ids)
    ids = read_tokens(s.model, f"Corrupted {'source' if key == 'src' else 'tokens'}", "corrupted", None,
                      help="empty: the clean input with its first half moved to other tokens")
    ids = ids or default
    if len(ids) != len(clean_ids):
        st.error(f"The corrupted input has {len(ids)} tokens but the clean one has {len(clean_ids)}: patching swaps "
                 "activations position by position, so both need the same length.")
        return None
    changed = [i for i, (a, b) in enumerate(zip(clean_ids, ids)) if a != b]
    st.caption(f"Corrupted: {' '.join(lib.token_labels(s.model, ids))} (differs at positions {changed})")
    spec = dict(s.spec)
    spec[key] = tuple(ids)
    return tuple((k, spec[k]) for k, _ in s.spec)


def choose_metric(s: Subject, corrupted: Spec) -> tuple[MetricSpec, str]:
    kinds = ["logit difference", "loss"]
    kind = st.radio("Metric", kinds, horizontal=True, key="metric", bind="query-params")
    clean_logits = output_logits(s.path, s.stamp, s.spec)
    if kind == "loss":
        if s.lm:
            ids = list(dict(s.spec)[s.out_key])
            labels = ids[1:] + [-100]
            what = "next-token loss on the clean input's tokens"
        else:  # the clean run's own predictions are the labels
            labels = clean_logits.argmax(-1).reshape(-1).tolist()
            what = "cross-entropy against the clean run's predictions"
        shape = (1, len(labels)) if clean_logits.ndim == 2 else (1,)
        return ("loss", tuple(labels), shape), what
    names = s.out_labels
    pos = choose_position(s, key="patch_position")
    c1, c2 = st.columns(2)
    with c1:
        answer = choose_token("Answer", names, "patch_answer", "the clean top prediction")
    with c2:
        wrong = choose_token("Minus", names, "patch_wrong", "the corrupted top prediction")
    at = clean_logits[pos] if pos is not None else clean_logits
    answer = int(at.argmax()) if answer == AUTO else answer
    if wrong == AUTO:
        corr_logits = output_logits(s.path, s.stamp, corrupted)
        corr_at = corr_logits[pos] if pos is not None else corr_logits
        order = [int(i) for i in np.argsort(-corr_at) if int(i) != answer]
        wrong = order[0]
    where = f" at position {pos}" if pos is not None else ""
    return ("logit_diff", answer, wrong, pos if pos is not None else -1), \
        f"logit[{names[answer]}] - logit[{names[wrong]}]{where}"


def patching_view(s: Subject) -> None:
    corrupted = corrupted_input(s)
    if corrupted is None:
        return
    if corrupted == s.spec:
        st.info("The corrupted input equals the clean one: there is nothing to patch.")
        return
    metric, label = choose_metric(s, corrupted)
    clean_v = metric_value(s.path, s.stamp, s.spec, metric)
    corr_v = metric_value(s.path, s.stamp, corrupted, metric)
    c1, c2, c3 = st.columns(3)
    c1.metric("clean", f"{clean_v:.4f}")
    c2.metric("corrupted", f"{corr_v:.4f}")
    c3.metric("clean - corrupted", f"{clean_v - corr_v:.4f}")
    st.caption(f"Metric: {label}. Each cell: the metric of the corrupted run with that one activation restored from "
               "the clean run, minus the corrupted metric (exact, left), and its first-order estimate "
               "(a_clean - a_corrupted) . d metric / d a at the corrupted run (attribution patching, right).")
    normalise = st.toggle("Divide by clean - corrupted (1 = fully restored)", key="normalise", bind="query-params")
    scale = (clean_v - corr_v) if normalise and abs(clean_v - corr_v) > 1e-9 else 1.0

    found = stacks(s.model)
    head_stack = choose_stack(s.model, "Heads of", "patch_stack")
    resid_names = [n for n in found if n != "cross"]  # the cross stack shares the decoder's residual stream
    resid_stack = st.selectbox("Residual stream of", resid_names, key="patch_stream", index=len(resid_names) - 1,
                               bind="query-params") if len(resid_names) > 1 else resid_names[0]
    pairs = []
    for what, stack in (("heads", head_stack), ("resid", resid_stack)):
        exact = (sweep(s.path, s.stamp, s.spec, corrupted, metric, what, stack, "exact") - corr_v) / scale
        estimate = sweep(s.path, s.stamp, s.spec, corrupted, metric, what, stack, "attribution") / scale
        st_ = found[stack]
        x = [f"H{h}" for h in range(st_.n_heads)] if what == "heads" else \
            [f"{i}:{t}" for i, t in enumerate(s.labels[st_.queries])]
        y = [f"L{layer}" for layer in range(st_.n_layers)]
        zmax = max(float(np.abs(exact).max()), float(np.abs(estimate).max())) or 1.0
        axis = "head" if what == "heads" else "position"
        left, right = st.columns(2)
        left.plotly_chart(figures.signed_heatmap(exact, x, y, f"activation patching, layer x {axis} ({st_.label})",
                                                 axis, "layer", zmax=zmax), key=f"patch_{what}")
        right.plotly_chart(figures.signed_heatmap(estimate, x, y, f"attribution patching, layer x {axis}", axis,
                                                  "layer", zmax=zmax), key=f"attr_{what}")
        pairs.append((what, exact.ravel(), estimate.ravel()))
    fig = go.Figure()
    for what, exact, estimate in pairs:
        fig.add_trace(go.Scatter(x=exact, y=estimate, mode="markers", name=what))
    lim = max(max(np.abs(e).max(), np.abs(a).max()) for _, e, a in pairs) or 1.0
    fig.add_trace(go.Scatter(x=[-lim, lim], y=[-lim, lim], mode="lines", line=dict(dash="dot", color="grey"),
                             name="estimate = exact"))
    fig.update_layout(title="attribution estimate against exact patching", xaxis_title="exact effect",
                      yaxis_title="attribution estimate", height=360, margin=figures.MARGIN)
    st.plotly_chart(fig, key="patch_scatter")
