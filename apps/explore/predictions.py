"""Top predictions at a position, and direct logit attribution (`probe.interp.logit_attribution`): how much each
head, MLP, embedding and bias writes towards the answer's logit (minus another token's, for a logit difference),
with the total checked against the model's own logit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from apps import figures, lib
from apps.explore.subject import Spec, Subject, make_inputs
from probe.interp.components import stacks
from probe.interp.logit_attribution import direct_logit_attribution

AUTO = -1


@st.cache_data(show_spinner=False, max_entries=64)
def output_logits(path: str, stamp: float, spec: Spec) -> np.ndarray:
    """The first example's logits: [pos, out] for a language model, [out] for a classifier."""
    model = lib.load_model(path)
    with torch.no_grad():
        return model(**make_inputs(spec, model.device))[0].float().cpu().numpy()


@st.cache_data(show_spinner=False, max_entries=64)
def dla(path: str, stamp: float, spec: Spec, answer: int, wrong: int | None, pos: int | None) -> dict:
    model = lib.load_model(path)
    r = direct_logit_attribution(model, make_inputs(spec, model.device), answer, wrong, pos=pos)
    return {"labels": r.labels, "values": r.values.numpy(), "heads": {k: v.numpy() for k, v in r.heads.items()}}


def topk_table(logits: np.ndarray, k: int, names: list[str]) -> pd.DataFrame:
    t = torch.from_numpy(logits)
    probs = t.softmax(-1)
    top = probs.topk(min(k, probs.shape[-1]))
    return pd.DataFrame({"token": [names[i] for i in top.indices.tolist()], "id": top.indices.tolist(),
                         "prob": top.values.tolist(), "logit": t[top.indices].tolist()})


def choose_position(s: Subject, key: str = "position") -> int | None:
    """A position slider for per-position outputs (default: the last), None for pooled outputs."""
    if not s.lm and not (s.kind == "transformer" and s.model.cfg.head == "token"):
        return None
    labels = s.labels[s.out_key]
    return st.slider("Position", 0, len(labels) - 1, len(labels) - 1, key=key, bind="query-params",
                     help="the output position whose prediction is read (default: the last)")


def choose_token(label: str, names: list[str], key: str, auto: str) -> int:
    """A token / class choice; AUTO (-1) stands for `auto`."""
    options = [AUTO, *range(len(names))]
    return st.selectbox(label, options, key=key, bind="query-params",
                        format_func=lambda i: auto if i == AUTO else f"{names[i]} (id {i})")


def predictions_view(s: Subject) -> None:
    logits_all = output_logits(s.path, s.stamp, s.spec)
    names = s.out_labels
    pos = choose_position(s)
    logits = logits_all[pos] if pos is not None else logits_all
    if pos is not None:
        what = "next token" if s.lm else "token"
        st.caption(f"Top {what} predictions at position {pos} ({s.labels[s.out_key][pos]!r})")
    else:
        st.caption("Top classes of the input" + (f" (true label {s.image_label})" if s.image_label is not None else ""))
    k = st.slider("Top k", 1, min(20, len(names)), min(5, len(names)), key="topk", bind="query-params")
    st.dataframe(topk_table(logits, k, names), hide_index=True)

    st.subheader("Direct logit attribution")
    c1, c2 = st.columns(2)
    with c1:
        answer = choose_token("Answer", names, "answer", "the top prediction")
    with c2:
        wrong = choose_token("Minus (logit difference)", names, "wrong", "none: the answer's logit alone")
    answer = int(logits.argmax()) if answer == AUTO else answer
    wrong = None if wrong == AUTO else wrong
    try:
        r = dla(s.path, s.stamp, s.spec, answer, wrong, pos)
    except ValueError as e:
        st.info(f"No direct logit attribution for this model: {e}")
        return
    target = float(logits[answer] - (logits[wrong] if wrong is not None else 0.0))
    metric = f"logit[{names[answer]}]" + (f" - logit[{names[wrong]}]" if wrong is not None else "")
    st.caption(f"{metric} = {target:.4f}; the components below sum to {float(r['values'].sum()):.4f} (the final "
               "norm's scale frozen at its value on this input, so the sum is exact).")
    st.plotly_chart(figures.bar(r["labels"], r["values"], f"direct contribution to {metric}", "logit"), key="dla")
    found = stacks(s.model)
    cols = st.columns(len(r["heads"]))
    zmax = max(float(np.abs(h).max()) for h in r["heads"].values()) or 1.0
    for col, (name, heads) in zip(cols, r["heads"].items()):
        col.plotly_chart(figures.signed_heatmap(heads, [f"H{h}" for h in range(heads.shape[1])],
                                                [f"L{layer}" for layer in range(heads.shape[0])],
                                                f"heads, {found[name].label}", "head", "layer", zmax=zmax),
                         key=f"dla_heads_{name}")
