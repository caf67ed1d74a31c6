"""Model explorer: one checkpoint, one input, and what a researcher asks of it: attention (hover a query token;
every head of a layer with token labels), predictions with direct logit attribution, the logit lens, activation and
attribution patching, ablation of any set of heads, OV / QK circuits. Decoders, encoders, encoder-decoders, linear
attention and ViTs (on digits test images) get every view that makes sense for them; a CNN shows its feature maps.

Every choice lives in the URL (widgets bound with `bind="query-params"`): copy the address to share the view.
The computations are `probe.interp` functions (callable from a notebook), cached per checkpoint and input."""

import json

import streamlit as st

from apps import lib
from apps.explore.ablation import ablation_view
from apps.explore.attention import transformer_attention, vit_attention
from apps.explore.circuits import circuits_view
from apps.explore.cnn import cnn_view
from apps.explore.lens import lens_view
from apps.explore.patching import patching_view
from apps.explore.predictions import predictions_view
from apps.explore.subject import image_ok, transformer_subject, vit_subject

st.title("Model explorer")

ORDER = {"transformer": 0, "vit": 1, "cnn": 2}  # what the explorer shows best comes first
entries = sorted((c for c in lib.all_checkpoints() if "error" not in c),
                 key=lambda c: (c["root"] != "checkpoints", ORDER.get(c.get("kind"), 3), c["name"]))
kinds = {c["name"]: c.get("kind") for c in entries}
name = st.selectbox("Checkpoint", [*kinds, lib.DEMO], key="checkpoint", bind="query-params",
                    help=f"model checkpoints under {lib.checkpoints_root()} and inside runs under {lib.runs_root()}")
if not entries:
    st.info(f"No checkpoints under {lib.checkpoints_root()} or {lib.runs_root()}: showing a freshly initialised "
            "decoder.")
path = lib.DEMO if name == lib.DEMO else str(lib.checkpoint_path(name))
try:
    model = lib.load_model(path)
except Exception as e:  # a broken checkpoint is reported, not raised: the page stays usable
    st.error(f"Could not load {path}: {type(e).__name__}: {e}")
    st.stop()
meta = lib.read_meta(path)
st.caption(lib.describe(model) + (f"; trained {meta['step']} steps" if meta.get("step") else ""))

if name != lib.DEMO:
    entry = next(c for c in entries if c["name"] == name)
    run = lib.run_of_checkpoint(entry)
    if run is not None:
        st.page_link("views/runs_browser.py", label=f"Trained in run {run}: open it in the runs browser",
                     query_params={"run": run}, icon=":material/folder_open:")
    with st.expander("checkpoint details"):
        st.write({"path": path, "command": meta.get("command"), "step": meta.get("step"),
                  "metrics": meta.get("metrics"), "task": meta.get("task")})
        st.json(json.loads(json.dumps(model.cfg.to_dict(), default=str)), expanded=False)

kind = getattr(model.cfg, "kind", type(model).__name__)
if kind == "transformer":
    subject = transformer_subject(name, path, model, meta)
    views = {"Attention": transformer_attention, "Predictions": predictions_view, "Logit lens": lens_view,
             "Patching": patching_view, "Ablation": ablation_view, "Circuits": circuits_view}
elif kind == "vit":
    if not image_ok(model):
        st.info(f"This ViT takes {model.cfg.n_channels}x{model.cfg.image_size}x{model.cfg.image_size} images; the "
                "built-in test images are 1x8x8 digits, so there is nothing to show here.")
        st.stop()
    subject = vit_subject(name, path, model, meta)
    views = {"Attention": vit_attention, "Predictions": predictions_view, "Logit lens": lens_view,
             "Patching": patching_view, "Ablation": ablation_view}
elif kind == "cnn":
    if not image_ok(model):
        st.info(f"This CNN takes {model.cfg.n_channels}-channel images; the built-in test images are 1x8x8 digits.")
        st.stop()
    subject = vit_subject(name, path, model, meta)
    views = {"Feature maps": cnn_view}
elif kind == "scan_snap":
    st.info("This is a Scan-and-Snap model (one query attending over a bag of tokens): its attention over training "
            "is on the Scan & Snap replay page.")
    st.page_link("views/scan_snap_replay.py", label="Open the Scan & Snap replay", icon=":material/replay:")
    st.stop()
else:
    st.info(f"Checkpoint kind {kind!r} has no view here (a {type(model).__name__}); the explorer shows Transformers "
            "(decoder, encoder, encoder-decoder, linear attention), ViTs and CNNs. Its config is under *checkpoint "
            "details*.")
    st.stop()

tabs = st.tabs(list(views), key="view", bind="query-params")
for tab, view in zip(tabs, views.values()):
    if tab.open:
        with tab:
            view(subject)
