"""Offline text shared by the claims studies on language (pretrain_finetune, mlm): one WordPiece tokenizer over
probe's builtin corpus, sentence tables and a labelled task derived from the text.

The corpus (`probe.data.text.builtin_corpus`) is small: public-domain passages plus sentences of a seeded grammar.
Fresh grammar sentences (`generate_corpus(n, seed)` with another seed) serve as held-out text, and the labelled task
is derived from them: is a sentence in its original word order (label 1) or were two different words swapped
(label 0)? Both classes hold the same words, so only word order separates them: what a language model learns.
"""

from __future__ import annotations

import functools
import random
import re

import torch
from tokenizers import Tokenizer

from probe.data.text import builtin_corpus, encode, generate_corpus, train_tokenizer

MASK = "[MASK]"
PAD_ID = 0


def train(vocab_size: int) -> str:
    """WordPiece trained on the builtin corpus (lower-cased) with [MASK] appended as one more special token, as JSON.

    Train it once and hand the JSON to every process: WordPiece training is not deterministic (Hugging Face
    tokenizers issue #1794: ties are broken in hash-map order), so two trainings may number the tokens differently.
    """
    tok = train_tokenizer("wordpiece", builtin_corpus().splitlines(keepends=True), vocab_size)
    tok.add_special_tokens([MASK])
    return tok.to_str()


@functools.lru_cache(maxsize=4)
def load(spec: str) -> Tokenizer:
    """The tokenizer of a JSON `spec` from `train` (one object per process)."""
    return Tokenizer.from_str(spec)


@functools.lru_cache(maxsize=4)
def corpus_ids(spec: str) -> torch.Tensor:
    """The builtin corpus as one token stream (pretraining text)."""
    return encode(load(spec), builtin_corpus())


def sentences(n: int, seed: int) -> list[str]:
    """The first `n` sentences of grammar text drawn with `seed` (unseen in the builtin corpus for seed > 0)."""
    out = [s.strip() for s in re.split(r"(?<=\.)\s+", generate_corpus(n + n // 4 + 8, seed=seed)) if s.strip()]
    if len(out) < n:
        raise ValueError(f"the grammar gave {len(out)} sentences, fewer than n={n}")
    return out[:n]


def swap_two_words(sentence: str, rng: random.Random) -> str:
    """`sentence` with two different words at random positions swapped (the final period stays in place)."""
    words = sentence.rstrip(".").split()
    pairs = [(i, j) for i in range(len(words)) for j in range(i + 1, len(words)) if words[i] != words[j]]
    i, j = rng.choice(pairs)
    words[i], words[j] = words[j], words[i]
    return " ".join(words) + "."


def pad(ids: list[list[int]], n_ctx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens, attention_mask) right-padded to `n_ctx`; a longer sequence is refused, never cut."""
    longest = max(len(i) for i in ids)
    if longest > n_ctx:
        raise ValueError(f"a sentence has {longest} tokens, more than n_ctx={n_ctx}; raise n_ctx")
    tokens = torch.full((len(ids), n_ctx), PAD_ID, dtype=torch.long)
    mask = torch.zeros(len(ids), n_ctx, dtype=torch.long)
    for row, seq in enumerate(ids):
        tokens[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return tokens, mask


def word_order_task(n: int, seed: int, spec: str, n_ctx: int) -> dict[str, torch.Tensor]:
    """`n` labelled sentences: {"tokens", "attention_mask", "labels"}; label 1 = original order, 0 = two words
    swapped; classes balanced by a coin per sentence. Sentences come from grammar text drawn with `seed`."""
    rng = random.Random(seed)
    texts, labels = [], []
    for s in sentences(n, seed):
        keep = rng.random() < 0.5
        texts.append(s if keep else swap_two_words(s, rng))
        labels.append(int(keep))
    tokens, mask = pad([e.ids for e in load(spec).encode_batch(texts)], n_ctx)
    return {"tokens": tokens, "attention_mask": mask, "labels": torch.tensor(labels)}
