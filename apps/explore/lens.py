"""The logit lens (`probe.interp.logit_lens`): the final norm and unembedding read after every layer. For a
language model, each stream x position cell shows the probability of the token the model finally predicts there
(or of the next input token) and the lens's own top token; for a ViT, the patch-wise lens: the probability of the
label at every patch, layer by layer, and the class token's prediction."""

from __future__ import annotations

import numpy as np
import streamlit as st

from apps import figures, lib
from apps.explore.subject import Spec, Subject, make_inputs
from probe.interp.logit_lens import logit_lens


@st.cache_data(show_spinner=False, max_entries=64)
def lens_probs(path: str, stamp: float, spec: Spec) -> tuple[list[str], np.ndarray]:
    """Stream labels and the lens's probabilities [stream, pos, out] on the first example."""
    model = lib.load_model(path)
    labels, lens = logit_lens(model, make_inputs(spec, model.device))
    return labels, lens[:, 0].float().softmax(-1).cpu().numpy()


def lens_view(s: Subject) -> None:
    streams, probs = lens_probs(s.path, s.stamp, s.spec)  # [stream pos out]
    names = s.out_labels
    if s.kind == "vit":
        return vit_lens(s, streams, probs)
    tokens = s.labels[s.out_key]
    final = probs[-1].argmax(-1)  # what the model predicts at each position
    options = ["the model's final prediction"] + (["the next input token"] if s.lm else [])
    target = st.radio("Probability of", options, horizontal=True, key="lens_target", bind="query-params")
    if target == options[0]:
        want = final
        x = [f"{i}:{t}" for i, t in enumerate(tokens)]
        kept = slice(None)
    else:  # position t is scored on input token t+1
        ids = s.inputs[s.out_key][0].tolist()
        want = np.array(ids[1:], dtype=int)
        x = [f"{i}:{tokens[i]} -> {tokens[i + 1]}" for i in range(len(tokens) - 1)]
        kept = slice(0, len(tokens) - 1)
    p = probs[:, kept][:, np.arange(len(want)), want]  # [stream pos]
    top = probs[:, kept].argmax(-1)
    text = np.array([[names[i] for i in row] for row in top])
    st.plotly_chart(figures.signed_heatmap(p, x, streams, f"logit lens: p({target}); text: the lens's top token",
                                           "position", "residual stream after", zmax=1.0, text=text, sequential=True),
                    key="lens")
    st.caption("Rows: the residual stream at the embedding and after each layer, read through the final norm and "
               "the unembedding. The last row is the model's own output.")


def vit_lens(s: Subject, streams: list[str], probs: np.ndarray) -> None:
    cfg = s.model.cfg
    grid = cfg.image_size // cfg.patch_size
    label = s.image_label
    predicted = int(probs[-1, 0].argmax()) if cfg.pool == "cls" else int(probs[-1, 1:].mean(0).argmax())
    options = [f"true label ({label})", f"the model's prediction ({predicted})"]
    choice = st.radio("Probability of", options, horizontal=True, key="lens_target", bind="query-params")
    cls = label if choice == options[0] else predicted
    maps = probs[:, 1:, cls].reshape(len(streams), grid, grid)
    st.plotly_chart(figures.image_grid(maps, [f"after {n}" if n != "embed" else "embedding" for n in streams],
                                       f"patch-wise logit lens: p(class {cls}) at every patch", zmax=1.0),
                    key="lens_patches")
    rows = [{"stream": n, "class token's top class": int(probs[i, 0].argmax()),
             f"class token's p(class {cls})": float(probs[i, 0, cls]),
             f"patches predicting {cls}": float((probs[i, 1:].argmax(-1) == cls).mean())}
            for i, n in enumerate(streams)]
    st.dataframe(rows, hide_index=True)
    st.caption("ln_final and the head applied to every token of each residual stream "
               "(analyses/vision/vit_attention.py's lens, for this one image).")
