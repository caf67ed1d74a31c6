"""The README's probe.interp example runs as written on the shipped induction checkpoint."""

import re
from pathlib import Path

import torch


def test_readme_interp_example_runs():
    text = (Path(__file__).parents[2] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "probe.interp" in b)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["exact"].shape == scope["estimate"].shape == (2, 4)
    with torch.no_grad():
        logit = float(scope["model"](**scope["clean"])[0, -1, 9])
    assert abs(float(scope["dla"].values.sum()) - logit) < 1e-3
    assert scope["per_position"].shape == (1, 12)
    assert 0.0 <= scope["copying"] <= 1.0
    assert torch.isfinite(scope["exact"]).all()
