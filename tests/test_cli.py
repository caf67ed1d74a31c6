import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import probe
from probe import cli

TINY = ["--d-model", "16", "--n-layers", "1", "--n-heads", "2", "--steps", "4", "--batch-size", "8", "--no-progress",
        "--set", "data.n=32", "--set", "data.n_eval=8", "--set", "train.log_every=2"]


def test_train_from_flags_then_list_info(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["train", "--task", "reverse", "--trajectory-every", "2", "--set", "train.save_every=2", *TINY]
    assert cli.main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["checkpoint"] == "runs/reverse" and summary["steps"] == 4  # default --out: runs/TASK
    model = probe.load("runs/reverse")  # the directory `probe train` printed is the final checkpoint
    assert model.cfg.arch == "encoder_decoder" and model.cfg.d_model == 16
    meta = json.loads(Path("runs/reverse/meta.json").read_text())
    assert meta["command"] == sys.argv and meta["train_config"]["steps"] == 4
    assert Path("runs/reverse/trajectory/trajectory.json").is_file()
    assert probe.load("runs/reverse/step-2").cfg == model.cfg
    assert not Path("checkpoints").exists()  # nothing written into the shipped shelf
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "runs/reverse " in listed and "runs/reverse/step-2 " in listed
    assert cli.main(["info", "runs/reverse"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["step"] == 4 and info["kind"] == "transformer" and info["config"]["d_model"] == 16
    assert info["n_params_stored"] == sum(p.numel() for p in model.state_dict().values())
    # --resume from the step-2 checkpoint repeats the uninterrupted run's losses
    assert cli.main(["train", "--task", "reverse", "--resume", "runs/reverse/step-2", "--out", "resumed",
                     *TINY]) == 0
    full, resumed = (Path(p).read_text().splitlines() for p in ("runs/reverse/metrics.jsonl",
                                                                 "resumed/metrics.jsonl"))
    assert json.loads(resumed[0])["loss"] == json.loads(full[1])["loss"] and json.loads(full[1])["step"] == 4


def test_train_from_yaml_with_overrides(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = {"model": {"d_model": 16, "n_layers": 1, "n_heads": 2},
              "data": {"task": "text", "kind": "char", "n_ctx": 16},
              "train": {"steps": 3, "batch_size": 4, "lr": 0.01, "optimizer": "lamb"}, "out": "runs/text"}
    Path("run.yaml").write_text(yaml.safe_dump(config))
    assert cli.main(["train", "--config", "run.yaml", "--no-progress", "--set", "train.lr=0.003"]) == 0
    saved = json.loads(Path("runs/text/run_config.json").read_text())
    assert saved["train"]["lr"] == 0.003 and saved["train"]["optimizer"] == "lamb"
    model = probe.load("runs/text")
    assert model.tokenizer is not None and model.cfg.d_vocab == model.tokenizer.get_vocab_size()


def test_bad_input_messages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="data.task='nope'"):
        cli.main(["train", "--task", "nope", *TINY])
    with pytest.raises(SystemExit, match="expected SECTION.KEY=VALUE"):
        cli.main(["train", "--set", "lr=3"])
    with pytest.raises(SystemExit, match="conflict with data.task"):
        cli.main(["train", "--task", "induction", "--set", "model.arch=encoder", *TINY])
    with pytest.raises(SystemExit, match="does not exist"):
        cli.main(["info", "nowhere"])
    Path("bad.yaml").write_text("model: {}\nmodle: {}\n")
    with pytest.raises(SystemExit, match=r"unknown sections \['modle'\]"):
        cli.main(["train", "--config", "bad.yaml"])


def test_export_dispatch(tmp_path, monkeypatch):
    from probe.config import TransformerConfig
    from probe.models.transformer import Transformer

    model = Transformer(TransformerConfig(d_model=16, n_layers=1, n_heads=2, d_vocab=11, seed=0))
    model.save(tmp_path / "ck")
    monkeypatch.setitem(cli.EXPORTERS, ("hf", "transformer"), "probe.interop.does_not_exist:export")
    with pytest.raises(SystemExit, match="exporter probe.interop.does_not_exist:export .* is not available"):
        cli.main(["export", str(tmp_path / "ck"), "--to", "hf", "--out", str(tmp_path / "hf")])
    calls = []
    monkeypatch.setattr(sys.modules[__name__], "fake_export", lambda m, out: calls.append((m, out)), raising=False)
    monkeypatch.setitem(cli.EXPORTERS, ("hf", "transformer"), f"{__name__}:fake_export")
    assert cli.main(["export", str(tmp_path / "ck"), "--to", "hf", "--out", str(tmp_path / "hf")]) == 0
    assert calls[0][0].cfg == model.cfg and calls[0][1] == str(tmp_path / "hf")


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "probe", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "train" in out.stdout and "export" in out.stdout


def test_train_flags_never_change_the_next_calls_defaults():
    parser = cli.make_parser()
    before = json.dumps(cli.DEFAULTS, sort_keys=True)
    first = cli.build_config(parser.parse_args(["train", "--d-model", "16", "--steps", "3", "--set", "data.n=8"]))
    assert first["model"]["d_model"] == 16 and first["train"]["steps"] == 3 and first["data"]["n"] == 8
    second = cli.build_config(parser.parse_args(["train"]))
    assert second["model"]["d_model"] == 64 and second["train"]["steps"] == 500 and second["data"]["n"] == 4096
    assert json.dumps(cli.DEFAULTS, sort_keys=True) == before


def test_train_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, value in [("--steps", 500), ("--lr", 0.001), ("--d-model", 64), ("--optimizer", "adamw"),
                        ("--task", "induction"), ("--out", "runs/TASK"), ("--seed", 0), ("--schedule", "constant")]:
        assert f"{flag}" in text and f"(default: {value})" in text, flag


def test_list_fails_on_a_missing_root(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="--root nowhere is not a directory"):
        cli.main(["list", "--root", "nowhere"])
    assert cli.main(["list"]) == 0  # no default root exists yet: nothing to list, no error
    assert "no checkpoints" in capsys.readouterr().out
