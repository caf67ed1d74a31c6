"""Sparse autoencoders: an SAE checkpoint (`probe.sae.save_sae`) with SAELens' measures on its stored inputs, and the
top-activating examples of each latent (`probe.sae.top_activations`): token windows coloured by the latent's
activation, or the images with the patch that activates it. Nothing is trained here."""

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from apps import lib

st.title("Sparse autoencoders")

entries = [c for c in lib.all_checkpoints() if "error" not in c and c.get("kind") == "sae"]
if not entries:
    st.info(f"No SAE checkpoints under {lib.checkpoints_root()} or {lib.runs_root()}. Train one with `probe.sae` "
            "and save it with `probe.sae.save_sae(sae, DIR, MODEL_DIR, inputs)` (see the README, *Sparse "
            "autoencoders*).")
    st.stop()
name = st.selectbox("SAE", [c["name"] for c in entries], key="sae", bind="query-params",
                    help=f"SAE checkpoints under {lib.checkpoints_root()} and inside runs under {lib.runs_root()}")
path = lib.checkpoint_path(name)
TOP_K = 8


@st.cache_resource(show_spinner="loading the SAE and its model ...")
def load(path: str, stamp: float):
    from probe.sae import load_sae

    return load_sae(path)


@st.cache_data(show_spinner="running the model over the stored inputs ...")
def measure(path: str, stamp: float) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    from probe.sae import evaluate, latent_summary, top_activations

    sae, _, site, inputs = load(path, stamp)
    metrics = evaluate(sae, site, inputs)
    return metrics, latent_summary(sae, site, inputs), top_activations(sae, site, inputs, k=TOP_K)


lib.torch_threads()
try:
    sae, model, site, inputs = load(str(path), lib.stamp(path))
    metrics, summary, top = measure(str(path), lib.stamp(path))
except Exception as e:  # a broken or mismatched checkpoint is reported, not raised
    st.error(f"Could not load the SAE {path}: {type(e).__name__}: {e}")
    st.stop()

cfg = sae.cfg
where = f"{cfg.hook}" + (f", head {cfg.head}" if cfg.head is not None else "")
st.caption(f"{cfg.architecture} SAE" + (f" (k={cfg.k})" if cfg.k else f" (L1 {cfg.l1_coefficient:g})")
           + f", {cfg.d_in} -> {cfg.d_sae} latents, reading {where} of a {lib.describe(model)}")
cols = st.columns(4)
cols[0].metric("L0", f"{metrics['l0']:.2f}", help="mean number of active latents per row")
cols[1].metric("Explained variance", f"{metrics['explained_variance']:.3f}",
               help="1 - sum |x - x_hat|^2 / sum |x - mean x|^2 over the stored inputs' rows")
cols[2].metric("Dead latents", f"{metrics['dead_fraction']:.1%}",
               help=f"latents that fire on none of the {metrics['n_rows']} rows of the stored inputs")
cols[3].metric("CE loss recovered", f"{metrics['ce_loss_recovered']:.3f}",
               help=f"(L_zero-ablated - L_SAE) / (L_zero-ablated - L_clean): L_clean {metrics['ce_loss_clean']:.4f}, "
                    f"L_SAE {metrics['ce_loss_sae']:.4f}, L_zero-ablated {metrics['ce_loss_ablated']:.4f}")
with st.expander("SAE details"):
    st.json(json.loads(json.dumps({"config": cfg.to_dict(), "meta": lib.read_meta(str(path))}, default=str)),
            expanded=False)

st.subheader("Latents")
live = summary[summary["frequency"] > 0].sort_values("frequency", ascending=False)
st.caption(f"{len(live)} of {cfg.d_sae} latents fire on the stored inputs; sorted by how often they fire.")
if live.empty:
    st.info("No latent fires on the stored inputs.")
    st.stop()
latent = st.selectbox("Latent", live["latent"].tolist(), key="latent", bind="query-params",
                      format_func=lambda j: f"{j} (fires on {summary.loc[j, 'frequency']:.1%} of rows)")
st.dataframe(live, hide_index=True, height=200, key="latents")

rows = top[top["latent"] == latent].sort_values("rank")
st.subheader(f"Top-activating examples of latent {latent}")
kind = getattr(model.cfg, "kind", "")

if "tokens" in inputs.tensors:
    import torch

    from probe.sae import token_context

    before, after = 8, 2
    tokens = inputs.tensors["tokens"]
    tok = getattr(model, "tokenizer", None)

    def label(i: int) -> str:
        return (tok.id_to_token(i) or str(i)) if tok is not None and hasattr(tok, "id_to_token") else str(i)

    # the latent's activation on every token of each window (one forward per example)
    act = site.read({"tokens": tokens[rows["example"].tolist()].to(model.device)})
    with torch.no_grad():
        per_token = sae.encode(site.rows(act).to(sae.device))[:, latent].reshape(len(rows), -1).float().cpu()
    z, text, ylabels = [], [], []
    for i, r in enumerate(rows.itertuples()):
        window, at = token_context(tokens[r.example], r.position, before, after)
        lo = r.position - at
        values = per_token[i, lo : lo + len(window)].tolist()
        pad = before + after + 1 - len(window)
        z.append([None] * (before - at) + values + [None] * (pad - (before - at)))
        text.append([""] * (before - at) + [label(t) for t in window] + [""] * (pad - (before - at)))
        ylabels.append(f"#{r.rank}: example {r.example}, pos {r.position}")
    fig = go.Figure(go.Heatmap(z=z, text=text, texttemplate="%{text}", colorscale="Blues", zmin=0,
                               x=list(range(-before, after + 1)), y=ylabels,
                               hovertemplate="%{text}<br>activation %{z:.3f}<extra></extra>"))
    fig.update_layout(height=60 + 36 * len(rows), margin=dict(l=10, r=10, t=30, b=10), yaxis_autorange="reversed",
                      xaxis_title="position relative to the top-activating token")
    st.plotly_chart(fig, key="token_windows")
    st.dataframe(rows[["rank", "activation", "example", "position"]], hide_index=True, key="top_rows")
elif "images" in inputs.tensors and kind == "vit":
    from probe.sae import vit_patch

    images = inputs.tensors["images"]
    patch = model.cfg.patch_size
    cols = st.columns(4)
    for i, r in enumerate(rows.itertuples()):
        img = images[r.example].float().mean(0).numpy()  # channels averaged for display
        fig = go.Figure(go.Heatmap(z=img, colorscale="gray_r", showscale=False))
        cell = vit_patch(model, r.position)
        title = f"#{r.rank} example {r.example}: " + ("class token" if cell is None else f"patch {cell}")
        if cell is not None:
            y0, x0 = cell[0] * patch - 0.5, cell[1] * patch - 0.5
            fig.add_shape(type="rect", x0=x0, x1=x0 + patch, y0=y0, y1=y0 + patch, line=dict(color="red", width=3))
        fig.update_layout(title=f"{title}<br>activation {r.activation:.3f}", height=260, yaxis_autorange="reversed",
                          margin=dict(l=5, r=5, t=50, b=5), xaxis_visible=False, yaxis_visible=False)
        cols[i % 4].plotly_chart(fig, key=f"image_{i}")
else:
    st.caption("Top rows (example index into the stored inputs, and the row within it):")
    st.dataframe(rows[["rank", "activation", "example", "position"]], hide_index=True, key="top_rows")

if rows.empty:
    st.info(f"Latent {latent} does not fire on the stored inputs.")
st.caption(f"Activations of the SAE's latents on {len(inputs)} stored inputs; "
           f"{np.count_nonzero(top['latent'] == latent)} of the top {TOP_K} shown.")
