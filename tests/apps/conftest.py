"""Fixtures of the dashboard tests: tiny checkpoints, runs and trajectories built once in a temporary folder, and
the app pointed at them through PROBE_CHECKPOINTS / PROBE_RUNS."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import streamlit as st  # noqa: E402
import torch  # noqa: E402

from probe.config import CNNConfig, TransformerConfig, ViTConfig  # noqa: E402

HOME = str(Path(__file__).resolve().parents[2] / "apps" / "Home.py")


def _tiny(**kw) -> TransformerConfig:
    return TransformerConfig(**{"d_model": 16, "n_layers": 2, "n_heads": 2, "d_mlp": 32, "d_vocab": 12, "n_ctx": 16,
                                "seed": 0, **kw})


def word_tokenizer(n: int, specials: tuple[str, ...] = ("<pad>",), word: str = "w{}"):
    """A whitespace word-level tokenizer over the specials then words (as the synthetic-task checkpoints ship, with
    "<pad>" as the unknown token): word_tokenizer(12) -> <pad> w1 .. w11; word_tokenizer(13, ("<pad>", "<bos>",
    "<eos>"), "{}") -> <pad> <bos> <eos> 0 .. 9, the reverse task's vocabulary."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    vocab = {t: i for i, t in enumerate(specials)}
    vocab |= {word.format(i - (len(specials) if word == "{}" else 0)): i for i in range(len(specials), n)}
    tok = Tokenizer(WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = WhitespaceSplit()
    return tok


@contextmanager
def one_thread():
    """Tiny models on a shared 2-core machine: torch's intra-op threads only spin (a tiny backward took 0.7 s with
    2 threads under load, 1 ms with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def roots(tmp_path_factory) -> dict[str, Path]:
    with one_thread():
        return _build_roots(tmp_path_factory.mktemp("app_roots"))


def _build_roots(base: Path) -> dict[str, Path]:
    from analyses.papers.scan_snap.trajectory import make as scan_snap_trajectory
    from probe.data import synthetic
    from probe.data.dataset import DictDataset
    from probe.models.cnn import CNN
    from probe.models.scan_snap import ScanSnapModel
    from probe.models.scan_snap_config import ScanSnapConfig
    from probe.models.transformer import Transformer
    from probe.models.vit import ViT
    from probe.train.recorder import Recorder

    ckpt, runs = base / "checkpoints", base / "runs"
    Transformer(_tiny()).save(ckpt / "dec", meta={"step": 7, "metrics": {"loss": 1.5},
                                                   "command": "python -m analyses.alpha --out runs/alpha"})
    Transformer(_tiny(pad_token_id=0, bos_token_id=1, positional_embedding_type="sinusoidal")).save(
        ckpt / "dec_tok", tokenizer=word_tokenizer(12, ("<pad>", "<bos>")),
        meta={"task": {"name": "induction", "n_symbols": 10, "block": 6, "min_block": 3}})
    Transformer(_tiny(arch="encoder_decoder", bos_token_id=1)).save(ckpt / "encdec")
    Transformer(_tiny(arch="encoder_decoder", d_vocab=13, n_ctx=9, pad_token_id=0, bos_token_id=1,
                      eos_token_id=2)).save(ckpt / "encdec_tok", tokenizer=word_tokenizer(13, ("<pad>", "<bos>",
                                                                                                 "<eos>"), "{}"),
                                            meta={"task": {"name": "reverse", "min_len": 4, "max_len": 8}})
    Transformer(_tiny(attention="linear")).save(ckpt / "linear")
    Transformer(_tiny(arch="encoder", head="classifier", d_vocab_out=3)).save(ckpt / "enc_cls")
    ViT(ViTConfig(d_model=16, n_layers=1, n_heads=2, seed=0)).save(ckpt / "vit")
    ScanSnapModel(ScanSnapConfig(seed=0)).save(ckpt / "ss_model")
    CNN(CNNConfig(widths=(4,), seed=0)).save(ckpt / "cnn")
    Transformer(_tiny()).save(ckpt / "broken")
    weights = ckpt / "broken" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])  # truncated: probe.load must refuse it
    scan_snap_trajectory(ckpt / "scan_snap_trajectory", quick=True)

    (runs / "alpha").mkdir(parents=True)
    (runs / "alpha" / "metrics.json").write_text(json.dumps({"accuracy": 0.875, "curve": [1, 2, 3]}))
    (runs / "alpha" / "report.md").write_text("# Alpha report\n\nThe claim is **supported** (accuracy 0.875).\n")
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    fig.savefig(runs / "alpha" / "curve.png")
    plt.close(fig)
    (runs / "nested" / "sub").mkdir(parents=True)
    (runs / "nested" / "sub" / "metrics.json").write_text(json.dumps({"nested_value": 42}))

    # a training run laid out as `probe train --trajectory-every 2` writes it: OUT/metrics.jsonl beside
    # OUT/trajectory/, recorded by the real Recorder callback (plain SGD here: torch.optim's first
    # import costs seconds, and the Trainer itself is tested in tests/train)
    fields = synthetic.task_model_fields("induction", n_symbols=8, max_block=4, length=9)
    model = Transformer(TransformerConfig(d_model=16, n_layers=1, n_heads=2, d_mlp=32, seed=0, **fields))
    data = synthetic.induction(64, n_symbols=8, max_block=4, length=9, seed=0)
    out = runs / "train_run"
    traj = Recorder(out / "trajectory", every=2, probe_batch=data[:2])
    trainer = SimpleNamespace(model=model, device=torch.device("cpu"), last_loss=None,
                              dist=SimpleNamespace(is_main=True))
    log = []
    for step in range(7):
        if step % 2 == 0 or step == 6:
            traj.on_step(trainer, step)
        if step == 6:
            break
        loss = model(**data[8 * step: 8 * step + 8], return_type="loss")
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads):
                p -= 0.05 * g
        trainer.last_loss = loss.item()
        log.append(json.dumps({"step": step + 1, "loss": loss.item(), "lr": 0.05}))
    (out / "metrics.jsonl").write_text("\n".join(log) + "\n")
    model.save(out, meta={"step": 6, "command": f"probe train --task induction --out {out}"})  # the run = checkpoint
    other = runs / "train_other"
    other.mkdir()
    (other / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 3.0 / s, "eval_loss": 4.0 / s})
                                                 + "\n" for s in range(1, 9)))

    # recordings made by the Recorder through the Trainer: two seeds of a 2-layer decoder (head scores, patterns,
    # a custom vector and a custom dict measure), and an encoder-decoder (three kinds of patterns)
    for name, seed in (("rec_a", 0), ("rec_b", 1)):
        record_run(runs / name, Transformer(_tiny(seed=seed, pad_token_id=0, bos_token_id=1, n_ctx=16)),
                   synthetic.induction(64, n_symbols=8, max_block=4, length=9, seed=seed), every=3 + seed,
                   tokenizer=word_tokenizer(12, ("<pad>", "<bos>")),
                   custom={"spectrum": lambda m, step: m.W_E.detach().norm(dim=0)[:5],
                           "acc": lambda m, step: {"train": 0.1 * step, "test": 0.05 * step}})
    src = torch.randint(3, 12, (16, 5))
    seq = {"src": src, "tgt": torch.cat([torch.ones(16, 1, dtype=torch.long), src.flip(1)], 1)}
    record_run(runs / "rec_encdec", Transformer(_tiny(arch="encoder_decoder", bos_token_id=1)),
               DictDataset(**seq), every=3, probe_batch={k: v[:2] for k, v in seq.items()})

    # a report that shows figures of another run and links to other reports and files, as the demo's does
    (runs / "demo").mkdir()
    (runs / "demo" / "report.md").write_text(
        "# Demo\n\nSee [the alpha report](../alpha/report.md), [alpha's metrics](../alpha/metrics.json), "
        "[a web page](https://example.org) and [nothing](../missing/report.md).\n\n"
        "![alpha curve](../alpha/curve.png) ![gone](../alpha/gone.png)\n\nThe end.\n")
    return {"checkpoints": ckpt, "runs": runs, "empty": base / "empty"}


def record_run(out: Path, model, data, every: int, steps: int = 8, **recorder) -> None:
    """Train `model` a few steps with the Trainer and a Recorder writing out/trajectory."""
    from probe.train.recorder import Recorder
    from probe.train.trainer import TrainConfig, Trainer

    tokenizer = recorder.pop("tokenizer", None)
    rec = Recorder(out / "trajectory", every=every, **recorder)
    cfg = TrainConfig(steps=steps, batch_size=8, lr=0.01, device="cpu", progress=False, log_every=2,
                      out_dir=str(out), amp=False)
    Trainer(model, data, data, cfg, callbacks=[rec], tokenizer=tokenizer).fit()


@pytest.fixture(autouse=True)
def app_env(roots, monkeypatch):
    """Point the app at the fixtures and start every test with empty st.cache_resource / st.cache_data."""
    monkeypatch.setenv("PROBE_CHECKPOINTS", str(roots["checkpoints"]))
    monkeypatch.setenv("PROBE_RUNS", str(roots["runs"]))
    st.cache_resource.clear()
    st.cache_data.clear()
    torch.manual_seed(0)
    with one_thread():
        yield
    st.cache_resource.clear()
