"""The README's SAE example runs as written (its checkpoint written to a temporary folder, not runs/) and its
measures are what `evaluate` reports."""

from __future__ import annotations

import math
import re
from pathlib import Path

from tests.apps.conftest import one_thread

ROOT = Path(__file__).resolve().parents[2]


def test_readme_sae_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    section = text.split("## Sparse autoencoders", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    code = blocks[0].replace('"runs/sae/', f'"{tmp_path}/')
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    with one_thread():
        exec(compile(code, "README.md (SAE example)", "exec"), scope)
    m = scope["measures"]
    assert m["l0"] <= 8 and 0 <= m["dead_fraction"] <= 1 and math.isfinite(m["ce_loss_recovered"])
    assert set(scope["top"].columns) == {"latent", "rank", "activation", "example", "position"}
    from probe.sae import load_sae

    sae, model, site, inputs = load_sae(tmp_path / "vit_digits_resid1")
    assert site.hook == "blocks.1.hook_resid_post" and len(inputs) == 128
