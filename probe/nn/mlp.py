"""Position-wise feed-forward network (Vaswani et al. 2017, eq. 2) in TransformerLens' layout, plain or gated.

plain (`gated_mlp=False`):  hook_pre = x W_in + b_in;  hook_post = act(hook_pre);  out = hook_post W_out + b_out
gated (`gated_mlp=True`, GLU variants, Shazeer 2020; SwiGLU with act_fn="silu", as in Llama):
    hook_pre = x W_gate + b_gate;  hook_pre_linear = x W_in + b_in;  hook_post = act(hook_pre) * hook_pre_linear
TransformerLens' names and layout (W_in, W_gate [d_model d_mlp], W_out [d_mlp d_model]; its bridge's GatedMLP
puts b_gate and b_in where Hugging Face's Llama puts the gate_proj and up_proj biases, so the export is exact).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from probe.hooked import HookPoint

ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "linear": lambda x: x,
}


class MLP(nn.Module):
    def __init__(self, cfg, generator: torch.Generator | None = None) -> None:
        super().__init__()
        d, m, std = cfg.d_model, cfg.d_mlp, cfg.init_range
        self.gated = cfg.gated_mlp
        self.W_in = nn.Parameter(torch.randn(d, m, generator=generator) * std)
        self.b_in = nn.Parameter(torch.zeros(m))
        self.W_out = nn.Parameter(torch.randn(m, d, generator=generator) * std)
        self.b_out = nn.Parameter(torch.zeros(d))
        if self.gated:
            self.W_gate = nn.Parameter(torch.randn(d, m, generator=generator) * std)
            self.b_gate = nn.Parameter(torch.zeros(m))
            self.hook_pre_linear = HookPoint()  # [batch pos d_mlp]
        self.act = ACTIVATIONS[cfg.act_fn]
        self.hook_pre = HookPoint()  # [batch pos d_mlp]
        self.hook_post = HookPoint()  # [batch pos d_mlp]

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        if self.gated:
            pre = self.hook_pre(F.linear(x, self.W_gate.T, self.b_gate))
            post = self.hook_post(self.act(pre) * self.hook_pre_linear(F.linear(x, self.W_in.T, self.b_in)))
        else:
            post = self.hook_post(self.act(self.hook_pre(F.linear(x, self.W_in.T, self.b_in))))
        return F.linear(post, self.W_out.T, self.b_out)
