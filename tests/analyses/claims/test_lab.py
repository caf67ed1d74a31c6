"""The claims lab as a whole: members come from the registry (vision extras only when they exist), groups follow
claims.md, and `python -m analyses run claims` / `all` write the lab's index with every claim."""

import json
import subprocess
import sys

from analyses import registry
from analyses.__main__ import main
from analyses.claims import _index

CHEAP = ["claims.tokenizers", "claims.params_vs_time"]


def test_members_are_found_through_the_registry(monkeypatch):
    monkeypatch.setattr(registry, "names", lambda: ["claims.b", "claims.a", "papers.x", "vision.vit_positions"])
    assert _index.members() == ["claims.b", "claims.a", "vision.vit_positions"]  # no cnn_vs_vit: it does not exist
    monkeypatch.setattr(registry, "names", lambda: ["claims.a"])
    assert _index.members() == ["claims.a"]


def test_every_claims_md_row_has_a_group():
    assert len(_index.GROUPS) == 23 + 2
    assert _index.group_of("claims.mlm") == "Transfer, tokens, objectives, cost"
    assert _index.group_of("claims.post_ln") == "Normalisation, residuals, depth"
    assert _index.group_of("vision.cnn_vs_vit") == "Vision (000 §2-3)"
    assert _index.group_of("claims.something_new") == "Other"


def test_run_claims_writes_the_lab_index_in_claims_md_order(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "names", lambda: CHEAP)
    main(["run", "claims", "--quick", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["study"] for r in data["claims"]] == ["claims.tokenizers"] * 4 + ["claims.params_vs_time"]
    assert {r["group"] for r in data["claims"]} == {"Transfer, tokens, objectives, cost"}
    assert data["claims"][0]["figures"] == ["tokenizers/tokenizers.png"]
    report = (tmp_path / "report.md").read_text()
    assert "| group | claim |" in report and "[bpe_no_unknowns](tokenizers/report.md)" in report
    assert "(tokenizers/tokenizers.png)" in report and "2 of the studies are quick runs" in report


def test_all_writes_the_claims_index_through_the_lab(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "names", lambda: CHEAP)
    main(["all", "--quick", "--out", str(tmp_path)])
    assert "| group | claim |" in (tmp_path / "claims" / "report.md").read_text()
    assert (tmp_path / "report.md").read_text().count("[bpe_no_unknowns](claims/tokenizers/report.md)") == 1


def test_the_lab_has_a_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "analyses.claims", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--quick" in out.stdout and "--seeds" in out.stdout
