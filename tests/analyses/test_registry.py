"""The study registry: every study module defines a STUDY named after its path; names resolve; the CLI lists them."""

import subprocess
import sys

import pytest

from analyses import registry
from probe.study import Study


@pytest.mark.parametrize("name", registry.names())
def test_every_study_module_defines_its_study(name):
    study = registry.load(name)
    assert isinstance(study, Study) and study.name == name
    assert study.claims, f"{name} states no claim"


def test_resolve_names_groups_and_leaves(monkeypatch):
    monkeypatch.setattr(registry, "names", lambda: ["claims.post_ln", "papers.scan_snap.figure4",
                                                    "papers.scan_snap.figure6", "vision.figure4"])
    assert registry.resolve("post_ln") == ["claims.post_ln"]
    assert registry.resolve("claims") == ["claims.post_ln"]
    assert registry.resolve("scan_snap") == ["papers.scan_snap.figure4", "papers.scan_snap.figure6"]
    with pytest.raises(KeyError, match="ambiguous"):
        registry.resolve("figure4")
    with pytest.raises(KeyError, match="no study or group named 'nope'"):
        registry.resolve("nope")


def test_cli_lists_every_study():
    out = subprocess.run([sys.executable, "-m", "analyses", "list"], capture_output=True, text=True, check=True).stdout
    for name in registry.names():
        assert f"{name}: " in out
