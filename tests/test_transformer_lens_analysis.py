"""TransformerLens 4.3's `tools/analysis` called unchanged on probe's models: node and edge attribution patching,
faithfulness, direct logit attribution and the logit lens, each checked against exact activation patching or the
cache, and refused (by the tool or by probe, naming why) where it cannot represent a model."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from transformer_lens.tools.analysis.attribution_patching import (
    EdgeAttributionConfig,
    Node,
    attribution_patch,
    faithfulness,
)
from transformer_lens.tools.analysis.direct_logit_attribution import direct_logit_attribution
from transformer_lens.tools.analysis.logit_lens import logit_lens

from probe import TrainConfig, Trainer, Transformer, TransformerConfig, ViT, ViTConfig
from probe.data.synthetic import make_task, task_model_fields

WITH_MLP = {
    "decoder": {},
    "rms": {"normalization_type": "RMS"},
    "rotary": {"positional_embedding_type": "rotary"},
    "linear_attention": {"attention": "linear", "update_rule": "delta", "feature_map": "dpfp"},
    "encoder": {"arch": "encoder", "head": "token"},
    "classifier": {"arch": "encoder", "head": "classifier", "d_vocab_out": 3},
}
EDGE = ("use_attn_result", "use_split_qkv_input", "use_attn_in", "use_hook_mlp_in")


def model(**kw):
    cfg = {"d_model": 24, "n_heads": 3, "n_layers": 2, "d_vocab": 13, "n_ctx": 16, "dtype": torch.float64, "seed": 0}
    m = Transformer(TransformerConfig(**{**cfg, **kw}))
    with torch.no_grad():  # away from the initial norms (w = 1, b = 0), so that unfolded norm weights would show
        gen = torch.Generator().manual_seed(1)
        for p in m.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return m.eval()


def pair(seed: int = 0, n: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    clean = torch.randint(0, 13, (1, n), generator=torch.Generator().manual_seed(seed))
    corrupt = clean.clone()
    corrupt[0, 2] = (clean[0, 2] + 5) % 13
    return clean, corrupt


def metric_for(m):
    if m.cfg.head == "classifier":
        return lambda logits: logits[0, 1] - logits[0, 0]
    return lambda logits: logits[0, -1, 4] - logits[0, -1, 7]


def exact_patch(m, clean, corrupt, metric, node: Node) -> float:
    """Exact activation patching: the corrupt run with this node's activation taken from the clean run."""
    _, cache = m.run_with_cache(clean, names_filter=[node.hook_name])
    index = (0, node.position, node.head) if node.kind == "attn_head_out" else (0, node.position)

    def patch(x, hook):
        x = x.clone()
        x[index] = cache[node.hook_name][index]
        return x

    with torch.no_grad():
        return float(metric(m.run_with_hooks(corrupt, fwd_hooks=[(node.hook_name, patch)])) - metric(m(corrupt)))


# ---- attribution patching ---------------------------------------------------------------------------------------
def test_node_attribution_is_exact_where_the_metric_is_linear_in_the_node():
    """Without a final norm the logits are affine in the last MLP's output, so its first-order score is exact."""
    m = model(normalization_type=None)
    clean, corrupt = pair()
    metric = metric_for(m)
    scores = attribution_patch(m, clean, corrupt, metric).node_scores
    last = [n for n in scores if n.kind == "mlp_out" and n.layer == 1]
    assert len(last) == 7
    for node in last:
        assert scores[node] == pytest.approx(exact_patch(m, clean, corrupt, metric, node), abs=1e-10)
    first = [n for n in scores if n.kind == "attn_head_out" and n.layer == 0 and n.position == 2]  # not linear
    assert any(abs(scores[n] - exact_patch(m, clean, corrupt, metric, n)) > 1e-6 for n in first)


@pytest.fixture(scope="module")
def trained():
    """A 2-layer decoder with MLPs trained on associative recall (accuracy 1.0 on held-out prompts; ~4 s CPU)."""
    task = {"n_pairs": 3, "n_keys": 6, "n_values": 6}
    m = Transformer(TransformerConfig(d_model=32, n_heads=2, n_layers=2, d_mlp=64, seed=0,
                                      **task_model_fields("associative_recall", **task)))
    Trainer(m, make_task("associative_recall", 2048, **task), None,
            TrainConfig(steps=400, batch_size=64, lr=3e-3, progress=False, seed=0)).fit()
    test = make_task("associative_recall", 64, seed=1, **task)[:]
    with torch.no_grad():
        accuracy = (m(test["tokens"])[:, -1].argmax(-1) == test["labels"][:, -1]).float().mean()
    clean = test["tokens"][:1]
    value_pos = int((clean[0, :-1:2] == clean[0, -1]).nonzero()[0, 0]) * 2 + 1  # the queried key's value
    corrupt = clean.clone()
    corrupt[0, value_pos] = 9 + (int(clean[0, value_pos]) - 9 + 1) % 6  # another value
    a, b = int(clean[0, value_pos]), int(corrupt[0, value_pos])
    return m.eval(), clean, corrupt, (lambda logits: logits[0, -1, a] - logits[0, -1, b]), float(accuracy)


def test_node_attribution_ranks_nodes_as_exact_patching_does_on_a_trained_model(trained):
    m, clean, corrupt, metric, accuracy = trained
    assert accuracy > 0.9  # it solves the task, so the clean/corrupt gap is the mechanism's
    scores = attribution_patch(m, clean, corrupt, metric).node_scores
    nodes = list(scores)
    exact = np.array([exact_patch(m, clean, corrupt, metric, n) for n in nodes])
    approx = np.array([scores[n] for n in nodes])
    assert spearmanr(approx, exact).statistic > 0.8
    top = lambda v: set(np.argsort(-np.abs(v))[:5].tolist())  # noqa: E731
    assert len(top(exact) & top(approx)) >= 4


def test_edge_attribution_and_faithfulness_on_the_trained_model(trained):
    m, clean, corrupt, metric, _ = trained
    nodes = attribution_patch(m, clean, corrupt, metric).node_scores
    edges = attribution_patch(m, clean, corrupt, metric, EdgeAttributionConfig(granularity="edge"))
    for node, score in nodes.items():  # each writer's edges add up to its node score (TransformerLens' identity)
        assert edges.node_scores[node] == pytest.approx(score, rel=1e-4, abs=1e-5)
    top = faithfulness(m, clean, corrupt, metric, edges.top_edges(40))
    assert top.total_edges == len(edges.edge_scores) and top.circuit_size == 40
    assert top.full_metric > top.corrupt_metric + 1.0  # the pair separates the answer
    assert faithfulness(m, clean, corrupt, metric, []).recovered == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("kind", list(WITH_MLP))
def test_edge_ablation_is_exact_on_every_model_with_mlps(kind):
    """Ablating every edge rebuilds each reader's input (hook_q_input, hook_k_input, hook_v_input, hook_mlp_in,
    the final residual) from the corrupt run's writes: exactly the corrupt metric. The flags come back off."""
    m = model(**WITH_MLP[kind])
    clean, corrupt = pair(n=5)
    metric = metric_for(m)
    edges = attribution_patch(m, clean, corrupt, metric, EdgeAttributionConfig(granularity="edge"))
    # per position: layer 0's 9 q/k/v readers see the embedding, its MLP 1 + 3 heads; layer 1's 9 readers see 5
    # writers, its MLP 8; the logits 9
    assert len(edges.edge_scores) == 5 * (9 * 1 + 4 + 9 * 5 + 8 + 9)
    nodes = attribution_patch(m, clean, corrupt, metric).node_scores
    for node, score in nodes.items():
        assert edges.node_scores[node] == pytest.approx(score, rel=1e-6, abs=1e-9)
    assert faithfulness(m, clean, corrupt, metric, []).recovered == pytest.approx(0.0, abs=1e-9)
    assert not any(getattr(m.cfg, flag) for flag in EDGE)


def test_where_attribution_patching_cannot_represent_a_model_it_says_so():
    clean, corrupt = pair()
    attn_only = model(attn_only=True)
    with pytest.raises(ValueError, match="hook_mlp_out"):  # TransformerLens' node graph always reads MLP outputs
        attribution_patch(attn_only, clean, corrupt, metric_for(attn_only))
    with pytest.raises(ValueError, match="use_hook_mlp_in.*attn_only"):  # no MLP input to hook
        attribution_patch(attn_only, clean, corrupt, metric_for(attn_only), EdgeAttributionConfig(granularity="edge"))
    gqa = model(n_heads=4, n_key_value_heads=2)
    assert attribution_patch(gqa, clean, corrupt, metric_for(gqa)).node_scores
    with pytest.raises(ValueError, match="GQA"):  # a key/value input shared by a group is no head's own edge
        attribution_patch(gqa, clean, corrupt, metric_for(gqa), EdgeAttributionConfig(granularity="edge"))
    vit = ViT(ViTConfig(d_model=16, n_heads=2)).eval()
    with pytest.raises(ValueError, match="2D"):
        attribution_patch(vit, torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8), lambda logits: logits[0, 0])
    encdec = model(arch="encoder_decoder")
    with pytest.raises(ValueError, match="src and tgt"):
        attribution_patch(encdec, clean, corrupt, lambda logits: logits[0, -1, 0])


def test_post_norm_blocks_are_outside_the_edge_graph():
    """A post-norm block's readers see LN(resid + writes), not a sum of writes: ablating every edge does not give the
    corrupt run (the README says edge attribution and faithfulness do not represent post-norm models)."""
    m = model(norm_placement="post")
    clean, corrupt = pair(n=5)
    assert len(attribution_patch(m, clean, corrupt, metric_for(m)).node_scores) == 5 * (1 + 2 * (3 + 1))  # nodes run
    assert abs(faithfulness(m, clean, corrupt, metric_for(m), []).recovered) > 1e-3


# ---- direct logit attribution -----------------------------------------------------------------------------------
DLA_KINDS = {**WITH_MLP, "attn_only": {"attn_only": True}, "gqa": {"n_heads": 4, "n_key_value_heads": 2},
             "final_rms": {"final_rms": True}, "no_norm": {"normalization_type": None}}


@pytest.mark.parametrize("kind", list(DLA_KINDS))
def test_direct_logit_attribution_adds_up_to_the_logit(kind):
    """Components (embeddings, each attention and MLP output) and heads add up to the answer's logit less b_U and
    the final LayerNorm's bias (the constants no component writes), with the final norm's weight unfolded."""
    m = model(**DLA_KINDS[kind])
    tokens, _ = pair()
    classifier = m.cfg.head == "classifier"
    pos = 0 if classifier else -1  # a classifier pools the first (class) token
    logits = m(tokens)[0] if classifier else m(tokens)[0, -1]
    ln_bias = getattr(m.ln_final, "b", torch.zeros(24, dtype=torch.float64))
    _, cache = m.run_with_cache(tokens)
    for answer, wrong, unit in [(1, None, "component"), (2, 0, "component"), (2, 0, "head")]:
        expected = logits[answer] - m.b_U[answer] - ln_bias @ m.W_U[:, answer]
        if wrong is not None:
            expected = expected - (logits[wrong] - m.b_U[wrong] - ln_bias @ m.W_U[:, wrong])
        dla = direct_logit_attribution(m, answer_tokens=answer, incorrect_tokens=wrong, unit=unit, pos=pos,
                                       cache=cache)
        assert float(dla.attribution.sum()) == pytest.approx(float(expected), abs=1e-9), (answer, wrong, unit)
    dla = direct_logit_attribution(m, tokens, answer_tokens=1, pos=pos)  # running the model itself
    assert dla.labels[0] == "embed" and dla.labels[-1] == ("1_attn_out" if m.cfg.attn_only else "1_mlp_out")


def test_direct_logit_attribution_on_a_vit_reads_the_class_token():
    vit = ViT(ViTConfig(d_model=16, n_heads=2, dtype=torch.float64, seed=0)).eval()
    with torch.no_grad():
        vit.ln_final.w.mul_(1.5)
        vit.ln_final.b.add_(0.3)
    images = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    logits = vit(images)[0]
    dla = direct_logit_attribution(vit, images, answer_tokens=3, pos=0)
    expected = logits[3] - vit.head.out.bias[3] - vit.ln_final.b @ vit.W_U[:, 3]
    assert float(dla.attribution.sum()) == pytest.approx(float(expected), abs=1e-9)


def test_direct_logit_attribution_cannot_decompose_a_post_norm_model():
    """Each post-norm block renormalises the stream, so the logits are no sum of component writes: the tool fails
    looking for the final norm's scale (the README says so)."""
    m = model(norm_placement="post")
    with pytest.raises((IndexError, KeyError)):
        direct_logit_attribution(m, pair()[0], answer_tokens=1)


# ---- logit lens --------------------------------------------------------------------------------------------------
LENS_KINDS = {**DLA_KINDS, "post_norm": {"norm_placement": "post"}}
LENS_KINDS.pop("classifier")


@pytest.mark.parametrize("kind", list(LENS_KINDS))
def test_logit_lens_reads_each_block_through_the_final_norm_and_unembedding(kind):
    m = model(**LENS_KINDS[kind])
    assert all(block.hook_out_is_single_residual_stream for block in m.blocks)
    tokens, _ = pair()
    lens = logit_lens(m, tokens, incl_mid=True)
    assert lens.labels == ["0_pre", "0_mid", "1_pre", "1_mid", "final_post"]
    _, cache = m.run_with_cache(tokens)
    with torch.no_grad():
        for label, values in zip(lens.labels, lens.values):
            layer, where = label.split("_")
            name = "blocks.1.hook_resid_post" if layer == "final" else f"blocks.{layer}.hook_resid_{where}"
            torch.testing.assert_close(values, m.unembed(m.ln_final(cache[name]))[:, -1])
        torch.testing.assert_close(lens.values[-1], m(tokens)[:, -1])


def test_logit_lens_refuses_models_whose_readout_is_not_per_position():
    tokens, _ = pair()
    with pytest.raises(ValueError, match="readout is not that path"):  # pooled before the head
        logit_lens(model(**WITH_MLP["classifier"]), tokens)
    with pytest.raises(NotImplementedError, match="unembed"):  # a ViT's head is no unembedding
        logit_lens(ViT(ViTConfig(d_model=16, n_heads=2)).eval(), torch.rand(1, 1, 8, 8))
    with pytest.raises(KeyError, match="blocks.0.hook_resid_pre"):  # its stacks are encoder.L and decoder.L
        logit_lens(model(arch="encoder_decoder"), tokens)
