import json
import pickle
import sys

import pytest
import torch

import probe
from probe import checkpoint
from probe.checkpoint import CheckpointError
from probe.config import TransformerConfig
from probe.models.transformer import Transformer


def make(arch="decoder", **kw):
    fields = dict(d_model=16, n_layers=1, n_heads=2, d_vocab=11, n_ctx=8, seed=0, arch=arch)
    return Transformer(TransformerConfig(**{**fields, **kw}))


def inputs(arch):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 11, (2, 6), generator=g)
    return {"src": tokens, "tgt": tokens[:, :5]} if arch == "encoder_decoder" else {"tokens": tokens}


@pytest.mark.parametrize("arch, kw", [("decoder", {}), ("encoder_decoder", {}), ("decoder", {"tie_embed": True}),
                                      ("encoder", {"head": "classifier", "d_vocab_out": 3})])
def test_round_trip(tmp_path, arch, kw):
    model = make(arch, **kw).eval()
    path = model.save(tmp_path / "ck", meta={"step": 7, "metrics": {"loss": 1.5}})
    assert sorted(f.name for f in path.iterdir()) == ["config.json", "meta.json", "model.safetensors"]
    loaded = probe.load(path)
    assert type(loaded) is Transformer and loaded.cfg == model.cfg and not loaded.training
    torch.testing.assert_close(loaded(**inputs(arch)), model(**inputs(arch)), rtol=0, atol=0)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["step"] == 7 and meta["metrics"] == {"loss": 1.5}
    assert meta["command"] == sys.argv and meta["probe_version"] == probe.__version__
    assert meta["files"]["model.safetensors"]["bytes"] == (path / "model.safetensors").stat().st_size


def test_tied_weights_stay_tied(tmp_path):
    model = make(tie_embed=True)
    probe.save(model, tmp_path / "ck")
    loaded = probe.load(tmp_path / "ck")
    with torch.no_grad():
        loaded.embed.W_E[0, 0] += 1.0
    assert loaded.W_U[0, 0] == loaded.embed.W_E[0, 0]  # one tensor, still shared
    names = checkpoint.load_file(str(tmp_path / "ck" / "model.safetensors"))
    assert not any("W_U" in n for n in names)  # stored once


def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model = make()
    path = probe.save(model, tmp_path / "ck", meta={"step": 1})
    before = (path / "model.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "_write_json", crash)
    with torch.no_grad():
        model.embed.W_E.add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        probe.save(model, path, meta={"step": 2})
    assert (path / "model.safetensors").read_bytes() == before
    assert json.loads((path / "meta.json").read_text())["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no temporary directory left behind
    probe.load(path)


def test_overwrite_replaces_atomically(tmp_path):
    model = make()
    probe.save(model, tmp_path / "ck", meta={"step": 1})
    probe.save(model, tmp_path / "ck", meta={"step": 2})
    assert checkpoint.read_meta(tmp_path / "ck")["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_loading_never_unpickles(tmp_path, monkeypatch):
    probe.save(make(), tmp_path / "ck")

    def forbidden(*args, **kwargs):
        raise AssertionError("unpickling attempted")

    for mod, name in ((pickle, "load"), (pickle, "loads"), (torch, "load"), (pickle, "Unpickler")):
        monkeypatch.setattr(mod, name, forbidden)
    probe.load(tmp_path / "ck")


def test_clear_errors(tmp_path):
    model = make()
    path = probe.save(model, tmp_path / "ck")
    with pytest.raises(CheckpointError, match="does not exist"):
        probe.load(tmp_path / "nope")
    (path / "config.json").rename(tmp_path / "config.json")
    with pytest.raises(CheckpointError, match=r"missing \['config.json'\]"):
        probe.load(path)
    (tmp_path / "config.json").rename(path / "config.json")
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        probe.load(path)
    (path / "model.safetensors").write_bytes(data)
    other = make(d_model=32)
    expected = r"shape mismatches .*W_K: checkpoint \(2, 16, 8\) vs model \(2, 32, 16\)"
    with pytest.raises(CheckpointError, match=expected):
        checkpoint.load_state_dict(other, path)
    p2 = probe.save(model, tmp_path / "ck2")
    edited = (p2 / "config.json").read_text().replace('"seed": 0', '"seed": 1')
    (p2 / "config.json").write_text(edited)  # same size, different content
    with pytest.raises(CheckpointError, match="sha256"):
        probe.load(p2)
    with pytest.raises(TypeError, match="needs a probe model"):
        probe.save(torch.nn.Linear(2, 2), tmp_path / "lin")


def test_registry_and_list(tmp_path):
    with pytest.raises(CheckpointError, match="kind='mystery' has no registered model class"):
        checkpoint.model_class("mystery")
    assert checkpoint.model_class("transformer") is Transformer
    probe.save(make(), tmp_path / "a", meta={"step": 3})
    probe.save(make("encoder_decoder"), tmp_path / "run" / "final", meta={"step": 9, "metrics": {"loss": 0.5}})
    (tmp_path / ".b.tmp-1234").mkdir()
    (tmp_path / ".b.tmp-1234" / "config.json").write_text("{}")
    entries = probe.list_checkpoints(tmp_path)
    assert [(e["name"], e["step"], e["kind"]) for e in entries] == [("a", 3, "transformer"),
                                                                   ("run/final", 9, "transformer")]
    assert entries[1]["metrics"] == {"loss": 0.5} and entries[0]["size_bytes"] > 0
    with pytest.raises(FileNotFoundError, match="missing is not a directory"):
        probe.list_checkpoints(tmp_path / "missing")


def test_saving_into_a_run_directory_keeps_what_else_it_holds(tmp_path):
    run = tmp_path / "run"
    probe.save(make(), run / "step-2", meta={"step": 2})
    (run / "metrics.jsonl").write_text("{}\n")
    probe.save(make(), run, meta={"step": 4}, tokenizer=_tokenizer())
    assert probe.load(run).tokenizer is not None and checkpoint.read_meta(run)["step"] == 4
    assert (run / "metrics.jsonl").read_text() == "{}\n" and probe.load(run / "step-2")
    probe.save(make(d_model=32), run, meta={"step": 6})  # no tokenizer this time: the old one must not linger
    assert not (run / "tokenizer.json").exists() and probe.load(run).tokenizer is None
    assert probe.load(run).cfg.d_model == 32 and (run / "step-2" / "meta.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary directory left behind
    assert [e["name"] for e in probe.list_checkpoints(tmp_path)] == ["run", "run/step-2"]
    with pytest.raises(CheckpointError, match="not a directory"):
        probe.save(make(), run / "metrics.jsonl")


def _tokenizer():
    from probe.interop.bridge import vocab_tokenizer

    return vocab_tokenizer(11)


def test_probe_reaches_the_checkpoint_module_after_a_plain_import():
    import subprocess

    code = "import probe; probe.checkpoint.list_checkpoints; probe.list_checkpoints; probe.load"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_probe_save_is_the_checkpoint_writer_even_with_nnsight_loaded(tmp_path):
    """nnsight gives every object a `save` method; `probe.save` must not become nnsight's."""
    import nnsight  # noqa: F401

    path = probe.save(make(), tmp_path / "ck", meta={"step": 1})
    assert probe.load(path).cfg == make().cfg
