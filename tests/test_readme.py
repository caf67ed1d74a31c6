"""The README's notebook example runs as written and does what it says."""

import linecache
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


def test_readme_examples_of_the_fields_tools_run():
    """The README's examples for TransformerLens' analysis tools and nnsight run as written, in order, and do what
    they say."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    section = text.split("## The field's tools on probe's models", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 3
    scope: dict = {}
    for i, code in enumerate(blocks):
        name = f"README.md (tools example {i + 1})"
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)  # nnsight reads a trace's source
        exec(compile(code, name, "exec"), scope)
    model, clean = scope["model"], scope["clean"]
    assert 0 < scope["circuit"].circuit_size <= 50 and len(scope["nodes"].top_nodes(3)) == 3
    assert scope["dla"].labels[-1] == "remainder" and scope["lens"].labels[-1] == "final_post"
    with torch.no_grad():
        logits = model(clean)
        _, cache = model.run_with_cache(clean)
    torch.testing.assert_close(scope["pattern"], cache["blocks.1.attn.hook_pattern"])
    assert scope["ablated"].shape == logits.shape and not torch.allclose(scope["ablated"], logits)
