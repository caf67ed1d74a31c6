"""AppTest runs of every dashboard page on tiny fixtures (tests/apps/conftest.py): no script errors, the main widgets
respond, and the figures carry what they claim (attention rows are distributions, causal masks hold, the ablation
matches an independent weight edit, replays equal the saved tensors). The model explorer's analysis views are
checked against probe.interp / TransformerLens computed here, in tests/apps/test_explorer.py."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import probe
from tests.apps.conftest import HOME


def page(name: str | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=60)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    if name is not None:
        at.switch_page(f"views/{name}.py").run()
        assert not at.exception, at.exception
    return at


def explorer(checkpoint: str, tab: str | None = None, **query) -> AppTest:
    at = page("model_explorer", {"checkpoint": checkpoint, **query})
    if tab is not None:
        at.session_state["view"] = tab
        at.run()
        assert not at.exception, at.exception
    return at


def chart(at: AppTest, key: str) -> dict:
    found = [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert len(found) == 1, f"chart {key!r}: {[c.proto.id for c in at.get('plotly_chart')]}"
    return json.loads(found[0].proto.spec)


def component(at: AppTest, key: str) -> dict:
    found = [c for c in at.get("bidi_component") if c.proto.id.endswith(f"-{key}")]
    assert len(found) == 1, f"component {key!r}: {[c.proto.id for c in at.get('bidi_component')]}"
    return json.loads(found[0].proto.json)


def array(value) -> np.ndarray:
    """A plotly JSON array: a plain list, or plotly 6's typed array {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(value, dict):
        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return out.reshape([int(s) for s in str(shape).split(",")] if shape else -1).astype(float)
    return np.array(value, dtype=float)


def z(fig: dict, trace: int = 0) -> np.ndarray:
    return array(fig["data"][trace]["z"])


def choose(at: AppTest, key: str, value) -> AppTest:
    at.selectbox(key=key).set_value(value).run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error")
                     for e in at.get(kind))


# ---- overview ---------------------------------------------------------------------------------------------------
def test_home_lists_checkpoints_and_runs_and_links_them(roots):
    at = page()
    assert "probe dashboards" in at.title[0].value
    md = texts(at)
    for name in ("dec", "dec_tok", "encdec", "enc_cls", "vit", "ss_model", "cnn", "linear"):
        assert f"[{name}](model_explorer?checkpoint={name})" in md  # each row opens its checkpoint ...
    # ... and the run its command wrote (--out), or the run it was saved inside
    assert "| [dec](model_explorer?checkpoint=dec) | transformer | 7 | [alpha](runs_browser?run=alpha) |" in md
    assert ("[runs/train_run](model_explorer?checkpoint=runs/train_run) | transformer | 6 | "
            "[train_run](runs_browser?run=train_run)") in md
    assert "[broken](model_explorer?checkpoint=broken)" in md  # listed; the explorer says why it cannot load
    for run in ("alpha", "nested/sub", "train_run", "demo"):
        assert f"[{run}](runs_browser?run={run})" in md
    assert "scan_snap_trajectory" in " ".join(c.value for c in at.caption)


# ---- model explorer: inputs and the section-1 fixes ----------------------------------------------------------------
def test_explorer_decoder_attention_hover_and_head_grid(roots):
    at = explorer("dec")
    at.text_input(key="tokens").set_value("3 1 4 1 5 9 2 6").run()
    pattern = z(chart(at, "pattern"))
    assert pattern.shape == (8, 8)
    np.testing.assert_allclose(pattern.sum(1), 1.0, atol=1e-5)  # every query row is a distribution
    assert np.abs(np.triu(pattern, 1)).max() == 0.0  # causal: no attention to later tokens
    choose(at, "layer", 1)
    choose(at, "head", 1)
    model = probe.load(roots["checkpoints"] / "dec")
    tokens = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])
    _, cache = model.run_with_cache(tokens)
    np.testing.assert_allclose(z(chart(at, "pattern")), cache["pattern", 1][0, 1].numpy(), atol=1e-6)
    # hover: every head of the layer, queries and keys labelled
    data = component(at, "hover_blocks")
    assert data["queries"] == data["keys"] == ["3", "1", "4", "1", "5", "9", "2", "6"]
    np.testing.assert_allclose(np.array(data["pattern"]), cache["pattern", 1][0].numpy(), atol=1e-4)
    # all heads as a grid with token labels on both axes
    grid = chart(at, "all_heads")
    assert len(grid["data"]) == 2
    for h, trace in enumerate(grid["data"]):
        assert list(trace["x"]) == list(trace["y"]) == ["0:3", "1:1", "2:4", "3:1", "4:5", "5:9", "6:2", "7:6"]
        np.testing.assert_allclose(array(trace["z"]), cache["pattern", 1][0, h].numpy(), atol=1e-6)


def test_explorer_tokenizer_default_has_bos_and_training_block_length(roots):
    at = explorer("dec_tok")
    words = at.text_input(key="tokens").value.split()
    assert words[0] == "<bos>"  # the induction format starts with bos (it did not before)
    block = words[1:]
    assert len(block) % 2 == 0 and block[: len(block) // 2] == block[len(block) // 2:]
    assert 3 <= len(block) // 2 <= 6  # inside the trained block lengths of the checkpoint's meta.json
    fig = chart(at, "pattern")
    assert list(fig["data"][0]["x"])[0] == "0:<bos>"


def test_explorer_refuses_unknown_words_and_warns_past_n_ctx(roots):
    at = explorer("dec_tok")
    at.text_input(key="tokens").set_value("<bos> w3 zebra w4").run()
    assert not at.exception
    assert at.error and "zebra" in at.error[0].value and "not in the checkpoint's vocabulary" in at.error[0].value
    assert not at.get("plotly_chart")  # nothing ran on a silently altered input
    at.text_input(key="tokens").set_value(" ".join(["w3", "w4"] * 10)).run()  # 20 tokens, n_ctx 16
    assert not at.exception
    assert at.warning and "more than the n_ctx=16" in at.warning[0].value  # sinusoidal positions: it runs
    assert z(chart(at, "pattern")).shape == (20, 20)
    at = explorer("dec")  # learned positions cannot run past n_ctx: refused, not raised
    at.text_input(key="tokens").set_value(" ".join(["3"] * 17)).run()
    assert not at.exception
    assert "learned position embeddings cover n_ctx=16" in at.error[0].value


def test_explorer_encoder_decoder_defaults_in_distribution(roots):
    at = explorer("encdec_tok")
    src = at.text_input(key="src").value.split()
    assert 4 <= len(src) <= 8  # the reverse task's trained source lengths (meta.json), not 9
    assert at.text_input(key="tgt").value == ""  # empty: the model's greedy output
    model = probe.load(roots["checkpoints"] / "encdec_tok")
    src_ids = model.to_tokens(" ".join(src))
    greedy = model.generate(src_ids, 8)[0].tolist()
    if 2 in greedy:
        greedy = greedy[: greedy.index(2)]
    data = component(at, "hover_encoder")
    assert data["queries"] == src
    choose(at, "stack", "decoder cross-attention")
    data = component(at, "hover_cross")
    assert data["queries"] == [model.tokenizer.id_to_token(i) for i in greedy] and data["keys"] == src
    pattern = z(chart(at, "pattern"))
    assert pattern.shape == (len(greedy), len(src))
    np.testing.assert_allclose(pattern.sum(1), 1.0, atol=1e-5)


def test_explorer_encoder_decoder_typed_inputs(roots):
    at = explorer("encdec")
    at.text_input(key="src").set_value("2 3 4 5 6").run()
    at.text_input(key="tgt").set_value("1 7 8").run()
    assert at.selectbox(key="stack").options == [
        "encoder self-attention", "decoder self-attention", "decoder cross-attention"]
    choose(at, "stack", "decoder cross-attention")
    pattern = z(chart(at, "pattern"))
    assert pattern.shape == (3, 5)  # target queries over source keys
    assert pattern[0, 1:].sum() > 0  # cross-attention is not causal
    choose(at, "stack", "decoder self-attention")
    assert np.abs(np.triu(z(chart(at, "pattern")), 1)).max() == 0.0


def test_ablation_chart_keeps_special_tokens_on_a_categorical_axis(roots):
    """The reverse task's vocabulary is <pad> <bos> <eos> 0..9: plotly read the digits as numbers and dropped the
    special tokens' bars."""
    at = explorer("encdec_tok", "Ablation", ablate_heads=["cross.L0H0"])
    fig = chart(at, "ablation")
    assert fig["layout"]["xaxis"]["type"] == "category"
    assert list(fig["data"][0]["x"]) == ["<pad>", "<bos>", "<eos>", *map(str, range(10))]
    assert len(array(fig["data"][0]["y"])) == 13


def test_explorer_cnn_shows_feature_maps(roots):
    at = explorer("cnn")
    assert not at.info, [i.value for i in at.info]  # it showed only an info box before
    maps = chart(at, "feature_maps")
    model = probe.load(roots["checkpoints"] / "cnn")
    from probe.data.images import digits

    _, cache = model.run_with_cache(digits("test")[0][0][None])
    np.testing.assert_allclose(z(maps, 0), cache["hook_stem"][0, 0].numpy(), atol=1e-5)
    probs = array(chart(at, "probs")["data"][0]["y"])
    np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-5)


def test_explorer_vit_patch_axes_and_square_image(roots):
    from probe.data.images import digits

    path = roots["checkpoints"] / "vit"
    at = explorer("vit")
    at.slider(key="image").set_value(5).run()
    choose(at, "head", 1)
    att = chart(at, "cls_attention")
    assert z(att).shape == (4, 4)  # 8x8 image, 2x2 patches
    assert "x" not in att["data"][0] and "y" not in att["data"][0]  # integer patch coordinates, not "0:0" ...
    model = probe.load(path)
    _, cache = model.run_with_cache(digits("test")[5][0][None])
    np.testing.assert_allclose(z(att).ravel(), cache["pattern", 0][0, 1, 0, 1:].numpy(), atol=1e-6)
    image = chart(at, "image_fig")
    np.testing.assert_allclose(z(image), digits("test")[5][0][0].numpy(), atol=1e-6)
    assert image["layout"]["yaxis"]["scaleanchor"] == "x"  # square pixels: not stretched
    data = component(at, "hover_vit")
    assert data["grid"] == [4, 4] and data["queries"][0] == "cls" and data["queries"][1] == "(0,0)"


def test_explorer_other_kinds_and_broken_checkpoint(roots):
    at = explorer("enc_cls", "Predictions")
    assert set(at.dataframe[0].value["token"]) == {"class 0", "class 1", "class 2"}
    at = explorer("enc_cls")
    assert z(chart(at, "pattern"))[0, -1] > 0  # bidirectional
    at.text_input(key="tokens").set_value("1 2 99").run()
    assert not at.exception
    assert "outside [0, d_vocab=12)" in at.error[0].value
    at = explorer("ss_model")
    assert not at.error, at.error[0].value
    assert "Scan & Snap replay" in at.info[0].value
    at = explorer("broken")
    assert "Could not load" in at.error[0].value and "truncated" in at.error[0].value


def test_explorer_opens_checkpoints_saved_inside_runs_and_links_back(roots):
    at = page("model_explorer")
    assert "runs/train_run" in at.selectbox(key="checkpoint").options
    choose(at, "checkpoint", "runs/train_run")
    links = [p for p in at.get("page_link")]
    assert any("Trained in run train_run" in link.proto.label and "run=train_run" in link.proto.page
               or "Trained in run train_run" in link.proto.label for link in links)
    assert z(chart(at, "pattern")).shape[0] > 0


def test_explorer_deep_link_opens_the_same_view(roots):
    at = explorer("encdec", None, view="Circuits", circuit_stack="decoder cross-attention", layer="1", head="1")
    assert at.selectbox(key="checkpoint").value == "encdec"
    assert at.selectbox(key="circuit_stack").value == "decoder cross-attention"
    assert at.selectbox(key="layer").value == 1 and at.selectbox(key="head").value == 1
    chart(at, "ov")
    assert at.get("plotly_chart") and "cross.L1H1" in texts(at) + " ".join(m.label for m in at.metric)


# ---- runs browser ---------------------------------------------------------------------------------------------------
def test_runs_browser_report_figures_and_links(roots):
    at = page("runs_browser", {"run": "demo"})
    assert at.selectbox(key="run").value == "demo"
    images = at.get("image")
    # the report's two figures: one resolved (a sibling run's), one missing and said so
    assert len(images) >= 2  # the report's figure, and the Figures tab
    md = texts(at)
    assert "[the alpha report](runs_browser?run=alpha)" in md
    assert "[alpha's metrics](runs_browser?run=alpha&file=metrics.json)" in md
    assert "[a web page](https://example.org)" in md
    assert "missing: `../missing/report.md`" in md
    assert "Figure 'gone' not found" in md
    assert "1 figures (0 in the folder, the rest shown by its report)" in md


def test_runs_browser_lists_runs_files_and_checkpoints(roots):
    at = page("runs_browser")
    assert at.selectbox(key="run").options == ["alpha", "demo", "nested/sub", "rec_a", "rec_b", "rec_encdec",
                                               "train_other", "train_run"]
    assert "The claim is **supported**" in texts(at)
    assert len(at.get("image")) == 1 and "1 figures (1 in the folder" in texts(at)
    choose(at, "run", "nested/sub")
    assert any("nested_value" in str(j.value) for j in at.json)
    assert "This run has no report.md." in [i.value for i in at.info]
    choose(at, "run", "train_run")
    logs = [d.value for d in at.dataframe if "step" in d.value]
    assert len(logs) == 1 and logs[0]["step"].max() == 6  # the trainer's metrics.jsonl
    labels = [link.proto.label for link in at.get("page_link")]
    assert "Checkpoint runs/train_run: open it in the model explorer" in labels
    chart(at, "run_loss")


def test_runs_browser_file_viewer_deep_link(roots):
    at = page("runs_browser", {"run": "alpha", "file": "metrics.json"})
    assert at.selectbox(key="file").value == "metrics.json"
    assert any(j.value == {"accuracy": 0.875, "curve": [1, 2, 3]} or "0.875" in str(j.value) for j in at.json)


# ---- compare runs ---------------------------------------------------------------------------------------------------
def test_compare_runs_overlays_smoothed_log_curves(roots):
    from apps.figures import ema

    at = page("compare_runs", {"runs": ["train_run", "train_other"]})
    assert at.multiselect(key="runs").value == ["train_run", "train_other"]
    fig = chart(at, "curve_loss")
    assert fig["layout"]["yaxis"]["type"] == "log"
    named = {t["name"]: t for t in fig["data"]}
    assert {"train_run", "train_other"} <= set(named)
    rows = [json.loads(line) for line in (roots["runs"] / "train_other" / "metrics.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(array(named["train_other"]["y"]), ema([r["loss"] for r in rows], 0.6), rtol=1e-6)
    at.slider(key="smoothing").set_value(0.0).run()
    named = {t["name"]: t for t in chart(at, "curve_loss")["data"]}
    np.testing.assert_allclose(array(named["train_other"]["y"]), [r["loss"] for r in rows])
    at.toggle(key="log").set_value(False).run()
    assert chart(at, "curve_loss")["layout"]["yaxis"]["type"] == "linear"
    chart(at, "curve_eval_loss")
    assert "eval_loss: not logged by train_run" in texts(at)


def test_ema_is_tensorboards_debiased_average():
    from apps.figures import ema

    assert ema([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])  # debiased: no pull towards 0
    assert ema([2.0, 4.0], 0.5) == pytest.approx([2.0, (0.5 * (0.5 * 2.0) + 0.5 * 4.0) / (1 - 0.5**2)])
    assert ema([3.0, 1.0], 0.0) == [3.0, 1.0]
    with pytest.raises(ValueError, match="smoothing"):
        ema([1.0], 1.0)


# ---- Scan & Snap and trajectories ---------------------------------------------------------------------------------
def test_scan_snap_replay_matches_saved_trajectory(roots):
    from probe.data.scan_snap import ScanSnapData
    from probe.models.scan_snap import class_attention
    from probe.models.scan_snap_config import ScanSnapConfig
    from probe.trajectory import load_trajectory

    at = page("scan_snap_replay")
    traj = load_trajectory(roots["checkpoints"] / "scan_snap_trajectory")
    cfg, Z = ScanSnapConfig.from_dict(traj.meta["config"]), traj["Z"]  # Z: [step ratio M M]
    last = len(traj.steps) - 1
    at.slider(key="iteration").set_value(last).run()
    assert not at.exception, at.exception
    fig = chart(at, "c_heatmap")
    data = ScanSnapData(cfg)
    n_ctx = cfg.query_offset
    for r in range(2):
        c = z(fig, r)
        np.testing.assert_allclose(c.sum(1), 1.0, atol=1e-5)  # c_(l|n) is a distribution over context tokens
        expected = class_attention(Z[last, r], data.cond_prob(), data.query)[:, :n_ctx]
        np.testing.assert_allclose(c, expected.numpy(), atol=1e-6)
    entropy = chart(at, "entropy")
    assert [t["name"] for t in entropy["data"]] == ["eta_Y/eta_Z = 1", "eta_Y/eta_Z = 10"]
    assert len(entropy["data"][0]["y"]) == len(traj.steps)


def test_scan_snap_runs_are_kept_and_compared(roots):
    """The page's small runs are the batched reference trainer's runs (same init, data stream and SGD momentum); a
    second run is kept beside the first instead of replacing it."""
    from probe.data.scan_snap import ScanSnapData
    from probe.models.scan_snap import class_attention, distinct_entropy
    from probe.models.scan_snap_config import ScanSnapConfig
    from probe.train.scan_snap_sweep import RunSpec, sweep
    from probe.trajectory import load_trajectory

    at = page("scan_snap_replay")
    at.slider(key="train_iters").set_value(10)  # form widgets: their values travel with the submit
    at.select_slider(key="train_ratio").set_value(10.0)
    at.button[0].click().run()
    assert not at.exception, at.exception
    at.slider(key="train_iters").set_value(20)
    at.select_slider(key="train_ratio").set_value(1.0)
    at.button[0].click().run()
    assert not at.exception, at.exception
    names = at.multiselect(key="own_compare").value
    assert len(names) == 2 and "eta_Y/eta_Z = 10" in names[0] and "eta_Y/eta_Z = 1," in names[1]
    entropy = chart(at, "own_entropy")
    assert [t["name"] for t in entropy["data"]] == names
    heat = chart(at, "own_heatmap")
    assert len(heat["data"]) == 2
    ent = array(entropy["data"][0]["y"])
    cfg = ScanSnapConfig.from_dict(load_trajectory(roots["checkpoints"] / "scan_snap_trajectory").meta["config"])
    ref = sweep([RunSpec(cfg, 1.0, 10.0)], 10, 64, record_every=1)
    data = ScanSnapData(cfg)
    expected = distinct_entropy(class_attention(ref.Z_history[:, 0], data.cond_prob(), data.query),
                                data.mask("distinct"))
    assert len(ent) == 11 and ent[-1] != ent[0]  # 10 SGD steps moved the attention
    np.testing.assert_allclose(ent, expected.numpy(), rtol=1e-4, atol=1e-5)
    at.button(key="own_clear").click().run()
    assert not at.exception and not at.get("multiselect")


@pytest.mark.parametrize("name", ["model_explorer", "runs_browser", "compare_runs", "scan_snap_replay",
                                  "training_trajectories"])
def test_pages_with_empty_roots_explain_themselves(roots, monkeypatch, name):
    monkeypatch.setenv("PROBE_CHECKPOINTS", str(roots["empty"]))
    monkeypatch.setenv("PROBE_RUNS", str(roots["empty"]))
    at = page(name)
    assert at.info, f"{name} shows no message for empty roots"
    assert str(roots["empty"]) in at.info[0].value  # the message says where it looked
