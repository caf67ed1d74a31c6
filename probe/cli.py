"""The `probe` command (also `python -m probe`).

    probe train --config run.yaml [--set train.lr=3e-4 ...]   train from a YAML/JSON file, flags override it
    probe train --task induction --steps 500 --out runs/induction
    probe list [--root DIR ...]                                  checkpoints under checkpoints/ and runs/
    probe info DIR                                               config, training metadata and files of a checkpoint
    probe export DIR --to hf --out OUT                           a directory `transformers` loads with from_pretrained

A config file has four sections, each optional: `model` (TransformerConfig fields), `data` (`task`: one of
probe.data.synthetic.TASKS or "text", plus that task's arguments, `n`, `n_eval`), `train` (TrainConfig fields) and
`out` (the run directory, default runs/TASK). The run directory is the final checkpoint (`probe.load(OUT)`,
`probe info OUT`); it also holds `step-N/` checkpoints (train.save_every), metrics.jsonl and run_config.json.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

# (format, model kind) -> "module:function(model, out_dir)"; written by the interop modules
EXPORTERS = {
    ("hf", "transformer"): "probe.interop.bridge:export",
    ("hf", "vit"): "probe.interop.hf_vit:export_vit",
}

DEFAULTS: dict[str, Any] = {
    "model": {"kind": "transformer", "d_model": 64, "n_layers": 2, "n_heads": 4},
    "data": {"task": "induction", "n": 4096, "n_eval": 256, "seed": 0},
    "train": {"steps": 500, "batch_size": 32, "lr": 1e-3, "log_every": 25},
    "out": None,
}


def _parse_value(text: str) -> Any:
    return yaml.safe_load(text)


def _merge(base: dict, new: dict) -> dict:
    """A deep copy of `base` updated by `new` (nested dicts merged): neither argument is modified."""
    out = copy.deepcopy(base)
    for key, value in new.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"probe: --config {path}: no such file")
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise SystemExit(f"probe: --config {path}: expected a mapping with sections model/data/train/out")
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise SystemExit(f"probe: --config {path}: unknown sections {unknown}; expected {sorted(DEFAULTS)}")
    return data


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    config = _merge(DEFAULTS, read_config(args.config)) if args.config else _merge(DEFAULTS, {})
    flags = {("data", "task"): args.task, ("train", "steps"): args.steps, ("train", "lr"): args.lr,
             ("train", "batch_size"): args.batch_size, ("train", "device"): args.device,
             ("train", "optimizer"): args.optimizer, ("train", "schedule"): args.schedule,
             ("train", "seed"): args.seed, ("model", "d_model"): args.d_model, ("model", "n_layers"): args.n_layers,
             ("model", "n_heads"): args.n_heads}
    for (section, key), value in flags.items():
        if value is not None:
            config[section][key] = value
    if args.out is not None:
        config["out"] = args.out
    for item in args.set or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise SystemExit(f"probe: --set {item!r}: expected SECTION.KEY=VALUE, e.g. train.lr=3e-4")
        dotted, value = item.split("=", 1)
        section, key = dotted.split(".", 1)
        if section not in ("model", "data", "train"):
            raise SystemExit(f"probe: --set {item!r}: section {section!r} is not one of model, data, train")
        config[section][key] = _parse_value(value)
    if config["out"] is None:
        config["out"] = f"runs/{config['data']['task']}"
    return config


def build_data(data_cfg: dict[str, Any]) -> tuple[Any, Any, dict[str, Any], Any]:
    """(train, eval, model fields the data fixes, tokenizer or None)."""
    from probe.data import synthetic

    data_cfg = dict(data_cfg)
    task = data_cfg.pop("task")
    n, n_eval, seed = data_cfg.pop("n", 4096), data_cfg.pop("n_eval", 256), data_cfg.pop("seed", 0)
    if task == "text":
        from probe.data.text import text_task

        n_ctx = data_cfg.get("n_ctx", 64)
        train, eval_, tok = text_task(**data_cfg)
        return train, eval_, {"arch": "decoder", "d_vocab": tok.get_vocab_size(), "n_ctx": n_ctx,
                              "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3}, tok
    if task not in synthetic.TASKS:
        raise SystemExit(f"probe: data.task={task!r} is not one of {(*synthetic.TASKS, 'text')}")
    train = synthetic.make_task(task, n, seed=seed, **data_cfg)
    eval_ = synthetic.make_task(task, n_eval, seed=seed + 1, **data_cfg)
    return train, eval_, synthetic.task_model_fields(task, **data_cfg), None


def cmd_train(args: argparse.Namespace) -> int:
    from probe.config import TransformerConfig
    from probe.models.transformer import Transformer
    from probe.train import Recorder, TrainConfig, Trainer

    config = build_config(args)
    model_cfg = dict(config["model"])
    kind = model_cfg.pop("kind", "transformer")
    if kind != "transformer":
        raise SystemExit(f"probe train: model.kind={kind!r}: the CLI trains 'transformer' models only")
    train, eval_, fixed, tokenizer = build_data(config["data"])
    clash = {k: (model_cfg[k], v) for k, v in fixed.items() if k in model_cfg and model_cfg[k] != v}
    if clash:
        raise SystemExit(f"probe train: model fields {clash} (given, required) conflict with data.task")
    try:
        model = Transformer(TransformerConfig(**{**model_cfg, **fixed}))
        train_cfg = TrainConfig.from_dict({**config["train"], "out_dir": config["out"],
                                           "progress": not args.no_progress})
    except (TypeError, ValueError) as e:
        raise SystemExit(f"probe train: {e}") from e
    callbacks = []
    if args.trajectory_every:
        probe_batch = train[: min(8, len(train))]
        callbacks.append(Recorder(Path(config["out"]) / "trajectory", args.trajectory_every, probe_batch))
    Path(config["out"]).mkdir(parents=True, exist_ok=True)
    (Path(config["out"]) / "run_config.json").write_text(json.dumps(config, indent=2) + "\n")
    trainer = Trainer(model, train, eval_, train_cfg, callbacks=callbacks, tokenizer=tokenizer,
                      resume_from=args.resume)
    history = trainer.fit()
    final = [r for r in history if "eval_loss" in r]
    print(json.dumps({"checkpoint": str(config["out"]), "steps": trainer.step,
                      "train_loss": trainer.last_loss, "eval_loss": final[-1]["eval_loss"] if final else None}))
    return 0


LIST_ROOTS = ("checkpoints", "runs")


def cmd_list(args: argparse.Namespace) -> int:
    from probe.checkpoint import list_checkpoints

    missing = [r for r in args.root or [] if not Path(r).is_dir()]
    if missing:
        raise SystemExit(f"probe list: --root {missing[0]} is not a directory")
    roots = args.root or [r for r in LIST_ROOTS if Path(r).is_dir()]
    entries = [e for r in roots for e in list_checkpoints(r)]
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    if not entries:
        print(f"no checkpoints under {' or '.join(roots) or ' or '.join(LIST_ROOTS) + ' (neither exists)'}")
        return 0
    print(f"{'path':40} {'kind':12} {'step':>7} {'size':>10}  metrics")
    for e in entries:
        metrics = {k: round(v, 4) for k, v in (e.get("metrics") or {}).items() if isinstance(v, float)}
        print(f"{e['path']:40} {str(e.get('kind')):12} {str(e.get('step')):>7} {e['size_bytes']:>10}  "
              f"{e.get('error') or metrics}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from probe.checkpoint import CheckpointError, check_dir, read_json

    path = Path(args.dir)
    try:
        check_dir(path)
    except CheckpointError as e:
        raise SystemExit(f"probe info: {e}") from e
    config, meta = read_json(path, "config.json"), read_json(path, "meta.json")
    from safetensors import safe_open

    with safe_open(str(path / "model.safetensors"), "pt") as f:
        n_params = sum(_prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118
    info = {"path": str(path), "kind": config.get("kind"), "n_params_stored": n_params, "config": config,
            **{k: meta.get(k) for k in ("step", "metrics", "probe_version", "command", "created", "train_config")},
            "files": meta.get("files")}
    print(json.dumps(info, indent=2, default=str))
    return 0


def _prod(shape: list[int]) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


def cmd_export(args: argparse.Namespace) -> int:
    from probe.checkpoint import CheckpointError, load

    path = Path(args.dir)
    try:
        model = load(path)
    except CheckpointError as e:
        raise SystemExit(f"probe export: {e}") from e
    kind = model.cfg.kind
    target = EXPORTERS.get((args.to, kind))
    if target is None:
        raise SystemExit(f"probe export: no exporter for --to {args.to} and model kind {kind!r}; "
                         f"available: {sorted(EXPORTERS)}")
    module, name = target.split(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise SystemExit(f"probe export: the exporter {target} for kind {kind!r} is not available ({e})") from e
    try:
        out = fn(model, args.out)
    except ValueError as e:  # a model the target layout cannot represent exactly
        raise SystemExit(f"probe export: {e}") from e
    print(f"exported {path} -> {out or args.out}")
    return 0


def default(section: str, key: str) -> Any:
    """What `probe train` uses for SECTION.KEY when neither --config nor a flag sets it."""
    if key in DEFAULTS[section]:
        return DEFAULTS[section][key]
    from probe.config import TransformerConfig
    from probe.train.trainer import TrainConfig

    cls = {"model": TransformerConfig, "train": TrainConfig}[section]
    return {f.name: f.default for f in dataclasses.fields(cls)}[key]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="probe", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model from a config file and/or flags",
                       epilog="Defaults apply where neither the --config file nor a flag sets the field.")

    def flag(name: str, section: str, key: str, what: str = "", **kwargs: Any) -> None:
        value = default(section, key)
        shown = "cuda, then mps, then cpu" if key == "device" and value is None else value
        t.add_argument(name, help=f"{what}{section}.{key} (default: {shown})", **kwargs)

    t.add_argument("--config", help="YAML or JSON file with sections model, data, train, out")
    flag("--task", "data", "task", "copy, reverse, sort, induction, associative_recall, majority or text: ")
    t.add_argument("--out", help="run directory: the final checkpoint, step-N/ checkpoints and the metrics log "
                                 "(default: runs/TASK)")
    flag("--steps", "train", "steps", type=int)
    flag("--lr", "train", "lr", type=float)
    flag("--batch-size", "train", "batch_size", type=int)
    flag("--device", "train", "device")
    flag("--optimizer", "train", "optimizer")
    flag("--schedule", "train", "schedule")
    flag("--seed", "train", "seed", type=int)
    flag("--d-model", "model", "d_model", type=int)
    flag("--n-layers", "model", "n_layers", type=int)
    flag("--n-heads", "model", "n_heads", type=int)
    t.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override any field (repeatable)")
    t.add_argument("--resume", help="continue from a training checkpoint (OUT/step-N or OUT)")
    t.add_argument("--trajectory-every", type=int, default=0,
                   help="record losses, head scores, attention patterns and weight norms every N steps into "
                   "OUT/trajectory (probe.train.recorder.Recorder; read it with probe.load_trajectory)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(fn=cmd_train)
    ls = sub.add_parser("list", help="list checkpoints")
    ls.add_argument("--root", action="append",
                    help=f"directory to search, repeatable (default: {' and '.join(LIST_ROOTS)}, where they exist)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(fn=cmd_list)
    info = sub.add_parser("info", help="describe a checkpoint")
    info.add_argument("dir")
    info.set_defaults(fn=cmd_info)
    ex = sub.add_parser("export", help="export a checkpoint to another library's format")
    ex.add_argument("dir")
    ex.add_argument("--to", required=True, choices=sorted({fmt for fmt, _ in EXPORTERS}))
    ex.add_argument("--out", required=True)
    ex.set_defaults(fn=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
