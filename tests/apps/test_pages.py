"""AppTest runs of every dashboard page on tiny fixtures (tests/apps/conftest.py): no script errors, the main widgets
respond, and the figures carry what they claim (attention rows are distributions, causal masks hold, the ablation
matches an independent weight edit, replays equal the saved tensors)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import probe
from tests.apps.conftest import HOME


def page(name: str | None = None) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=60).run()
    assert not at.exception, at.exception
    if name is not None:
        at.switch_page(f"views/{name}.py").run()
        assert not at.exception, at.exception
    return at


def chart(at: AppTest, key: str) -> dict:
    found = [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert len(found) == 1, f"chart {key!r}: {[c.proto.id for c in at.get('plotly_chart')]}"
    return json.loads(found[0].proto.spec)


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


def test_home_lists_checkpoints_and_runs(roots):
    at = page()
    assert "probe dashboards" in at.title[0].value
    ckpts, runs = (df.value for df in at.dataframe)
    assert set(ckpts["name"]) == {"dec", "dec_tok", "encdec", "enc_cls", "vit", "ss_model", "cnn", "broken"}
    assert ckpts.set_index("name").loc["dec", "step"] == 7
    assert {"alpha", "nested/sub", "train_run"} <= set(runs["run"])
    assert "scan_snap_trajectory" in " ".join(c.value for c in at.caption)


def test_model_explorer_decoder_pattern_topk_and_ablation(roots):
    path = str(roots["checkpoints"] / "dec")
    at = choose(page("model_explorer"), "checkpoint", path)
    at.text_input(key="tokens").set_value("3 1 4 1 5 9 2 6").run()
    pattern = z(chart(at, "pattern"))
    assert pattern.shape == (8, 8)
    np.testing.assert_allclose(pattern.sum(1), 1.0, atol=1e-5)  # every query row is a distribution
    assert np.abs(np.triu(pattern, 1)).max() == 0.0  # causal: no attention to later tokens
    choose(at, "layer", 1)
    choose(at, "head", 1)
    model = probe.load(path)
    tokens = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])
    logits, cache = model.run_with_cache(tokens)
    np.testing.assert_allclose(z(chart(at, "pattern")), cache["pattern", 1][0, 1].numpy(), atol=1e-6)
    top = at.dataframe[0].value
    assert top["id"].tolist()[0] == int(logits[0, -1].argmax())
    assert np.all(np.diff(top["prob"].to_numpy()) <= 0)

    at.toggle(key="ablate").set_value(True).run()
    assert not at.exception, at.exception
    with torch.no_grad():  # the same ablation done independently: zero the head's rows of W_O
        model.blocks[1].attn.W_O[1] = 0.0
        expected = (model(tokens)[0, -1] - logits[0, -1]).detach().numpy()
    bars = array(chart(at, "ablation")["data"][0]["y"])
    np.testing.assert_allclose(bars, expected, atol=1e-5)
    assert np.abs(expected).max() > 1e-4
    assert at.metric[0].value == f"{np.abs(expected).max():.4f}"


def test_model_explorer_text_through_the_checkpoint_tokenizer(roots):
    at = choose(page("model_explorer"), "checkpoint", str(roots["checkpoints"] / "dec_tok"))
    assert at.text_input(key="tokens").value == "w6 w7 w8 w9 w10 w11 w6 w7 w8 w9 w10 w11"  # the default
    at.text_input(key="tokens").set_value("w3 w5 w3 w5 w3").run()
    assert not at.exception, at.exception
    fig = chart(at, "pattern")
    assert list(fig["data"][0]["x"]) == ["0:w3", "1:w5", "2:w3", "3:w5", "4:w3"]
    assert set(at.dataframe[0].value["token"]) <= {"<pad>", *(f"w{i}" for i in range(1, 12))}


def test_model_explorer_encoder_decoder_cross_attention(roots):
    at = choose(page("model_explorer"), "checkpoint", str(roots["checkpoints"] / "encdec"))
    at.text_input(key="src").set_value("2 3 4 5 6").run()
    at.text_input(key="tgt").set_value("1 7 8").run()
    assert at.selectbox(key="stack").options == [
        "encoder self-attention", "decoder self-attention", "decoder cross-attention"]
    choose(at, "stack", "decoder cross-attention")
    pattern = z(chart(at, "pattern"))
    assert pattern.shape == (3, 5)  # target queries over source keys
    np.testing.assert_allclose(pattern.sum(1), 1.0, atol=1e-5)
    assert pattern[0, 1:].sum() > 0  # cross-attention is not causal
    choose(at, "stack", "decoder self-attention")
    assert np.abs(np.triu(z(chart(at, "pattern")), 1)).max() == 0.0


def test_model_explorer_classifier_bad_input_other_kinds_and_broken_checkpoint(roots):
    at = choose(page("model_explorer"), "checkpoint", str(roots["checkpoints"] / "enc_cls"))
    assert set(at.dataframe[0].value["token"]) == {"class 0", "class 1", "class 2"}
    pattern = z(chart(at, "pattern"))
    assert pattern[0, -1] > 0  # bidirectional
    at.text_input(key="tokens").set_value("1 2 99").run()
    assert not at.exception
    assert "outside [0, d_vocab=12)" in at.error[0].value
    choose(at, "checkpoint", str(roots["checkpoints"] / "ss_model"))
    assert not at.error, at.error[0].value
    assert "Scan & Snap replay" in at.info[0].value
    choose(at, "checkpoint", str(roots["checkpoints"] / "cnn"))
    assert not at.error, at.error[0].value
    assert "Checkpoint kind 'cnn' has no attention to show" in at.info[0].value
    choose(at, "checkpoint", str(roots["checkpoints"] / "broken"))
    assert "Could not load" in at.error[0].value and "truncated" in at.error[0].value


def test_model_explorer_vit_class_token_attention(roots):
    from probe.data.images import digits

    path = str(roots["checkpoints"] / "vit")
    at = choose(page("model_explorer"), "checkpoint", path)
    at.slider(key="image").set_value(5).run()
    choose(at, "head", 1)
    att = z(chart(at, "cls_attention"))
    assert att.shape == (4, 4)  # 8x8 image, 2x2 patches
    model = probe.load(path)
    _, cache = model.run_with_cache(digits("test")[5][0][None])
    np.testing.assert_allclose(att.ravel(), cache["pattern", 0][0, 1, 0, 1:].numpy(), atol=1e-6)
    np.testing.assert_allclose(z(chart(at, "image_fig")), digits("test")[5][0][0].numpy(), atol=1e-6)


def test_runs_browser(roots):
    at = page("runs_browser")
    assert at.selectbox(key="run").options == ["alpha", "nested/sub", "train_run"]
    assert "The claim is **supported**" in "\n".join(m.value for m in at.markdown)
    assert len(at.get("image")) == 1 and at.tabs[1].label == "Figures (1)"
    choose(at, "run", "nested/sub")
    assert any("nested_value" in str(j.value) for j in at.json)
    assert "This run has no report.md." in [i.value for i in at.info]
    choose(at, "run", "train_run")
    logs = [d.value for d in at.dataframe if "step" in d.value]
    assert len(logs) == 1 and logs[0]["step"].max() == 6  # the trainer's metrics.jsonl


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


def test_scan_snap_train_button(roots):
    """The page's small run is the batched reference trainer's run (same init, data stream and SGD momentum)."""
    from probe.data.scan_snap import ScanSnapData
    from probe.models.scan_snap import class_attention, distinct_entropy
    from probe.models.scan_snap_config import ScanSnapConfig
    from probe.ops.scan_snap_sweep import RunSpec, sweep
    from probe.trajectory import load_trajectory

    at = page("scan_snap_replay")
    at.slider(key="train_iters").set_value(10)  # form widgets: their values travel with the submit
    at.select_slider(key="train_ratio").set_value(10.0)
    at.button[0].click().run()
    assert not at.exception, at.exception
    own = z(chart(at, "own_heatmap"))
    np.testing.assert_allclose(own.sum(1), 1.0, atol=1e-5)
    ent = array(chart(at, "own_entropy")["data"][0]["y"])
    cfg = ScanSnapConfig.from_dict(load_trajectory(roots["checkpoints"] / "scan_snap_trajectory").meta["config"])
    ref = sweep([RunSpec(cfg, 1.0, 10.0)], 10, 64, record_every=1)
    data = ScanSnapData(cfg)
    expected = distinct_entropy(class_attention(ref.Z_history[:, 0], data.cond_prob(), data.query),
                                data.mask("distinct"))
    assert len(ent) == 11 and ent[-1] != ent[0]  # 10 SGD steps moved the attention
    np.testing.assert_allclose(ent, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_training_trajectories(roots):
    at = page("training_trajectories")
    assert at.selectbox(key="trajectory").value == "runs/train_run/trajectory"
    from probe.trajectory import load_trajectory

    stored = load_trajectory(roots["runs"] / "train_run" / "trajectory")["blocks.0.attn.hook_pattern"]
    # [record batch head query key], steps 0 2 4 6
    at.select_slider(key="step").set_value(2).run()
    choose(at, "head", 1)
    choose(at, "example", 1)
    pattern = z(chart(at, "pattern"))
    np.testing.assert_allclose(pattern, stored[1, 1, 1].numpy(), atol=1e-6)
    np.testing.assert_allclose(pattern.sum(1), 1.0, atol=1e-5)
    loss = chart(at, "loss")["data"][0]
    assert loss["name"] == "train loss" and array(loss["x"]).tolist() == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("name", ["model_explorer", "runs_browser", "scan_snap_replay", "training_trajectories"])
def test_pages_with_empty_roots_explain_themselves(roots, monkeypatch, name):
    monkeypatch.setenv("PROBE_CHECKPOINTS", str(roots["empty"]))
    monkeypatch.setenv("PROBE_RUNS", str(roots["empty"]))
    at = page(name)
    assert at.info, f"{name} shows no message for empty roots"
    assert str(roots["empty"]) in at.info[0].value  # the message says where it looked
