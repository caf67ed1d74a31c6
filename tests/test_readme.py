"""The README's notebook example runs as written and does what it says."""

import re
from pathlib import Path

import torch


def test_readme_notebook_example_runs():
    text = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["pattern"].shape == (1, 4, 20, 20)
    assert not torch.allclose(scope["ablated"], scope["logits"])
