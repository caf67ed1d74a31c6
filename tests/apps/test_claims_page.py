"""AppTest runs of the Claims page on a small runs/claims (two quick studies and the lab's index): the verdict table,
its filters, a claim's figure and report, and the message with the command when the lab has not run."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.apps.claims_fixture import build
from tests.apps.conftest import HOME, one_thread


@pytest.fixture(scope="session")
def claims_runs(tmp_path_factory):
    with one_thread():
        return build(tmp_path_factory.mktemp("claims_runs"))


def claims_page(monkeypatch, runs) -> AppTest:
    monkeypatch.setenv("PROBE_RUNS", str(runs))
    at = AppTest.from_file(HOME, default_timeout=60).run()
    assert not at.exception, at.exception
    at.switch_page("views/claims.py").run()
    assert not at.exception, at.exception
    return at


def table(at: AppTest):
    (df,) = [d.value for d in at.dataframe if "verdict" in d.value]
    return df


def test_table_lists_every_claim_of_the_index_with_its_verdict(monkeypatch, claims_runs):
    at = claims_page(monkeypatch, claims_runs)
    df = table(at)
    assert len(df) == 5 and set(df["study"]) == {"claims.tokenizers", "claims.params_vs_time"}
    assert set(df["group"]) == {"Transfer, tokens, objectives, cost"}
    assert df.set_index("claim").loc["bpe_no_unknowns", "verdict"] == "supported"  # three seeds, all zero
    assert df.set_index("claim").loc["equal_params_different_time", "verdict"] == "inconclusive"  # one seed
    assert [m.value for m in at.metric][:2] == ["5", str((df["verdict"] == "supported").sum())]
    assert "quick runs" in at.warning[0].value


def test_filters_by_verdict_and_group(monkeypatch, claims_runs):
    at = claims_page(monkeypatch, claims_runs)
    at.multiselect(key="verdict").set_value(["inconclusive"]).run()
    assert not at.exception, at.exception
    df = table(at)
    assert len(df) >= 1 and set(df["verdict"]) == {"inconclusive"}
    assert all("(inconclusive)" in o for o in at.selectbox(key="claim").options)
    at.multiselect(key="group").set_value([]).run()
    assert "No claim matches the filters." in [i.value for i in at.info]


def test_a_claim_shows_its_figure_and_report(monkeypatch, claims_runs):
    at = claims_page(monkeypatch, claims_runs)
    label = next(o for o in at.selectbox(key="claim").options if o.startswith("params_vs_time / "))
    at.selectbox(key="claim").set_value(label).run()
    assert not at.exception, at.exception
    assert len(at.get("image")) == 1
    text = "\n".join(m.value for m in at.markdown)
    assert "# Parameter count does not set inference time" in text and "![" not in text
    assert "**inconclusive**" in text


def test_without_runs_the_page_says_which_command_makes_them(monkeypatch, roots):
    at = claims_page(monkeypatch, roots["empty"])
    assert "make claims" in at.info[0].value and "python -m analyses.claims" in at.info[0].value
    assert str(roots["empty"]) in at.info[0].value
