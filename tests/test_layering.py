"""probe's layers depend one way (ARCHITECTURE.md, "Layering"), checked on the source with `ast`: every import
counts, also those inside functions and under TYPE_CHECKING.

  probe/ops    imports nothing of probe outside probe/ops (pure tensor math)
  probe/data   imports neither probe/train nor probe/models
  probe/nn     imports neither probe/models nor probe/train
  probe/       never imports analyses/ or apps/
  no two modules of probe import each other, directly or round a longer cycle
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "probe"

# Known exceptions, to be emptied as they are fixed (other work in progress moves them):
KNOWN: set[tuple[str, str]] = set()  # (importer, target) exceptions to RULES; none left
KNOWN_CYCLES: list[set[str]] = []

RULES = [  # (importer prefix, forbidden prefix)
    ("probe.ops", "probe"),
    ("probe.data", "probe.train"),
    ("probe.data", "probe.models"),
    ("probe.nn", "probe.models"),
    ("probe.nn", "probe.train"),
    ("probe", "analyses"),
    ("probe", "apps"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PROBE.rglob("*.py")}


def imports(path: Path) -> set[str]:
    """The modules `path` imports (absolute names; `from a import b` is a.b when a.b is a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: up node.level - 1 packages from this one
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in MODULES else base)
    return out


GRAPH = {name: imports(path) for name, path in MODULES.items()}


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_import_graph_was_read():
    assert "probe.nn.attention" in GRAPH and "probe.hooked" in GRAPH["probe.nn.attention"]
    assert "probe.data.dataset" in GRAPH["probe.train.batches"]


@pytest.mark.parametrize("importer, forbidden", RULES)
def test_lower_layers_never_import_upper_ones(importer, forbidden):
    bad = sorted((m, i) for m, targets in GRAPH.items() if within(m, importer) for i in targets
                 if within(i, forbidden) and not within(i, importer) and (m, i) not in KNOWN)
    assert not bad, f"{importer} must not import {forbidden}: {bad}"


def test_no_import_cycles_inside_probe():
    edges = {m: {i for i in targets if i in GRAPH and i != m and i != "probe"} for m, targets in GRAPH.items()}

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {m: reach(m) for m in edges}
    cycles = {frozenset({m} | {n for n in reachable[m] if m in reachable[n]}) for m in edges if m in reachable[m]}
    assert cycles == {frozenset(c) for c in KNOWN_CYCLES}


def test_known_exceptions_still_exist():
    """An exception that no longer occurs must leave the list (so the list only shrinks)."""
    for importer, target in KNOWN:
        assert importer not in MODULES or target in GRAPH[importer] or target not in MODULES, (importer, target)


def test_moved_names_keep_their_old_import_paths():
    from probe.config import ScanSnapConfig
    from probe.data.dataset import DictDataset
    from probe.models.scan_snap_config import ScanSnapConfig as OldScanSnapConfig
    from probe.train import DictDataset as TrainDictDataset
    from probe.train.batches import DictDataset as OldDictDataset

    assert OldDictDataset is DictDataset and TrainDictDataset is DictDataset
    assert OldScanSnapConfig is ScanSnapConfig
