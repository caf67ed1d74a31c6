import pytest
import torch

from probe.config import TransformerConfig
from probe.data import synthetic
from probe.data.synthetic import BOS, EOS, PAD
from probe.models.transformer import Transformer


@pytest.mark.parametrize("task", synthetic.SEQ2SEQ)
def test_seq2seq_targets(task):
    ds = synthetic.seq2seq(task, 50, n_symbols=6, min_len=2, max_len=7, seed=3)
    src, tgt, labels, mask = (ds.tensors[k] for k in ("src", "tgt", "labels", "src_mask"))
    assert (tgt[:, 0] == BOS).all()
    for i in range(50):
        n = int(mask[i].sum())
        assert (mask[i, :n] == 1).all() and (mask[i, n:] == 0).all() and 2 <= n <= 7
        s = src[i, :n].tolist()
        expected = {"copy": s, "reverse": s[::-1], "sort": sorted(s)}[task]
        assert labels[i, :n].tolist() == expected and labels[i, n] == EOS and (labels[i, n + 1 :] == -100).all()
        assert tgt[i, 1 : n + 1].tolist() == expected and (tgt[i, n + 1 :] == PAD).all()
        assert (src[i, n:] == PAD).all()


def test_induction_labels_are_copies_of_the_first_block():
    from probe.data.induction import repeated_blocks

    ds = synthetic.induction(20, n_symbols=7, min_block=3, max_block=5, length=16, seed=1)
    tokens, labels = ds.tensors["tokens"], ds.tensors["labels"]
    blocks = repeated_blocks(20, n_symbols=7, min_block=3, max_block=5, length=16, seed=1).block
    scored = (labels != -100).nonzero()
    assert len(scored) > 20
    for b, p in scored.tolist():
        B = int(blocks[b, p + 1])
        assert labels[b, p] == tokens[b, p + 1] == tokens[b, p + 1 - B]  # predictable by induction
    assert set(synthetic.induction(4, targets="all", length=40).tensors) == {"tokens"}


def test_associative_recall_label_is_the_queried_value():
    ds = synthetic.associative_recall(30, n_keys=6, n_values=5, n_pairs=4, seed=2)
    for tokens, labels in zip(ds.tensors["tokens"], ds.tensors["labels"]):
        pairs = dict(zip(tokens[0:-1:2].tolist(), tokens[1:-1:2].tolist()))
        assert len(pairs) == 4  # distinct keys
        assert labels[-1] == pairs[tokens[-1].item()] and (labels[:-1] == -100).all()


def test_majority_label():
    ds = synthetic.majority(40, n_classes=3, length=9, seed=4)
    for tokens, label in zip(ds.tensors["tokens"], ds.tensors["labels"]):
        counts = torch.bincount(tokens[1:] - 1, minlength=3)
        assert tokens[0] == 0 and label == int(torch.argmax(counts)) and counts[label] == counts.max()


def test_seeded_and_validated():
    a, b = synthetic.make_task("sort", 8, seed=1), synthetic.make_task("sort", 8, seed=1)
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    assert not torch.equal(a.tensors["src"], synthetic.make_task("sort", 8, seed=2).tensors["src"])
    with pytest.raises(ValueError, match="task='shuffle'"):
        synthetic.make_task("shuffle", 4)
    with pytest.raises(ValueError, match="min_len=5 must be <= max_len=3"):
        synthetic.seq2seq("copy", 4, min_len=5, max_len=3)
    with pytest.raises(ValueError, match="n_pairs=5 must be <= n_keys=4"):
        synthetic.associative_recall(4, n_keys=4, n_pairs=5)
    with pytest.raises(ValueError, match="min_block=1"):
        synthetic.induction(4, min_block=1)
    with pytest.raises(ValueError, match="targets='some'"):
        synthetic.induction(4, targets="some")


@pytest.mark.parametrize("task", synthetic.TASKS)
def test_tasks_fit_the_transformer(task):
    cfg = TransformerConfig(d_model=16, n_layers=1, n_heads=2, seed=0, **synthetic.task_model_fields(task))
    batch = synthetic.make_task(task, 4)[:4]
    loss = Transformer(cfg)(**batch, return_type="loss")
    assert torch.isfinite(loss)
