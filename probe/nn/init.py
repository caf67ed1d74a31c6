"""Building torch's own layers (nn.Linear, nn.Conv2d) with their initial weights drawn from a local generator.

PyTorch's layers initialise themselves from the global RNG in their constructor. `layer(cls, ..., generator=g)`
builds the layer without initialising it (`torch.nn.utils.skip_init`, so the global RNG is not touched), then draws
PyTorch's default init from `g`: weight kaiming_uniform_(a=sqrt(5)), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) --
the same distribution, and with `g` seeded as the global RNG was, the same numbers.
Without a generator it is just `cls(*args, **kwargs)`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def layer(cls: type[nn.Module], *args: Any, generator: torch.Generator | None = None, **kwargs: Any) -> nn.Module:
    if generator is None:
        return cls(*args, **kwargs)
    module = torch.nn.utils.skip_init(cls, *args, **kwargs)
    nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
    if module.bias is not None:
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(module.bias, -bound, bound, generator=generator)
    return module
