"""The model explorer's analysis views against TransformerLens and exact computations done here: activation
patching (TransformerLens' sweeps), direct logit attribution (sums to the logit), the logit lens (ends at the output),
ablation (an independent weight edit), OV / QK circuits (explicit products); and every view on every model kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformer_lens import patching

import probe
from apps import lib
from probe.interp.patching import attribution_patching, logit_diff_metric, loss_metric
from tests.apps.test_pages import array, chart, component, explorer, z

VIEWS = {
    "transformer": ["Attention", "Predictions", "Logit lens", "Patching", "Ablation", "Circuits"],
    "vit": ["Attention", "Predictions", "Logit lens", "Patching", "Ablation"],
    "cnn": ["Feature maps"],
}
CASES = [("dec", "transformer"), ("dec_tok", "transformer"), ("encdec", "transformer"),
         ("encdec_tok", "transformer"), ("enc_cls", "transformer"), ("linear", "transformer"), ("vit", "vit"),
         ("cnn", "cnn"), ("runs/train_run", "transformer")]
HEADS = {"dec": ["L0H1", "L1H0"], "encdec": ["enc.L0H0", "cross.L1H1"], "encdec_tok": ["dec.L1H0", "cross.L0H1"],
         "vit": ["L0H1"]}


@pytest.mark.parametrize("checkpoint,kind", CASES)
def test_every_view_on_every_model_kind(roots, checkpoint, kind):
    at = explorer(checkpoint, None, ablate_heads=HEADS.get(checkpoint, ["L0H0"]))
    for tab in VIEWS[kind]:
        at.session_state["view"] = tab
        at.run()
        assert not at.exception, (tab, at.exception)
        assert not at.error, (tab, [e.value for e in at.error])
        assert at.get("plotly_chart"), f"{checkpoint}: the {tab} view drew nothing"


def setup_decoder(roots, tab: str, tokens: str = "3 4 5 6 7 3 4 5 6"):
    at = explorer("dec", tab)
    at.text_input(key="tokens").set_value(tokens).run()
    assert not at.exception, at.exception
    model = probe.load(roots["checkpoints"] / "dec")
    ids = [int(t) for t in tokens.split()]
    return at, model, torch.tensor([ids])


def test_patching_view_equals_transformer_lens(roots):
    at, model, clean = setup_decoder(roots, "Patching")
    corrupted = torch.tensor([lib.default_corruption(model, clean[0].tolist())])
    with torch.no_grad():
        clean_logits, corr_logits = model(clean)[0, -1], model(corrupted)[0, -1]
    answer = int(clean_logits.argmax())
    wrong = next(int(i) for i in corr_logits.argsort(descending=True) if int(i) != answer)
    metric = logit_diff_metric(answer, wrong, -1)
    with torch.no_grad():
        corr_value = float(metric(model(corrupted)))
    assert [m.value for m in at.metric][:2] == [f"{float(metric(model(clean))):.4f}", f"{corr_value:.4f}"]
    _, cache = model.run_with_cache(clean)
    heads = patching.get_act_patch_attn_head_out_all_pos(model, corrupted, cache, metric) - corr_value
    resid = patching.get_act_patch_resid_pre(model, corrupted, cache, metric) - corr_value
    np.testing.assert_allclose(z(chart(at, "patch_heads")), heads.numpy(), atol=1e-5)
    np.testing.assert_allclose(z(chart(at, "patch_resid")), resid.numpy(), atol=1e-5)
    attr = attribution_patching(model, {"tokens": clean}, {"tokens": corrupted}, metric)
    np.testing.assert_allclose(z(chart(at, "attr_heads")), attr.numpy(), atol=1e-5)
    # the loss metric, normalised by clean - corrupted
    at.radio(key="metric").set_value("loss").run()
    at.toggle(key="normalise").set_value(True).run()
    assert not at.exception, at.exception
    labels = torch.cat([clean[:, 1:], torch.tensor([[-100]])], 1)
    loss = loss_metric(labels)
    lc, lk = float(loss(model(clean))), float(loss(model(corrupted)))
    expected = (patching.get_act_patch_resid_pre(model, corrupted, cache, loss) - lk) / (lc - lk)
    np.testing.assert_allclose(z(chart(at, "patch_resid")), expected.numpy(), atol=1e-4)


def test_patching_view_encoder_decoder_and_vit(roots):
    at = explorer("encdec", "Patching")
    at.text_input(key="src").set_value("3 4 5 6 7 8").run()
    at.text_input(key="tgt").set_value("1 7 8").run()
    at.text_input(key="corrupted").set_value("9 10 11 6 7 8").run()
    at.selectbox(key="patch_stack").set_value("decoder cross-attention").run()
    assert not at.exception, at.exception
    assert z(chart(at, "patch_heads")).shape == (2, 2)
    assert z(chart(at, "patch_resid")).shape == (2, 3)  # the decoder's stream
    at.selectbox(key="patch_stream").set_value("encoder").run()
    assert z(chart(at, "patch_resid")).shape == (2, 6)
    at.text_input(key="corrupted").set_value("9 10").run()
    assert "same length" in at.error[0].value
    at = explorer("vit", "Patching")
    assert z(chart(at, "patch_resid")).shape == (1, 17)  # the class token and 16 patches
    assert z(chart(at, "patch_heads")).shape == (1, 2)


def test_predictions_view_direct_logit_attribution(roots):
    at, model, tokens = setup_decoder(roots, "Predictions")
    with torch.no_grad():
        logits = model(tokens)[0, -1]
    top = at.dataframe[0].value
    assert top["id"].tolist()[0] == int(logits.argmax())
    assert np.all(np.diff(top["prob"].to_numpy()) <= 0)
    bars = chart(at, "dla")["data"][0]
    assert list(bars["x"])[-1] == "bias" and "L1H1" in list(bars["x"])
    np.testing.assert_allclose(array(bars["y"]).sum(), float(logits.max()), rtol=1e-4)
    at.selectbox(key="answer").set_value(4).run()
    at.selectbox(key="wrong").set_value(5).run()
    bars = chart(at, "dla")["data"][0]
    np.testing.assert_allclose(array(bars["y"]).sum(), float(logits[4] - logits[5]), rtol=1e-4, atol=1e-5)
    heads = z(chart(at, "dla_heads_blocks"))
    values = dict(zip(bars["x"], array(bars["y"])))
    np.testing.assert_allclose(heads[1, 0], values["L1H0"], atol=1e-6)


def test_logit_lens_view_ends_at_the_model_output(roots):
    at, model, tokens = setup_decoder(roots, "Logit lens")
    with torch.no_grad():
        probs = model(tokens)[0].softmax(-1)
    lens = z(chart(at, "lens"))
    assert lens.shape == (model.cfg.n_layers + 1, tokens.shape[1])
    np.testing.assert_allclose(lens[-1], probs.max(-1).values.numpy(), atol=1e-5)
    at.radio(key="lens_target").set_value("the next input token").run()
    lens = z(chart(at, "lens"))
    expected = probs[:-1].gather(-1, tokens[0, 1:, None])[:, 0]
    np.testing.assert_allclose(lens[-1], expected.numpy(), atol=1e-5)


def test_vit_logit_lens_is_patch_wise(roots):
    from probe.data.images import digits

    at = explorer("vit", "Logit lens")
    model = probe.load(roots["checkpoints"] / "vit")
    image, label = digits("test")[0]
    _, cache = model.run_with_cache(image[None])
    fig = chart(at, "lens_patches")
    assert len(fig["data"]) == 2  # the embedding and after layer 0
    last = model.head_logits(cache["resid_post", 0])[0, 1:].softmax(-1)[:, label]
    np.testing.assert_allclose(z(fig, 1).ravel(), last.detach().numpy(), atol=1e-5)


def test_ablation_view_equals_a_weight_edit(roots):
    at, model, tokens = setup_decoder(roots, "Ablation")
    at.multiselect(key="ablate_heads").set_value(["L0H1", "L1H0"]).run()
    assert not at.exception, at.exception
    with torch.no_grad():
        logits = model(tokens)
        model.blocks[0].attn.W_O[1] = 0.0
        model.blocks[1].attn.W_O[0] = 0.0
        ablated = model(tokens)
    loss = torch.nn.functional.cross_entropy(ablated[0, :-1], tokens[0, 1:], reduction="none")
    clean_loss = torch.nn.functional.cross_entropy(logits[0, :-1], tokens[0, 1:], reduction="none")
    fig = chart(at, "ablation_loss")
    np.testing.assert_allclose(array(fig["data"][0]["y"]), clean_loss.numpy(), atol=1e-5)
    np.testing.assert_allclose(array(fig["data"][1]["y"]), loss.numpy(), atol=1e-5)
    assert len(fig["data"][0]["x"]) == tokens.shape[1] - 1  # every position, not the top-k at one
    bars = array(chart(at, "ablation")["data"][0]["y"])
    np.testing.assert_allclose(bars, (ablated - logits)[0, -1].numpy(), atol=1e-5)
    for method in ("mean", "resample"):
        at.radio(key="method").set_value(method).run()
        assert not at.exception, at.exception
        other = array(chart(at, "ablation_loss")["data"][1]["y"])
        assert np.abs(other - loss.numpy()).max() > 1e-4  # not the zero ablation


def test_circuits_view_is_the_explicit_product(roots):
    at = explorer("dec", "Circuits", layer="1", head="1")
    model = probe.load(roots["checkpoints"] / "dec")
    attn = model.blocks[1].attn
    with torch.no_grad():
        ov = model.W_E @ attn.W_V[1] @ attn.W_O[1] @ model.W_U
        qk = model.W_E @ attn.W_Q[1] @ attn.W_K[1].T @ model.W_E.T
    np.testing.assert_allclose(z(chart(at, "ov")), ov.numpy(), atol=1e-5)
    np.testing.assert_allclose(z(chart(at, "qk")), qk.numpy(), atol=1e-5)
    acc = (ov.argmax(-1) == torch.arange(ov.shape[0])).float().mean().item()
    assert at.metric[0].value == f"{acc:.3f}"
    assert z(chart(at, "ov_accuracy"))[1, 1] == pytest.approx(acc)


def test_circuits_view_linear_attention_and_classifier(roots):
    at = explorer("linear", "Circuits")
    assert "not bilinear" in at.info[0].value  # QK refused, OV shown
    chart(at, "ov")
    at = explorer("enc_cls", "Circuits")
    assert "square circuit" in " ".join(c.value for c in at.caption)  # token -> class: no diagonal
    assert z(chart(at, "ov")).shape == (12, 3)


def test_attention_view_linear_attention_pattern(roots):
    at = explorer("linear")
    data = component(at, "hover_blocks")
    model = probe.load(roots["checkpoints"] / "linear")
    ids = [int(t) for t in at.text_input(key="tokens").value.split()]
    _, cache = model.run_with_cache(torch.tensor([ids]))
    np.testing.assert_allclose(z(chart(at, "pattern")), cache["pattern", 0][0, 0].numpy(), atol=1e-5)
    assert np.array(data["pattern"]).max() <= 1.0 and np.array(data["pattern"]).min() >= 0.0
