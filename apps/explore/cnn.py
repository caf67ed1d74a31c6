"""A CNN checkpoint (probe.models.cnn, He et al. 2016): the test image, its class probabilities, and the feature
maps every hook records (stem, each block's first conv and output, each stage), channel by channel."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from apps import figures, lib
from apps.explore.subject import Spec, Subject, make_inputs


@st.cache_data(show_spinner=False, max_entries=64)
def feature_maps(path: str, stamp: float, spec: Spec) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Class probabilities and every [channel, h, w] hook activation of the first image."""
    model = lib.load_model(path)
    with torch.no_grad():
        logits, cache = model.run_with_cache(**make_inputs(spec, model.device))
    maps = {name: cache[name][0].float().cpu().numpy() for name in cache if cache[name].ndim == 4}
    return logits[0].float().softmax(-1).cpu().numpy(), maps


def cnn_view(s: Subject) -> None:
    probs, maps = feature_maps(s.path, s.stamp, s.spec)
    image = s.inputs["images"][0, 0].cpu().numpy()
    st.caption(f"True label {s.image_label}; predicted {int(probs.argmax())} (p = {float(probs.max()):.3f}).")
    a, b = st.columns(2)
    a.plotly_chart(figures.image(image, f"test image (label {s.image_label})", zmax=1.0), key="image_fig")
    b.plotly_chart(figures.bar([str(i) for i in range(len(probs))], probs, "class probabilities", "p"), key="probs")
    hook = st.selectbox("Feature maps of", list(maps), key="cnn_hook", bind="query-params")
    fmap = maps[hook]
    n = min(len(fmap), 16)
    st.plotly_chart(figures.image_grid(fmap[:n], [f"channel {c}" for c in range(n)],
                                       f"{hook}: {fmap.shape[0]} channels of {fmap.shape[1]}x{fmap.shape[2]}"
                                       + (f" (first {n})" if n < len(fmap) else ""), zmax=float(fmap.max()) or 1.0,
                                       side=160), key="feature_maps")
