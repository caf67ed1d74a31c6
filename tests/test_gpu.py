"""CUDA checks (skipped without a GPU; CI has none): the fused and explicit attention paths agree under bf16
autocast, linear attention keeps fp32 state, and the Trainer trains on the GPU with bf16 autocast."""

import pytest
import torch

from probe import TrainConfig, Trainer, Transformer, TransformerConfig
from probe.data.synthetic import induction, task_model_fields

pytestmark = pytest.mark.gpu


def test_fused_and_explicit_attention_agree_under_bf16_autocast():
    model = Transformer(TransformerConfig(d_model=128, n_heads=4, n_layers=2, d_vocab=97, n_ctx=256)).cuda()
    tokens = torch.randint(0, 97, (4, 255), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        fused = model(tokens)
        explicit, cache = model.run_with_cache(tokens)
    assert fused.dtype == torch.bfloat16 and torch.isfinite(fused).all()
    torch.testing.assert_close(fused.float(), explicit.float(), atol=5e-2, rtol=5e-2)
    torch.testing.assert_close(
        cache["pattern", 1].float().sum(-1), torch.ones(4, 4, 255, device="cuda"), atol=1e-2, rtol=0
    )


def test_linear_attention_is_finite_under_bf16_autocast_on_gpu():
    cfg = TransformerConfig(d_model=64, n_heads=4, d_vocab=50, n_ctx=512, attention="linear", update_rule="delta")
    model = Transformer(cfg).cuda()
    tokens = torch.randint(0, 50, (2, 511), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(tokens, return_type="loss")
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_trainer_uses_cuda_and_bf16_and_the_loss_falls(tmp_path):
    fields = task_model_fields("induction", n_symbols=16, max_block=8, length=24)
    model = Transformer(TransformerConfig(d_model=64, n_heads=4, n_layers=2, attn_only=True, **fields))
    data = induction(512, n_symbols=16, max_block=8, length=24)
    trainer = Trainer(model, data, None, TrainConfig(steps=60, batch_size=32, lr=3e-3, out_dir=str(tmp_path), seed=0))
    assert trainer.device.type == "cuda"
    history = trainer.fit()
    losses = [r["loss"] for r in history if "loss" in r and "event" not in r]
    assert losses[-1] < losses[0]
