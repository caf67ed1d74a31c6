"""Model explorer: a checkpoint's attention patterns (run_with_cache), top next-token predictions, and head ablation
(zeroing one head's hook_z with run_with_hooks, as in TransformerLens' ablation demos). ViT checkpoints show the
class token's attention over the patches of a digits test image; other kinds say what they are."""

import importlib.util
import json
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from apps import lib

st.title("Model explorer")

ORDER = {"transformer": 0, "vit": 1}  # what the explorer shows best comes first
ckpts = sorted((c for c in lib.list_checkpoints() if "error" not in c), key=lambda c: ORDER.get(c.get("kind"), 2))
labels = {c["path"]: f"{c['name']} ({c.get('kind')})" for c in ckpts} | {lib.DEMO: lib.DEMO}
choice = st.selectbox("Checkpoint", list(labels), format_func=labels.get, key="checkpoint",
                      help=f"model checkpoints under {lib.checkpoints_root()}")
if not ckpts:
    st.info(f"No checkpoints under {lib.checkpoints_root()}: showing a freshly initialised decoder.")
try:
    model = lib.load_model(choice)
except Exception as e:  # a broken checkpoint is reported, not raised: the page stays usable
    st.error(f"Could not load {choice}: {type(e).__name__}: {e}")
    st.stop()

if choice != lib.DEMO:
    with st.expander("checkpoint details"):
        meta_file = Path(choice) / "meta.json"
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        st.write({"command": meta.get("command"), "step": meta.get("step"), "metrics": meta.get("metrics")})
        st.json(model.cfg.to_dict(), expanded=False)

kind = getattr(model.cfg, "kind", type(model).__name__)


def token_labels(ids: list[int]) -> list[str]:
    tok = getattr(model, "tokenizer", None)
    if tok is not None and hasattr(tok, "id_to_token"):
        return [tok.id_to_token(i) or str(i) for i in ids]
    return [str(i) for i in ids]


def read_tokens(label: str, key: str, default: list[int]) -> list[int]:
    """Text through the checkpoint's tokenizer when it has one, else token ids typed by hand."""
    cfg = model.cfg
    tok = getattr(model, "tokenizer", None)
    if tok is not None:
        text = st.text_input(f"{label} (text, encoded with the checkpoint's tokenizer)", tok.decode(default), key=key)
        encoded = tok.encode(text)
        if not encoded.ids:
            st.error(f"{label}: the tokenizer produced no tokens for {text!r}")
            st.stop()
        st.caption(f"{len(encoded.ids)} tokens: {encoded.tokens}")
        return encoded.ids
    text = st.text_input(f"{label} (token ids in [0, {cfg.d_vocab}), space separated)",
                         " ".join(map(str, default)), key=key)
    try:
        return lib.parse_ids(text, cfg.d_vocab, label)
    except ValueError as e:
        st.error(str(e))
        st.stop()


def topk_table(logits: torch.Tensor, k: int, names: list[str]) -> pd.DataFrame:
    probs = logits.float().softmax(-1)
    top = probs.topk(min(k, probs.shape[-1]))
    return pd.DataFrame({"token": [names[i] for i in top.indices.tolist()], "id": top.indices.tolist(),
                         "prob": top.values.tolist(), "logit": logits[top.indices].tolist()})


def transformer_view() -> None:
    cfg = model.cfg
    # a repeated run of ordinary tokens (the last ids, past pad / bos / eos): induction heads show on it
    ordinary = [i for i in range(cfg.d_vocab) if i not in {cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id}]
    default = (ordinary[-6:] * 2)[: min(cfg.n_ctx, 12)]
    if cfg.arch == "encoder_decoder":
        src = read_tokens("Source", "src", default)
        bos = cfg.bos_token_id if cfg.bos_token_id is not None else 0
        tgt = read_tokens("Decoder input (starts with bos)", "tgt", [bos, *default[:3]])
        inputs = {"src": torch.tensor([src]), "tgt": torch.tensor([tgt])}
        seqs = {"encoder self-attention": (src, src), "decoder self-attention": (tgt, tgt),
                "decoder cross-attention": (tgt, src)}
        out_tokens = tgt
    else:
        ids = read_tokens("Tokens", "tokens", default)
        inputs = {"tokens": torch.tensor([ids])}
        seqs = {"self-attention": (ids, ids)}
        out_tokens = ids
    inputs = {k: v.to(model.device) for k, v in inputs.items()}
    groups = lib.pattern_hooks(model)
    if not groups:
        st.info(f"This model (attention={getattr(cfg, 'attention', '?')!r}) has no attention-pattern hooks to show.")
        st.stop()
    names = [n for g in groups.values() for n in g]
    try:
        with torch.no_grad():
            logits, cache = model.run_with_cache(**inputs, names_filter=names)
    except ValueError as e:
        st.error(f"The model rejected the input: {e}")
        st.stop()

    st.subheader("Attention patterns")
    cols = st.columns(3 if len(groups) > 1 else 2)
    stack = cols[0].selectbox("Stack", list(groups), key="stack") if len(groups) > 1 else next(iter(groups))
    layer = cols[-2].selectbox("Layer", list(range(len(groups[stack]))), key="layer")
    head = cols[-1].selectbox("Head", list(range(cfg.n_heads)), key="head")
    hook = groups[stack][layer]
    if hook not in cache:
        st.info(f"{hook} was not recorded by this attention kind.")
        st.stop()
    queries, keys = seqs.get(stack, (out_tokens, out_tokens))
    pattern = cache[hook][0].float().cpu().numpy()  # [head query key]
    st.plotly_chart(lib.heatmap(pattern[head], token_labels(keys), token_labels(queries),
                                f"{hook}, head {head}", zmax=1.0), key="pattern")
    with st.expander("all heads of this layer"):
        from plotly.subplots import make_subplots

        fig = make_subplots(1, cfg.n_heads, subplot_titles=[f"head {h}" for h in range(cfg.n_heads)])
        for h in range(cfg.n_heads):
            fig.add_trace(go.Heatmap(z=pattern[h], coloraxis="coloraxis"), 1, h + 1)
        fig.update_layout(coloraxis={"colorscale": "Viridis", "cmin": 0, "cmax": 1}, height=260,
                          margin=dict(l=10, r=10, t=40, b=10))
        fig.update_yaxes(autorange="reversed")
        st.plotly_chart(fig, key="all_heads")

    st.subheader("Predictions")
    names_out = token_labels(list(range(cfg.d_vocab_out))) if cfg.head != "classifier" else \
        [f"class {i}" for i in range(cfg.d_vocab_out)]
    if logits.ndim == 3:
        pos = st.slider("Position", 0, len(out_tokens) - 1, len(out_tokens) - 1, key="position",
                        help="the output position whose prediction is shown (default: the last)")
        at = logits[0, pos]
        what = "next token" if cfg.arch != "encoder" else "token"
        st.caption(f"Top {what} predictions at position {pos} ({token_labels(out_tokens)[pos]!r})")
    else:
        pos, at = None, logits[0]
        st.caption("Top classes of the sequence")
    k = st.slider("Top k", 1, min(20, cfg.d_vocab_out), min(5, cfg.d_vocab_out), key="topk")
    st.dataframe(topk_table(at, k, names_out), hide_index=True)

    st.subheader("Head ablation")
    z_hook = hook.replace("hook_pattern", "hook_z")
    if z_hook not in model.hook_dict:
        st.info(f"{z_hook} does not exist in this model: no ablation.")
        return
    if not st.toggle(f"Zero head {head} of {z_hook}", key="ablate"):
        st.caption("Turn the toggle on to zero this head's output (hook_z) and see how the logits change.")
        return

    def zero_head(z: torch.Tensor, hook=None) -> torch.Tensor:
        z = z.clone()
        z[:, :, head] = 0.0
        return z

    with torch.no_grad():
        ablated = model.run_with_hooks(**inputs, fwd_hooks=[(z_hook, zero_head)])
    ab = ablated[0, pos] if pos is not None else ablated[0]
    diff = (ab - at).float().cpu()
    clean_p, ab_p = at.float().softmax(-1), ab.float().softmax(-1)
    kl = float((clean_p * (clean_p.clamp_min(1e-30).log() - ab_p.clamp_min(1e-30).log())).sum())
    c1, c2 = st.columns(2)
    c1.metric("max |logit change|", f"{diff.abs().max():.4f}")
    c2.metric("KL(clean || ablated)", f"{kl:.4g}")
    table = topk_table(at, k, names_out)
    table["ablated logit"] = ab[table["id"].tolist()].tolist()
    table["change"] = table["ablated logit"] - table["logit"]
    st.dataframe(table, hide_index=True)
    fig = go.Figure(go.Bar(x=[names_out[i] for i in range(len(diff))], y=diff.numpy()))
    fig.update_layout(title="logit change (ablated - clean) per output token", height=300,
                      margin=dict(l=10, r=10, t=40, b=10))
    st.plotly_chart(fig, key="ablation")


def vit_view() -> None:
    from probe.data.images import digits

    cfg = model.cfg
    if (cfg.image_size, cfg.n_channels) != (8, 1):
        st.info(f"This ViT takes {cfg.n_channels}x{cfg.image_size}x{cfg.image_size} images; the built-in test images "
                "are 1x8x8 digits, so there is nothing to show here.")
        return
    test = digits("test")
    idx = st.slider("Digits test image", 0, len(test) - 1, 0, key="image")
    image, label = test[idx]
    groups = lib.pattern_hooks(model)
    names = groups.get("self-attention", [])
    with torch.no_grad():
        logits, cache = model.run_with_cache(image[None].to(model.device), names_filter=names)
    probs = logits[0].float().softmax(-1).cpu()
    cols = st.columns(2)
    layer = cols[0].selectbox("Layer", list(range(len(names))), key="layer")
    head_opts = ["mean over heads", *range(cfg.n_heads)]
    head = cols[1].selectbox("Head", head_opts, key="head")
    pattern = cache[names[layer]][0].float().cpu()  # [head query key]
    cls_row = pattern[:, 0, 1:].mean(0) if head == "mean over heads" else pattern[head, 0, 1:]
    grid = cfg.image_size // cfg.patch_size
    st.caption(f"True label {label}; predicted {int(probs.argmax())} (p = {float(probs.max()):.3f}). Class-token "
               f"attention of {names[layer]} over the {grid}x{grid} patches (it also attends to itself: "
               f"{float(1 - cls_row.sum()):.3f} of the mass).")
    a, b, c = st.columns(3)
    a.plotly_chart(lib.heatmap(image[0].numpy(), title="image", xlabel="x", ylabel="y", zmin=0, zmax=1,
                               height=320), key="image_fig")
    b.plotly_chart(lib.heatmap(cls_row.reshape(grid, grid).numpy(), title="class-token attention", xlabel="patch x",
                               ylabel="patch y", height=320), key="cls_attention")
    fig = go.Figure(go.Bar(x=[str(i) for i in range(cfg.n_classes)], y=probs.numpy()))
    fig.update_layout(title="class probabilities", height=320, margin=dict(l=10, r=10, t=40, b=10))
    c.plotly_chart(fig, key="probs")


if kind == "transformer":
    transformer_view()
elif kind == "vit":
    if importlib.util.find_spec("probe.models.vit") is None:
        st.info("ViT support (probe/models/vit.py) is not installed in this version of probe.")
    else:
        vit_view()
elif kind == "scan_snap":
    st.info("This is a Scan-and-Snap model (one query attending over a bag of tokens): open the "
            "**Scan & Snap replay** page to see its attention over training.")
else:
    st.info(f"Checkpoint kind {kind!r} has no attention to show (a {type(model).__name__}); the explorer shows "
            "Transformers (decoder, encoder, encoder-decoder) and ViTs. Its config is under *checkpoint details*.")
