"""probe.circuits against TransformerLens and hand-built cases."""

import math

import pytest
import torch
from transformer_lens import head_detector

from probe.circuits import (
    HEAD_KINDS,
    composition_scores,
    detection_pattern,
    detector_scores,
    head_ablation_hooks,
    in_context_score,
    prefix_matching_score,
    random_composition_scores,
    repeat_accuracy,
    token_losses,
)
from probe.config import TransformerConfig
from probe.interop.bridge import vocab_tokenizer
from probe.models.transformer import Transformer

TL_NAMES = {"previous_token": "previous_token_head", "duplicate": "duplicate_token_head", "induction": "induction_head"}
TOKENS = torch.tensor([[1, 5, 6, 7, 5, 6, 7, 6], [1, 4, 4, 3, 9, 4, 3, 2]])


@pytest.mark.parametrize("kind", HEAD_KINDS)
def test_detection_patterns_equal_transformer_lens_row_by_row(kind):
    ours = detection_pattern(TOKENS, kind)
    for row, pattern in zip(TOKENS, ours):
        theirs = getattr(head_detector, f"get_{TL_NAMES[kind]}_detection_pattern")(row[None])
        torch.testing.assert_close(pattern, theirs.float())


def test_induction_pattern_by_hand():
    det = detection_pattern(torch.tensor([[1, 5, 6, 5, 6]]), "induction")[0]
    # the second 5 (pos 3) attends to pos 2 (after the first 5); the second 6 (pos 4) to pos 3 (after the first 6)
    assert det.nonzero().tolist() == [[3, 2], [4, 3]]


def model_with_tokenizer(seed=0):
    cfg = TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_vocab=10, n_ctx=16, attn_only=True, seed=seed)
    return Transformer(cfg, tokenizer=vocab_tokenizer(10)).eval()


@pytest.mark.parametrize("kind", HEAD_KINDS)
def test_detector_scores_equal_detect_head_averaged_over_prompts(kind):
    model = model_with_tokenizer()
    texts = [" ".join(f"t{int(t)}" for t in row) for row in TOKENS]
    theirs = head_detector.detect_head(model, texts, TL_NAMES[kind])
    _, cache = model.run_with_cache(TOKENS)
    ours = torch.stack([detector_scores(cache["pattern", layer], TOKENS, kind) for layer in range(2)])
    torch.testing.assert_close(ours, theirs.float(), atol=1e-6, rtol=1e-5)


def test_prefix_matching_is_one_for_an_ideal_head_and_small_for_uniform_attention():
    tokens = torch.tensor([[1, 5, 6, 7, 5, 6, 7]])
    det = detection_pattern(tokens, "induction")
    ideal = det.clone()
    rows = ideal.sum(-1) > 0
    ideal[~rows] = torch.eye(7)[~rows[0]]  # rows without a target attend to themselves
    ideal = ideal / ideal.sum(-1, keepdim=True)
    uniform = torch.tril(torch.ones(7, 7))
    uniform = uniform / uniform.sum(-1, keepdim=True)
    pattern = torch.stack([ideal[0], uniform])[None]  # [batch 1, head 2, q, k]
    scores = prefix_matching_score(pattern, tokens)
    # uniform: query 4 (5, second copy) has 1/5 on pos 2, query 5 has 1/6 on pos 3, query 6 has 1/7 on pos 4
    assert scores[0] == pytest.approx(1.0) and scores[1] == pytest.approx((1 / 5 + 1 / 6 + 1 / 7) / 3)
    only_last = torch.zeros(1, 7, dtype=torch.bool)
    only_last[0, 6] = True
    assert prefix_matching_score(pattern, tokens, only_last)[1] == pytest.approx(1 / 7)
    with pytest.raises(ValueError, match="no query position"):
        prefix_matching_score(pattern[:, :, :3, :3], tokens[:, :3])


def test_token_losses_and_in_context_score_by_hand():
    logits = torch.zeros(1, 3, 4)
    logits[0, 0, 2] = math.log(3.0)  # p(token 2) = 3 / 6 = 1/2 after position 0
    tokens = torch.tensor([[0, 2, 1]])
    losses = token_losses(logits, tokens)
    torch.testing.assert_close(losses, torch.tensor([[math.log(2.0), math.log(4.0)]]))
    late = torch.tensor([[False, True]])
    assert in_context_score(losses, late, ~late) == pytest.approx(math.log(4.0) - math.log(2.0))
    with pytest.raises(ValueError, match="early selects no position"):
        in_context_score(losses, late, torch.zeros_like(late))


def dense_k_composition(model, l1, h1, l2, h2):
    ov = model.blocks[l1].attn.W_V[h1] @ model.blocks[l1].attn.W_O[h1]
    g = model.blocks[l2].ln1.w
    qk = (g[:, None] * model.blocks[l2].attn.W_Q[h2]) @ (g[:, None] * model.blocks[l2].attn.W_K[h2]).T
    g1 = model.blocks[l1].ln1.w
    ov = g1[:, None] * ov
    return (ov @ qk.T).norm() / (ov.norm() * qk.norm())


def test_composition_scores_equal_the_dense_formula_and_vanish_for_orthogonal_subspaces():
    model = model_with_tokenizer(seed=1)
    with torch.no_grad():
        for block in model.blocks:
            block.ln1.w.uniform_(0.5, 1.5)
    scores = composition_scores(model, "K")
    assert scores.shape == (2, 2, 2, 2)
    for h1 in range(2):
        for h2 in range(2):
            assert scores[0, h1, 1, h2].item() == pytest.approx(dense_k_composition(model, 0, h1, 1, h2).item(),
                                                                rel=1e-5)
    assert (scores[1, :, 0] == 0).all() and (scores[0, :, 0] == 0).all()  # only earlier -> later
    # by hand: layer-0 head 0's OV projects onto dims 0..7; layer-1 head 1's QK is the same projection (keys read
    # what head 0 writes), layer-1 head 0's QK projects onto dims 8..15 (keys read nothing of it).
    eye = torch.eye(16)
    with torch.no_grad():
        for block in model.blocks:
            block.ln1.w.fill_(1.0)
        a, k = model.blocks[0].attn, model.blocks[1].attn
        a.W_V[0], a.W_O[0] = eye[:, :8], eye[:8]
        k.W_Q[1], k.W_K[1] = eye[:, :8], eye[:, :8]
        k.W_Q[0], k.W_K[0] = eye[:, 8:], eye[:, 8:]
    scores = composition_scores(model, "K")
    assert scores[0, 0, 1, 0].abs() < 1e-6
    assert scores[0, 0, 1, 1].item() == pytest.approx(1 / math.sqrt(8))  # ||P|| / (||P|| ||P||) for a rank-8 P
    with pytest.raises(ValueError, match="mode='X'"):
        composition_scores(model, "X")


def test_random_baseline_is_a_score_of_random_matrices():
    s = random_composition_scores(16, 4, "K", n=200, seed=0)
    assert s.shape == (200,) and ((s > 0) & (s < 1)).all()
    torch.testing.assert_close(s, random_composition_scores(16, 4, "K", n=200, seed=0))
    # higher-rank factors in a wider space compose less by chance
    assert random_composition_scores(64, 4, "K", n=200).mean() < s.mean()
    with pytest.raises(ValueError, match="d_head=0"):
        random_composition_scores(16, 0)


def test_repeat_accuracy_counts_argmax_hits_on_the_targets():
    model = model_with_tokenizer()
    tokens = TOKENS
    pred = model(tokens).argmax(-1)
    targets = torch.zeros_like(tokens, dtype=torch.bool)
    targets[0, 3], targets[1, 5] = True, True  # predicted from positions 2 and 4
    expected = ((pred[0, 2] == tokens[0, 3]).float() + (pred[1, 4] == tokens[1, 5]).float()) / 2
    assert repeat_accuracy(model, tokens, targets) == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="non-empty mask"):
        repeat_accuracy(model, tokens, torch.zeros_like(targets))


def test_head_ablation_hooks_zero_or_mean_the_chosen_heads():
    model = model_with_tokenizer()
    seen = {}

    def grab(z, hook):
        seen[hook.name] = z.detach().clone()

    hooks = head_ablation_hooks(model, [(0, 1)], how="zero")
    model.run_with_hooks(TOKENS, fwd_hooks=hooks + [("blocks.0.attn.hook_z", grab)])
    z = seen["blocks.0.attn.hook_z"]
    assert (z[:, :, 1] == 0).all() and z[:, :, 0].abs().sum() > 0
    _, cache = model.run_with_cache(TOKENS, names_filter="blocks.0.attn.hook_z")
    hooks = head_ablation_hooks(model, [(0, 1)], TOKENS, how="mean")
    model.run_with_hooks(TOKENS, fwd_hooks=hooks + [("blocks.0.attn.hook_z", grab)])
    z = seen["blocks.0.attn.hook_z"]
    torch.testing.assert_close(z[:, :, 1], cache["blocks.0.attn.hook_z"][:, :, 1].mean(0).expand(2, -1, -1))
    with pytest.raises(ValueError, match="head \\(2, 0\\)"):
        head_ablation_hooks(model, [(2, 0)], how="zero")
    with pytest.raises(ValueError, match="needs tokens"):
        head_ablation_hooks(model, [(0, 0)], how="mean")
