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


def test_the_architecture_is_described_in_the_repository():
    """README and docstrings point to ARCHITECTURE.md, which ships with the code, not to a file users lack."""
    root = Path(__file__).parents[1]
    assert "## Layering" in (root / "ARCHITECTURE.md").read_text()
    assert "ARCHITECTURE.md" in (root / "README.md").read_text()
    files = [root / "README.md", *sorted((root / "probe").rglob("*.py")), *sorted((root / "analyses").rglob("*.py")),
             *sorted((root / "apps").rglob("*.py"))]
    stale = [str(f.relative_to(root)) for f in files if "DESIGN.md" in f.read_text()]
    assert not stale, f"these point to DESIGN.md, which is not in the repository: {stale}"
