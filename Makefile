# probe: `make demo` runs the main job, `make test` the tests, `make app` the dashboards.
# Each creates .venv on first use. torch is pinned to a CPU build available offline here (no multi-GB CUDA download).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH  ?= torch==2.13.0

.PHONY: demo test lint app bench claims clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m analyses.demo

test: $(STAMP) lint
	MPLBACKEND=Agg $(PY) -m pytest -n 2 tests

lint: $(STAMP)
	$(VENV)/bin/ruff check probe analyses apps benchmarks tests

app: $(STAMP)
	$(VENV)/bin/streamlit run apps/Home.py --server.headless true --browser.gatherUsageStats false

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

# the claims lab: every claims study (and the vision studies of seed claims) in full -> runs/claims/report.md
claims: $(STAMP)
	OMP_NUM_THREADS=1 MPLBACKEND=Agg $(PY) -m analyses.claims

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
