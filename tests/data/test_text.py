import warnings

import pytest
import torch

from probe.data import text
from probe.data.text import KINDS, SPECIALS

SAMPLE = "The quick brown fox jumps over the lazy dog.\nA second line, with punctuation!\n"


@pytest.mark.parametrize("kind", KINDS)
def test_tokenizers_round_trip_and_specials(kind):
    vocab_size = 300 if kind == "bpe" else 200
    tok = text.train_tokenizer(kind, [SAMPLE] * 3 + [text.generate_corpus(50)], vocab_size=vocab_size)
    assert [tok.token_to_id(s) for s in SPECIALS] == [0, 1, 2, 3]
    ids = text.encode(tok, SAMPLE)
    decoded = tok.decode(ids.tolist())
    if kind == "wordpiece":  # lower-cases and re-spaces punctuation
        assert decoded.split() == tok.decode(tok.encode(SAMPLE.lower()).ids).split()
        assert "quick brown fox" in decoded
    else:
        assert decoded == SAMPLE
    if kind == "char":
        assert len(ids) == len(SAMPLE)
    assert tok.get_vocab_size() <= vocab_size


def test_bpe_compresses_more_than_char():
    corpus = text.builtin_corpus(300)
    char = text.train_tokenizer("char", corpus.splitlines(keepends=True))
    bpe = text.train_tokenizer("bpe", corpus.splitlines(keepends=True), vocab_size=400)
    assert len(text.encode(bpe, corpus)) < 0.6 * len(text.encode(char, corpus))


def test_corpus_sources(tmp_path, monkeypatch):
    assert text.CORPUS_DIR.is_dir() and sum(f.stat().st_size for f in text.CORPUS_DIR.iterdir()) < 1_000_000
    assert "Four score and seven years ago" in text.load_corpus("builtin")
    assert text.generate_corpus(20, seed=1) == text.generate_corpus(20, seed=1) != text.generate_corpus(20, seed=2)
    f = tmp_path / "t.txt"
    f.write_text(SAMPLE)
    assert text.load_corpus(str(f)) == SAMPLE
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert text.load_corpus("wikitext-2") == text.builtin_corpus()
    assert any("offline" in str(w.message) for w in caught)
    with pytest.raises(FileNotFoundError, match="neither 'builtin', 'wikitext-2' nor an existing text file"):
        text.load_corpus(str(tmp_path / "missing.txt"))


def test_lm_dataset_and_text_task():
    ids = torch.arange(103)
    ds = text.lm_dataset(ids, 10)
    assert ds.tensors["tokens"].shape == (10, 10) and torch.equal(ds.tensors["tokens"].flatten(), ids[:100])
    with pytest.raises(ValueError, match="fewer than one window"):
        text.lm_dataset(ids[:5], 10)
    train, eval_, tok = text.text_task("builtin", "char", n_ctx=32)
    assert len(eval_) >= 1 and train[0]["tokens"].shape == (32,)
    assert int(train.tensors["tokens"].max()) < tok.get_vocab_size()


def test_tokenizer_saved_with_checkpoint(tmp_path):
    import probe
    from probe.config import TransformerConfig
    from probe.models.transformer import Transformer

    tok = text.train_tokenizer("bpe", [SAMPLE, text.generate_corpus(50)], vocab_size=300)
    model = Transformer(TransformerConfig(d_model=16, n_layers=1, n_heads=2, d_vocab=tok.get_vocab_size(), seed=0))
    model.save(tmp_path / "ck", tokenizer=tok)
    loaded = probe.load(tmp_path / "ck")
    assert loaded.tokenizer.encode(SAMPLE).ids == tok.encode(SAMPLE).ids
    with pytest.raises(ValueError, match="below the byte-level BPE floor"):
        text.train_tokenizer("bpe", [SAMPLE], vocab_size=100)
    with pytest.raises(ValueError, match="kind='sentencepiece'"):
        text.train_tokenizer("sentencepiece", [SAMPLE])
