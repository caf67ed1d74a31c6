"""The replay page (apps/views/training_trajectories.py) on recordings the tests make with the Recorder
(tests/apps/conftest.py) and on the Scan & Snap trajectory: one step slider moves every view, the views show the
recorded tensors, two runs side by side, deep links."""

from __future__ import annotations

import numpy as np

from probe.trajectory import load_trajectory
from tests.apps.test_pages import array, chart, choose, page, texts, z


def trajectory(roots, name: str):
    return load_trajectory(roots["runs"] / name / "trajectory")


def step_marks(fig: dict) -> list:
    return [shape["x0"] for shape in fig["layout"].get("shapes", [])]


def test_lists_every_recording(roots):
    at = page("training_trajectories")
    options = at.selectbox(key="trajectory").options
    assert {"runs/rec_a/trajectory", "runs/rec_b/trajectory", "runs/rec_encdec/trajectory",
            "runs/train_run/trajectory", "checkpoints/scan_snap_trajectory"} <= set(options)


def test_one_step_slider_moves_every_view(roots):
    traj = trajectory(roots, "rec_a")
    at = page("training_trajectories", {"trajectory": "runs/rec_a/trajectory"})
    assert at.select_slider(key="step").options == [str(s) for s in traj.steps.tolist()]
    assert at.multiselect(key="curves").value == ["acc.test", "acc.train", "eval_loss", "loss",
                                                 "weight norm (total)"]
    at.select_slider(key="step").set_value(3).run()
    assert not at.exception, at.exception
    i = traj.steps.tolist().index(3)
    # curves: the recorded values, a marker at the step, log scale by default
    fig = chart(at, "curve_eval_loss")
    np.testing.assert_allclose(array(fig["data"][0]["y"]), traj["eval_loss"].numpy(), rtol=1e-6)
    assert step_marks(fig) == [3] and fig["layout"]["yaxis"]["type"] == "log"
    norms = [traj[n].numpy() ** 2 for n in traj.names if n.startswith("weight_norms.")]
    np.testing.assert_allclose(array(chart(at, "curve_weight norm (total)")["data"][0]["y"]),
                               np.sqrt(np.sum(norms, 0)), rtol=1e-5)
    # attention with token labels from the run's tokenizer
    choose(at, "hook", "blocks.1.attn.hook_pattern")
    choose(at, "head", 1)
    choose(at, "example", 1)
    fig = chart(at, "pattern_runs/rec_a/trajectory")
    np.testing.assert_allclose(z(fig), traj["blocks.1.attn.hook_pattern"][i, 1, 1].numpy(), atol=1e-6)
    names = traj.meta["probe_token_labels"]["tokens"][1]
    assert list(fig["data"][0]["x"]) == [f"{k}:{t}" for k, t in enumerate(names)] and names[0] == "<bos>"
    # head scores at the step, and each kind's best head over training
    maps = chart(at, "head_scores_runs/rec_a/trajectory")
    kinds = [a["text"] for a in maps["layout"]["annotations"]]
    for k, kind in enumerate(kinds):
        np.testing.assert_allclose(z(maps, k), traj[f"head_scores.{kind}"][i].numpy(), atol=1e-6)
    best = chart(at, "best_heads_runs/rec_a/trajectory")
    assert step_marks(best) == [3]
    # a custom vector measure: its profile at the step and its history
    choose(at, "measure", "spectrum")
    np.testing.assert_allclose(array(chart(at, "profile_runs/rec_a/trajectory")["data"][0]["y"]),
                               traj["spectrum"][i].numpy(), rtol=1e-6)
    assert z(chart(at, "history_runs/rec_a/trajectory")).shape == (len(traj.steps), 5)
    at.toggle(key="log").set_value(False).run()
    assert chart(at, "curve_loss")["layout"]["yaxis"]["type"] == "linear"


def test_two_runs_side_by_side(roots):
    a, b = trajectory(roots, "rec_a"), trajectory(roots, "rec_b")  # recorded every 3 and every 4 steps
    at = page("training_trajectories", {"trajectory": "runs/rec_a/trajectory", "compare": "runs/rec_b/trajectory",
                                        "step": "6"})
    assert at.selectbox(key="compare").value == "runs/rec_b/trajectory"
    assert "runs/rec_b/trajectory at step 4" in texts(at)  # its last record before step 6
    fig = chart(at, "curve_loss")
    assert [t["name"] for t in fig["data"]] == ["runs/rec_a/trajectory", "runs/rec_b/trajectory"]
    np.testing.assert_allclose(z(chart(at, "pattern_runs/rec_b/trajectory")),
                               b["blocks.0.attn.hook_pattern"][1, 0, 0].numpy(), atol=1e-6)
    np.testing.assert_allclose(z(chart(at, "pattern_runs/rec_a/trajectory")),
                               a["blocks.0.attn.hook_pattern"][2, 0, 0].numpy(), atol=1e-6)


def test_encoder_decoder_recording_labels_queries_and_keys(roots):
    traj = trajectory(roots, "rec_encdec")
    at = page("training_trajectories", {"trajectory": "runs/rec_encdec/trajectory"})
    choose(at, "hook", "decoder.1.cross_attn.hook_pattern")
    fig = chart(at, "pattern_runs/rec_encdec/trajectory")
    src, tgt = traj.probe["src"][0].tolist(), traj.probe["tgt"][0].tolist()
    assert list(fig["data"][0]["x"]) == [f"{k}:{t}" for k, t in enumerate(src)]  # keys: the source
    assert list(fig["data"][0]["y"]) == [f"{k}:{t}" for k, t in enumerate(tgt)]  # queries: the target
    np.testing.assert_allclose(z(fig), traj["decoder.1.cross_attn.hook_pattern"][-1, 0, 0].numpy(), atol=1e-6)
    assert not [c for c in at.get("plotly_chart") if "head_scores" in c.proto.id]  # no detectors: no map


def test_scan_and_snap_trajectory_replays_by_shape(roots):
    traj = load_trajectory(roots["checkpoints"] / "scan_snap_trajectory")
    at = page("training_trajectories", {"trajectory": "checkpoints/scan_snap_trajectory"})
    assert not at.exception, at.exception
    choose(at, "measure", "Z")
    at.selectbox(key="index_0").set_value(1).run()  # Z [ratio, M, M]: the second learning-rate ratio
    assert not at.exception, at.exception
    np.testing.assert_allclose(z(chart(at, "matrix_checkpoints/scan_snap_trajectory")), traj["Z"][-1, 1].numpy(),
                               atol=1e-6)


def test_recording_without_patterns_still_replays(roots, tmp_path, monkeypatch):
    from probe.trajectory import TrajectoryWriter

    writer = TrajectoryWriter(tmp_path / "runs" / "grok" / "trajectory", meta={"study": "hand-made"})
    for step in (0, 10, 20):
        writer.append(step, {"train_loss": 1.0 / (step + 1), "fourier": np.arange(4.0) * step})
    writer.close()
    monkeypatch.setenv("PROBE_RUNS", str(tmp_path / "runs"))
    at = page("training_trajectories", {"step": "10"})
    assert at.multiselect(key="curves").value == ["train_loss"]
    np.testing.assert_allclose(array(chart(at, "profile_runs/grok/trajectory")["data"][0]["y"]), [0, 10, 20, 30])
