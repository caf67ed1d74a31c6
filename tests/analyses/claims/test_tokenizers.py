"""claims.tokenizers: verdicts on hand-made tables, word/token alignment on a hand-made case, the quick run."""

import pandas as pd
import pytest

from analyses.claims import tokenizers as study
from probe.data.text import train_tokenizer
from probe.study import run


def table(unknown, rare, frequent) -> pd.DataFrame:
    rows = []
    for kind in ("bpe", "wordpiece", "word"):
        for seed in range(3):
            for vocab, judged in ((300, False), (500, True)):
                u = unknown[seed] if kind != "word" else 1.0
                rows.append(dict(kind=kind, vocab_size=vocab, seed=seed, judged=judged,
                                 rare_unknown=u if judged else 0.9, tokens_per_rare_word=rare[seed],
                                 tokens_per_frequent_word=frequent[seed]))
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "args, outcome",
    [
        (([0.0, 0.0, 0.0], [3.0, 3.2, 3.1], [1.0, 1.1, 1.0]), "supported"),
        (([0.3, 0.4, 0.35], [1.0, 1.0, 1.1], [2.0, 2.1, 2.0]), "refuted"),
        (([0.0, 0.05, 0.0], [1.0, 2.0, 1.5], [1.5, 1.5, 1.5]), "inconclusive"),
    ],
)
def test_every_claim_flips_with_the_table(args, outcome):
    verdicts = study.verdicts(table(*args))
    assert [v.claim.id for v in verdicts] == [c.id for c in study.CLAIMS]
    assert [v.outcome for v in verdicts] == [outcome] * 4


def test_word_pieces_follow_token_offsets():
    tok = train_tokenizer("wordpiece", ["the cat sat on the mat"] * 20, vocab_size=40)
    pieces = study.word_pieces(tok, "The cat, zebra!")
    assert [w for w, _ in pieces] == ["The", "cat", "zebra"]
    assert pieces[0][1] == ["the"] and pieces[1][1] == ["cat"]
    assert "[UNK]" in pieces[2][1]  # z, e, b, r are not in the alphabet
    word = study.word_level(["the cat sat"], vocab_size=10)
    assert study.word_pieces(word, "the dog") == [("the", ["the"]), ("dog", ["[UNK]"])]


def test_split_holds_out_clauses_and_keeps_the_grammar_for_training():
    train, held = study.split(0, 0.3, 10)
    clauses = study.clauses()
    assert len([c for c in clauses if c in held]) == round(0.3 * len(clauses))
    assert not any(c in train for c in clauses if c in held)


def test_quick_run_writes_the_report(tmp_path):
    result = run(study.STUDY, quick=True, out=tmp_path)
    t = result.table
    assert len(t) == 6 and set(t["kind"]) == {"bpe", "wordpiece", "word"}
    assert (t[t["kind"] == "word"]["rare_unknown"] == 1.0).all()  # a word vocabulary knows no unseen word
    assert (t[t["kind"] == "bpe"]["rare_unknown"] == 0.0).all()  # byte-level BPE cannot produce [UNK]
    assert (tmp_path / "tokenizers.png").is_file() and len(result.verdicts) == 4
