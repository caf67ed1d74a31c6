"""The notebooks in notebooks/ run top to bottom in a kernel of this Python (nbclient + ipykernel), and are
committed without outputs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    names = {p.stem for p in NOTEBOOKS}
    assert {"01_quickstart", "02_induction_circuit", "03_scan_snap", "04_fast_weights", "05_vision",
            "06_dynamics_and_claims"} <= names, names


def stored_outputs(path: Path) -> list[str]:
    """What a notebook file carries beyond its sources: outputs and execution counts, per cell."""
    nb = json.loads(path.read_text())
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell.get("outputs"):
            found.append(f"cell {i}: {len(cell['outputs'])} outputs")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i}: execution_count={cell['execution_count']}")
    return found


def test_stored_outputs_are_found(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    nb = new_notebook(cells=[new_code_cell("1 + 1"), new_code_cell("print(2)")])
    path = tmp_path / "a.ipynb"
    nbformat.write(nb, path)
    assert stored_outputs(path) == []
    nb.cells[1].outputs = [new_output("stream", name="stdout", text="2\n")]
    nb.cells[1].execution_count = 3
    nbformat.write(nb, path)
    assert stored_outputs(path) == ["cell 1: 1 outputs", "cell 1: execution_count=3"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    assert stored_outputs(path) == [], f"{path.name} carries outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="make test installs the dev extras (nbformat, nbclient)")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the kernel's inline backend, as in Jupyter
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("OMP_NUM_THREADS", "1")
    # this venv's kernel spec first (a user's own "python3" spec may point at another Python); its "python" resolves
    # to this interpreter (jupyter_client substitutes sys.executable)
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join([str(Path(sys.prefix) / "share" / "jupyter"),
                                                        *filter(None, [os.environ.get("JUPYTER_PATH")])]))
    check = nbformat.v4.new_code_cell("import sys, probe; print(sys.executable); print(probe.__file__)")
    nb.cells.append(check)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute(env=env, cwd=str(ROOT))
    executable, probe_file = check.outputs[0]["text"].split()
    assert Path(executable) == Path(sys.executable)  # the kernel ran this venv's Python
    assert Path(probe_file) == ROOT / "probe" / "__init__.py"  # and imported this tree's probe
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images > 0, f"{path.name} drew no inline figure"
