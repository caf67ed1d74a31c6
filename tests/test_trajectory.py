"""probe.trajectory: the one recording format, its writer and its reader."""

import json
import math

import numpy as np
import pytest
import torch
from torch import Tensor

import probe
from probe.trajectory import INDEX, SHARDS, TrajectoryWriter, load_trajectory


def write(path, steps=(0, 5, 10), **kw):
    w = TrajectoryWriter(path, meta={"study": "test"}, probe={"tokens": torch.arange(6).view(2, 3)}, **kw)
    for s in steps:
        w.append(s, {"loss": float(s) / 10, "pattern": torch.full((2, 3), float(s)), "count": torch.tensor(s)})
    return w


def shard_files(path):
    return sorted(p.name for p in (path / SHARDS).iterdir())


def test_round_trip_stacks_records_over_steps(tmp_path):
    write(tmp_path / "t")
    traj = probe.load_trajectory(tmp_path / "t")
    assert isinstance(traj.steps, np.ndarray) and traj.steps.tolist() == [0, 5, 10] and len(traj) == 3
    assert traj.names == ["loss", "pattern", "count"]
    torch.testing.assert_close(traj["loss"], torch.tensor([0.0, 0.5, 1.0]))
    assert traj["pattern"].shape == (3, 2, 3) and traj["pattern"][2, 1, 2] == 10.0
    assert traj["count"].dtype == torch.int64 and traj["count"].tolist() == [0, 5, 10]
    assert traj.meta == {"study": "test"} and torch.equal(traj.probe["tokens"], torch.arange(6).view(2, 3))
    assert "loss" in traj and "nope" not in traj
    with pytest.raises(KeyError, match="no measure 'nope'.*measures: \\['loss'"):
        traj["nope"]


def test_one_file_per_record_until_compacted_then_fewer_files_same_data(tmp_path):
    w = write(tmp_path / "t", steps=range(0, 60, 5))
    assert len(shard_files(tmp_path / "t")) == 12
    before = load_trajectory(tmp_path / "t")
    w.compact(max_bytes=3_000)  # a few records per file
    files = shard_files(tmp_path / "t")
    assert 1 < len(files) < 12 and all("-" in f for f in files)
    after = load_trajectory(tmp_path / "t")
    assert after.steps.tolist() == before.steps.tolist()
    for name in before.names:
        torch.testing.assert_close(after[name], before[name])
    w.close()  # default size: one file
    assert len(shard_files(tmp_path / "t")) == 1


def test_a_measure_that_starts_later_reads_nan_before(tmp_path):
    w = TrajectoryWriter(tmp_path / "t")
    w.append(0, {"a": 1.0})
    w.append(1, {"a": 2.0, "b": torch.ones(2)})
    w.append(2, {"a": 3.0})
    traj = load_trajectory(tmp_path / "t")
    assert torch.isnan(traj["b"][0]).all() and traj["b"][1].tolist() == [1.0, 1.0] and torch.isnan(traj["b"][2]).all()
    w.close()  # records with different measures stay in different files: "b" is not stored as NaN
    assert len(shard_files(tmp_path / "t")) == 3
    torch.testing.assert_close(load_trajectory(tmp_path / "t")["b"], traj["b"], equal_nan=True)


def test_resume_drops_the_records_after_the_checkpoint_and_continues(tmp_path):
    w = write(tmp_path / "t", steps=(0, 5, 10, 15))
    w.compact(max_bytes=10**9)  # one file across the resume point: it is cut, not dropped
    w2 = TrajectoryWriter(tmp_path / "t", meta={"resumed": True}, resume=5)
    with pytest.raises(ValueError, match="step 5 is not after the last recorded step 5"):
        w2.append(5, {"loss": 0.0})
    w2.append(10, {"loss": 9.0, "pattern": torch.zeros(2, 3), "count": torch.tensor(99)})
    traj = load_trajectory(tmp_path / "t")
    assert traj.steps.tolist() == [0, 5, 10]  # no duplicate steps
    assert traj["count"].tolist() == [0, 5, 99] and traj.meta == {"study": "test", "resumed": True}
    assert traj.probe["tokens"].shape == (2, 3)  # the probe batch survives a resume


def test_a_new_recording_replaces_the_old_one(tmp_path):
    write(tmp_path / "t", steps=(0, 5, 10))
    (tmp_path / "t" / "notes.txt").write_text("mine")
    w = TrajectoryWriter(tmp_path / "t")
    w.append(3, {"x": 1.0})
    traj = load_trajectory(tmp_path / "t")
    assert traj.steps.tolist() == [3] and traj.names == ["x"] and traj.probe == {} and traj.meta == {}
    assert (tmp_path / "t" / "notes.txt").read_text() == "mine"  # only the format's own files go


def test_an_interrupted_compaction_reads_each_step_once(tmp_path):
    write(tmp_path / "t", steps=(0, 5, 10))
    from safetensors.torch import load_file, save_file

    parts = [load_file(str(tmp_path / "t" / SHARDS / f)) for f in shard_files(tmp_path / "t")]
    merged = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    save_file(merged, str(tmp_path / "t" / SHARDS / "000000000-000000010.safetensors"))  # originals still there
    traj = load_trajectory(tmp_path / "t")
    assert traj.steps.tolist() == [0, 5, 10] and traj["loss"].shape == (3,)


def test_bad_records_are_refused_naming_the_measure(tmp_path):
    w = write(tmp_path / "t", steps=(0,))
    with pytest.raises(ValueError, match="step 0 is not after"):
        w.append(0, {"loss": 1.0})
    with pytest.raises(ValueError, match="'pattern' at step 1 has shape \\[3\\].*earlier records have \\[2, 3\\]"):
        w.append(1, {"pattern": torch.zeros(3)})
    with pytest.raises(TypeError, match="measure 'note' is a str"):
        w.append(2, {"note": "hello"})
    with pytest.raises(ValueError, match="step=-1"):
        w.append(-1, {"loss": 1.0})
    with pytest.raises(ValueError, match="is empty"):
        w.append(3, {})
    with pytest.raises(ValueError, match="other than '__step__'"):
        w.append(3, {"__step__": 1.0})


def test_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a trajectory directory"):
        load_trajectory(tmp_path)
    (tmp_path / INDEX).write_text(json.dumps({"format": "probe.attention_trajectory/1"}))
    with pytest.raises(ValueError, match="expected 'probe.trajectory/1'"):
        load_trajectory(tmp_path)


def test_the_writer_keeps_no_record_in_memory(tmp_path):
    """Memory is bounded by one record: after appending, no tensor of it is referenced by the writer."""
    w = TrajectoryWriter(tmp_path / "t")
    for s in range(5):
        w.append(s, {"big": torch.randn(64, 64)})

    def tensors_in(obj, seen=None) -> int:
        seen = seen if seen is not None else set()
        if id(obj) in seen:
            return 0
        seen.add(id(obj))
        if isinstance(obj, Tensor):
            return 1
        if isinstance(obj, dict):
            return sum(tensors_in(v, seen) for v in obj.values())
        if isinstance(obj, (list, tuple, set)):
            return sum(tensors_in(v, seen) for v in obj)
        if hasattr(obj, "__dict__"):
            return tensors_in(vars(obj), seen)
        return 0

    assert tensors_in(w) == 0


def test_float64_and_bfloat16_are_stored_as_float32_and_nan_is_kept(tmp_path):
    w = TrajectoryWriter(tmp_path / "t")
    w.append(0, {"a": np.float64(0.5), "b": torch.ones(2, dtype=torch.bfloat16), "c": math.nan,
                 "h": torch.ones(2, dtype=torch.float16)})
    traj = load_trajectory(tmp_path / "t")
    assert traj["a"].dtype == traj["b"].dtype == torch.float32 and traj["h"].dtype == torch.float16
    assert math.isnan(traj["c"][0])


def test_group_reads_a_family_of_measures(tmp_path):
    w = TrajectoryWriter(tmp_path / "t")
    w.append(0, {"head_scores.induction": torch.zeros(2, 2), "head_scores.duplicate": torch.ones(2, 2), "loss": 1.0})
    group = load_trajectory(tmp_path / "t").group("head_scores")
    assert sorted(group) == ["duplicate", "induction"] and group["induction"].shape == (1, 2, 2)
