"""BPE and WordPiece handle rare words with subwords (seed 003 #18; Sennrich et al. 2016; Schuster & Nakajima 2012).

Seed 003 #18: WordPiece splits text into meaningful subword units and "helps with rare words"; BPE builds its
vocabulary by merging the most frequent symbol pairs. The claim: a subword vocabulary leaves no word unknown, because
a word it has never seen is spelled out of smaller pieces, while frequent words stay whole.

Experiment. The text is probe's offline corpus: the shipped public-domain passages, cut into clauses, and the
grammar sentences. Each seed holds out a random 30% of the public-domain clauses; the tokenizers train on the rest
plus the grammar text. Held-out words never seen in training are the rare words; held-out words seen at least five
times are the frequent ones. Byte-level BPE and WordPiece are trained with Hugging Face `tokenizers`
(`probe.data.text.train_tokenizer`) at several vocabulary sizes, beside a word-level vocabulary of the same size as
the reference without subwords. Measured on the held-out text: the share of rare words that contain an unknown
token, and tokens per word (rare, frequent, all), counted from each token's character offsets. The corpus is small,
so the vocabulary sizes are small too, and a requested size may not be reached (the report gives the actual one).
WordPiece training in Hugging Face `tokenizers` is not deterministic (issue #1794: ties are broken in hash-map
order), so its numbers can differ slightly between two runs of this study; byte-level BPE's do not.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from analyses.claims import _plot
from probe.data.text import CORPUS_DIR, SPECIALS, generate_corpus, train_tokenizer
from probe.study import Claim, Outcome, Study, column, grid, judge, main

SOURCE = "003 #18; Sennrich et al. 2016 (BPE); Schuster & Nakajima 2012, Devlin et al. 2019 (WordPiece)"
KINDS = ("bpe", "wordpiece", "word")
WORD = re.compile(r"[A-Za-z]+")


def _unknown(kind: str) -> Claim:
    name = {"bpe": "Byte-level BPE", "wordpiece": "WordPiece"}[kind]
    return Claim(f"{kind}_no_unknowns", f"{name} leaves no rare word unknown: held-out words never seen in training "
                 "are spelled from subwords, not mapped to [UNK].", SOURCE,
                 f"share of rare held-out words containing [UNK] ({name})", "<", 0.01)


def _splits(kind: str) -> Claim:
    name = {"bpe": "Byte-level BPE", "wordpiece": "WordPiece"}[kind]
    return Claim(f"{kind}_splits_rare_words", f"{name} keeps frequent words whole and splits rare words into more "
                 "pieces.", SOURCE, f"tokens per rare word minus tokens per frequent word ({name})", ">", 0.0)


CLAIMS = (_unknown("bpe"), _unknown("wordpiece"), _splits("bpe"), _splits("wordpiece"))


@dataclass
class Config:
    vocab_sizes: tuple[int, ...] = (300, 500, 1000, 2000)
    judge_vocab: int = 500  # the vocabulary size the claims are judged at
    holdout: float = 0.3
    n_grammar: int = 2000
    min_frequent: int = 5
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7)
    workers: int = 2


@functools.lru_cache(maxsize=1)
def clauses() -> tuple[str, ...]:
    """The public-domain passages cut after . ; : ! ? (clauses of a few words to a sentence)."""
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS_DIR.glob("*.txt")))
    return tuple(c.strip() for c in re.split(r"(?<=[.;:!?])\s+", " ".join(text.split())) if WORD.search(c))


def split(seed: int, holdout: float, n_grammar: int) -> tuple[list[str], str]:
    """(training lines, held-out text) of one seed."""
    order = list(clauses())
    random.Random(seed).shuffle(order)
    n = max(1, round(holdout * len(order)))
    return order[n:] + generate_corpus(n_grammar).splitlines(), " ".join(order[:n])


def word_level(texts: list[str], vocab_size: int) -> Tokenizer:
    """The reference without subwords: whole lower-cased words, the `vocab_size` most frequent, else [UNK]."""
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=SPECIALS))
    return tok


def word_pieces(tok: Tokenizer, text: str) -> list[tuple[str, list[str]]]:
    """Each alphabetic word of `text` with the tokens that overlap its characters (from the tokens' offsets)."""
    enc = tok.encode(text)
    out = []
    for m in WORD.finditer(text):
        pieces = [t for t, (a, b) in zip(enc.tokens, enc.offsets) if a < m.end() and b > m.start()]
        out.append((m.group(), pieces))
    return out


def measure(kind: str, vocab_size: int, seed: int, holdout: float, n_grammar: int, min_frequent: int) -> dict:
    train, held = split(seed, holdout, n_grammar)
    tok = word_level(train, vocab_size) if kind == "word" else train_tokenizer(kind, train, vocab_size)
    counts: dict[str, int] = {}
    for line in train:
        for w in WORD.findall(line.lower()):
            counts[w] = counts.get(w, 0) + 1
    words = word_pieces(tok, held)
    rare = [p for w, p in words if counts.get(w.lower(), 0) == 0]
    frequent = [p for w, p in words if counts.get(w.lower(), 0) >= min_frequent]
    if not rare or not frequent:
        raise ValueError(f"seed {seed}: {len(rare)} rare and {len(frequent)} frequent held-out words; "
                         "change holdout or min_frequent")
    per_word = lambda ps: sum(len(p) for p in ps) / len(ps)  # noqa: E731
    return {"actual_vocab": tok.get_vocab_size(), "n_rare": len(rare), "n_frequent": len(frequent),
            "rare_unknown": sum("[UNK]" in p for p in rare) / len(rare),
            "all_unknown": sum("[UNK]" in p for _, p in words) / len(words),
            "tokens_per_rare_word": per_word(rare), "tokens_per_frequent_word": per_word(frequent),
            "tokens_per_word": per_word([p for _, p in words])}


def experiment(cfg: Config) -> Outcome:
    if cfg.judge_vocab not in cfg.vocab_sizes:
        raise ValueError(f"judge_vocab={cfg.judge_vocab} must be one of vocab_sizes={cfg.vocab_sizes}")
    run = functools.partial(measure, holdout=cfg.holdout, n_grammar=cfg.n_grammar, min_frequent=cfg.min_frequent)
    variants = [{"kind": k, "vocab_size": v} for k in KINDS for v in cfg.vocab_sizes]
    table = grid(run, variants, cfg.seeds, desc="tokenizers", workers=cfg.workers)
    table["judged"] = table["vocab_size"] == cfg.judge_vocab
    train, held = split(cfg.seeds[0], cfg.holdout, cfg.n_grammar)
    counts = {w for line in train for w in WORD.findall(line.lower())}
    rare = [w for w in dict.fromkeys(WORD.findall(held)) if w.lower() not in counts][:8]
    summary = {}
    for kind in KINDS:
        tok = (word_level(train, cfg.judge_vocab) if kind == "word"
               else train_tokenizer(kind, train, cfg.judge_vocab))
        pieces = dict(word_pieces(tok, " ".join(rare)))
        summary[f"{kind} segmentation of rare words (seed {cfg.seeds[0]}, vocab {cfg.judge_vocab})"] = "; ".join(
            f"{w} = {' '.join(pieces[w])}" for w in rare)
    for (kind, v), g in table.groupby(["kind", "vocab_size"]):
        summary[f"{kind}, vocab {v}: rare words with [UNK], tokens per word (means)"] = (
            f"{g['rare_unknown'].mean():.3f}, {g['tokens_per_word'].mean():.3f}")
    return Outcome(table, summary)


def verdicts(table: pd.DataFrame) -> list:
    c = {claim.id: claim for claim in CLAIMS}
    out = []
    for kind in ("bpe", "wordpiece"):
        out.append(judge(c[f"{kind}_no_unknowns"], *column(table, "rare_unknown", kind=kind, judged=True)))
    for kind in ("bpe", "wordpiece"):
        rare, rows = column(table, "tokens_per_rare_word", kind=kind, judged=True)
        frequent, _ = column(table, "tokens_per_frequent_word", kind=kind, judged=True)
        out.append(judge(c[f"{kind}_splits_rare_words"], rare - frequent, rows))
    return out


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for kind, g in t.groupby("kind"):
        stats = g.groupby("vocab_size").mean(numeric_only=True)
        axes[0].plot(stats["actual_vocab"], stats["rare_unknown"], marker="o", label=kind)
        axes[1].plot(stats["actual_vocab"], stats["tokens_per_rare_word"], marker="o", label=f"{kind}, rare words")
        axes[1].plot(stats["actual_vocab"], stats["tokens_per_frequent_word"], marker="s", ls="--",
                     label=f"{kind}, frequent words")
    axes[0].set(xlabel="vocabulary size (actual)", ylabel="rare held-out words with [UNK]",
                title="unknown words (mean over seeds)")
    axes[1].set(xlabel="vocabulary size (actual)", ylabel="tokens per word", title="segmentation length")
    sizes = sorted(t["vocab_size"].unique())  # ticks at the requested sizes; points at the sizes reached
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(v) for v in sizes], minor=False)
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return _plot.save(fig, out / "tokenizers.png")


STUDY = Study(
    name="claims.tokenizers",
    title="BPE and WordPiece handle rare words with subwords (seed 003 #18)",
    claims=CLAIMS,
    config=Config(),
    quick=Config(vocab_sizes=(300, 500), n_grammar=200, seeds=(0,), workers=1),
    experiment=experiment,
    verdicts=verdicts,
    figures=figures,
    description=__doc__.split("\n\n", 1)[1],
)

if __name__ == "__main__":
    main(STUDY)
