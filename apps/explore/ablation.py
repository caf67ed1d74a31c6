"""Head ablation that answers questions (`probe.interp.ablation`): any set of heads at once, zeroed, replaced by
their mean over a reference batch, or resampled from another input; the effect on the loss at every position (for a
language model), on the prediction at a chosen position, and for classifiers on the class probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from apps import figures, lib
from apps.explore.predictions import choose_position, topk_table
from apps.explore.subject import Spec, Subject, make_inputs
from probe.interp.ablation import METHODS, ablation_hooks, loss_by_position, random_like
from probe.interp.components import stacks

N_REFERENCE = 32


def head_options(model: Any) -> dict[str, tuple[str, int, int]]:
    return {st_.head_label(layer, h): (name, layer, h) for name, st_ in stacks(model).items()
            for layer in range(st_.n_layers) for h in range(st_.n_heads)}


def reference(model: Any, inputs: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """The reference batch of mean / resample ablation: digits test images for a ViT, else random ordinary tokens
    of the input's length with its pad / bos / eos kept in place."""
    if "images" in inputs:
        from probe.data.images import digits

        gen = torch.Generator().manual_seed(seed)
        test = digits("test")
        idx = torch.randperm(len(test), generator=gen)[:N_REFERENCE]
        return {"images": test.images[idx].to(inputs["images"].device)}
    return random_like(model, inputs, N_REFERENCE, seed=seed, keep=tuple(lib.special_ids(model.cfg)))


@st.cache_data(show_spinner=False, max_entries=64)
def ablated(path: str, stamp: float, spec: Spec, heads: tuple[tuple[str, int, int], ...], method: str,
            seed: int) -> dict[str, np.ndarray]:
    """Clean and ablated logits of the first example, and the loss by position of both (language models)."""
    model = lib.load_model(path)
    inputs = make_inputs(spec, model.device)
    ref = reference(model, inputs, seed) if method != "zero" else None
    hooks = ablation_hooks(model, list(heads), method, ref, seed=seed)
    with torch.no_grad():
        clean = model(**inputs)
        out = model.run_with_hooks(**inputs, fwd_hooks=hooks)
    result = {"clean": clean[0].float().cpu().numpy(), "ablated": out[0].float().cpu().numpy()}
    cfg = model.cfg
    if getattr(cfg, "kind", "") == "transformer" and cfg.head == "lm" and cfg.arch != "encoder":
        result["clean_loss"] = loss_by_position(model, inputs, clean)[0].cpu().numpy()
        result["ablated_loss"] = loss_by_position(model, inputs, out)[0].cpu().numpy()
    return result


def ablation_view(s: Subject) -> None:
    options = head_options(s.model)
    chosen = st.multiselect("Heads to ablate", list(options), key="ablate_heads", bind="query-params",
                            help="any number of heads, from any stack")
    c1, c2 = st.columns(2)
    method = c1.radio("Ablation", METHODS, horizontal=True, key="method", bind="query-params",
                      help="zero: z = 0; mean: z = its mean over 32 reference inputs at each position; resample: "
                           "z taken from one random reference input")
    seed = c2.number_input("Reference seed", 0, 10_000, 0, key="ablation_seed", bind="query-params",
                           help="draws the reference batch (random tokens of the same length, or digits test "
                           "images) and the resampled example")
    if not chosen:
        st.caption("Choose one or more heads to see what the model loses without them.")
        return
    heads = tuple(options[c] for c in chosen)
    r = ablated(s.path, s.stamp, s.spec, heads, method, int(seed))
    names = s.out_labels
    if "clean_loss" in r:
        tokens = s.labels[s.out_key]
        x = [f"{i}:{tokens[i]} -> {tokens[i + 1]}" for i in range(len(tokens) - 1)]
        c1, c2 = st.columns(2)
        c1.metric("mean loss, clean", f"{r['clean_loss'].mean():.4f}")
        c2.metric(f"mean loss, {method}-ablated", f"{r['ablated_loss'].mean():.4f}",
                  delta=f"{r['ablated_loss'].mean() - r['clean_loss'].mean():+.4f}", delta_color="inverse")
        fig = go.Figure([go.Bar(x=x, y=r["clean_loss"], name="clean"),
                         go.Bar(x=x, y=r["ablated_loss"], name=f"{method}-ablated {', '.join(chosen)}")])
        fig.update_layout(title="next-token loss at every position", barmode="group", height=340,
                          margin=figures.MARGIN, yaxis_title="cross-entropy (nats)")
        fig.update_xaxes(type="category")
        st.plotly_chart(fig, key="ablation_loss")
    pos = choose_position(s, key="ablation_position")
    clean = r["clean"][pos] if pos is not None else r["clean"]
    abl = r["ablated"][pos] if pos is not None else r["ablated"]
    diff = abl - clean
    p, q = torch.from_numpy(clean).softmax(-1), torch.from_numpy(abl).softmax(-1)
    kl = float((p * (p.clamp_min(1e-30).log() - q.clamp_min(1e-30).log())).sum())
    c1, c2 = st.columns(2)
    c1.metric("max |logit change|", f"{np.abs(diff).max():.4f}")
    c2.metric("KL(clean || ablated)", f"{kl:.4g}")
    table = topk_table(clean, min(5, len(names)), names)
    table["ablated prob"] = q[table["id"].tolist()].tolist()
    table["ablated logit"] = abl[table["id"].tolist()].tolist()
    table["change"] = table["ablated logit"] - table["logit"]
    st.dataframe(pd.DataFrame(table), hide_index=True)
    where = f" at position {pos}" if pos is not None else ""
    st.plotly_chart(figures.bar(names, diff, f"logit change (ablated - clean) per output{where}", "logit"),
                    key="ablation")
