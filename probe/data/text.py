"""Text data: tokenizers trained with Hugging Face `tokenizers`, and language-modelling datasets.

Tokenizers (`train_tokenizer(kind, texts, vocab_size)`):
- "char": one token per character (WordLevel over single characters, as in Karpathy's char-rnn / nanoGPT
  shakespeare_char);
- "bpe": byte-level BPE (Sennrich et al. 2016; GPT-2's byte-level variant, Radford et al. 2019);
- "wordpiece": WordPiece (Schuster & Nakajima 2012; BERT, Devlin et al. 2019).
Each has the specials [PAD] [UNK] [BOS] [EOS] (ids 0-3) and is saved with a checkpoint as `tokenizer.json`.

Corpora (`load_corpus(source)`): a local text file, "wikitext-2" through `datasets` when the network answers
(else the offline fallback, with a warning), or "builtin": public-domain passages shipped in
`probe/data/corpus/` extended by `generate_corpus`, a seeded grammar that writes simple English sentences.
`lm_dataset(ids, n_ctx)` cuts a token stream into non-overlapping windows for next-token training.
"""

from __future__ import annotations

import os
import random
import socket
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from probe.data.dataset import DictDataset

SPECIALS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
KINDS = ("char", "bpe", "wordpiece")
CORPUS_DIR = Path(__file__).parent / "corpus"


def train_tokenizer(kind: str, texts: Iterable[str], vocab_size: int = 512) -> Tokenizer:
    """Train a tokenizer of `kind` on `texts` (strings). `vocab_size` bounds bpe / wordpiece (char ignores it)."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")
    if not isinstance(vocab_size, int) or vocab_size < len(SPECIALS) + 1:
        raise ValueError(f"vocab_size={vocab_size!r} must be an integer > {len(SPECIALS)}")
    if kind == "bpe" and vocab_size < 256 + len(SPECIALS):
        raise ValueError(f"vocab_size={vocab_size} is below the byte-level BPE floor of {256 + len(SPECIALS)} "
                         "(256 bytes + 4 specials); use kind='char' or 'wordpiece' for smaller vocabularies")
    texts = list(texts)
    if not any(texts):
        raise ValueError("texts is empty: a tokenizer needs some text to train on")
    if kind == "char":
        tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Split(Regex("(?m)."), behavior="isolated")
        tok.decoder = decoders.Fuse()
        trainer = trainers.WordLevelTrainer(vocab_size=1_000_000, special_tokens=SPECIALS, min_frequency=1)
    elif kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIALS)
    tok.train_from_iterator(texts, trainer)
    return tok


# ---- corpora -----------------------------------------------------------------------------------------------------
_SUBJECTS = ["the farmer", "a child", "the old sailor", "my neighbour", "the teacher", "a small dog", "the king",
             "the river", "an engineer", "the baker", "the moon", "a traveller", "the council", "her brother"]
_VERBS = ["sees", "finds", "carries", "remembers", "builds", "follows", "paints", "loses", "counts", "opens",
          "watches", "mends", "sells", "keeps"]
_OBJECTS = ["a red boat", "the bright lamp", "seven stones", "the narrow road", "a wooden box", "the last letter",
            "an empty cup", "the green hill", "a heavy key", "the north gate", "two silver coins", "the map"]
_ADVERBIALS = ["in the morning", "after the rain", "by the sea", "before supper", "at the market",
               "under the bridge", "every winter", "without a word", "near the mill", "at dawn"]
_JOINS = ["and then", "because", "while", "but", "so"]


def generate_corpus(n_sentences: int = 2000, seed: int = 0) -> str:
    """Deterministic English-like text from a small grammar (subject verb object [adverbial] [join clause])."""
    if not isinstance(n_sentences, int) or n_sentences < 1:
        raise ValueError(f"n_sentences={n_sentences!r} must be an integer >= 1")
    rng = random.Random(seed)

    def clause() -> str:
        parts = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
        if rng.random() < 0.5:
            parts.append(rng.choice(_ADVERBIALS))
        return " ".join(parts)

    lines = []
    for i in range(n_sentences):
        s = clause()
        if rng.random() < 0.3:
            s += f" {rng.choice(_JOINS)} {clause()}"
        lines.append(s[0].upper() + s[1:] + ".")
        if i % 8 == 7:
            lines.append("\n")
    return " ".join(lines).replace(" \n ", "\n")


def builtin_corpus(n_generated: int = 2000) -> str:
    """The shipped public-domain passages followed by `n_generated` grammar sentences."""
    shipped = "\n".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS_DIR.glob("*.txt")))
    return shipped + "\n" + generate_corpus(n_generated)


def _network_available(host: str = "huggingface.co", timeout: float = 2.0) -> bool:
    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_corpus(source: str = "builtin", split: str = "train") -> str:
    """Text of `source`: a path to a local file, "wikitext-2" (falls back to "builtin" offline) or "builtin"."""
    if source == "builtin":
        return builtin_corpus()
    if source == "wikitext-2":
        if _network_available():
            try:
                import datasets

                ds = datasets.load_dataset("wikitext", "wikitext-2-raw-v1", split=split)
                return "".join(ds["text"])
            except Exception as e:  # noqa: BLE001 - any hub failure means: use the fallback
                warnings.warn(f"wikitext-2 could not be loaded ({type(e).__name__}: {e}); using the builtin corpus",
                              stacklevel=2)
        else:
            warnings.warn("no network: wikitext-2 unavailable, using the builtin offline corpus", stacklevel=2)
        return builtin_corpus()
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"source={source!r} is neither 'builtin', 'wikitext-2' nor an existing text file")
    return path.read_text(encoding="utf-8")


def encode(tokenizer: Tokenizer, text: str) -> torch.Tensor:
    """Token ids of `text` as one long int64 stream (line by line, so newlines survive every tokenizer kind)."""
    ids: list[int] = []
    for enc in tokenizer.encode_batch(text.splitlines(keepends=True)):
        ids.extend(enc.ids)
    return torch.tensor(ids, dtype=torch.long)


def lm_dataset(ids: torch.Tensor, n_ctx: int) -> DictDataset:
    """Non-overlapping windows of `n_ctx` tokens: {"tokens": [n_windows, n_ctx]} for next-token prediction."""
    if not isinstance(n_ctx, int) or n_ctx < 2:
        raise ValueError(f"n_ctx={n_ctx!r} must be an integer >= 2")
    n = len(ids) // n_ctx
    if n < 1:
        raise ValueError(f"{len(ids)} tokens are fewer than one window of n_ctx={n_ctx}")
    return DictDataset(tokens=ids[: n * n_ctx].view(n, n_ctx).clone())


def text_task(source: str = "builtin", kind: str = "char", vocab_size: int = 512, n_ctx: int = 64,
              eval_fraction: float = 0.1) -> tuple[DictDataset, DictDataset, Tokenizer]:
    """Train a tokenizer on `source` and return (train, eval, tokenizer); eval is the text's last windows."""
    if not 0.0 < eval_fraction < 1.0:
        raise ValueError(f"eval_fraction={eval_fraction!r} must be in (0, 1)")
    text = load_corpus(source)
    tok = train_tokenizer(kind, text.splitlines(keepends=True), vocab_size)
    data = lm_dataset(encode(tok, text), n_ctx)
    return (*data.split(max(1, int(len(data) * eval_fraction))), tok)
