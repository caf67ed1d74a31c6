"""`probe.study`: the one way to state, run and judge a claim (ARCHITECTURE.md, "Studies").

A study has four parts, kept apart:

1. `Claim`: the statement in plain words, its source (a seed file and section, or a paper), the measured quantity
   and the prediction, a comparison of that quantity against a bound (`Claim(..., quantity="...", op=">", bound=0.5)`).
2. An experiment: `grid(fn, variants, seeds)` calls `fn(**variant, seed=seed)` for every (variant, seed) and
   collects what it returns into a tidy `pandas.DataFrame`, one row per run, with the run's wall time.
3. A verdict: a pure function of that table returning `Verdict`s, each made by `judge(claim, values)` from
   per-seed values the table helpers pick out (`select`, `column`, `paired`, `per_seed`). The estimate
   is the mean over seeds with a 95% interval (Student's t by default; a percentile bootstrap, or the range of a
   measurement without sampling noise). **supported** when the whole interval lies on the predicted side of the
   bound, **refuted** when it lies wholly on the other side, **inconclusive** when it straddles the bound (a single
   seed under the t method always does).
4. A report: `write_report` generates `report.md`, `metrics.json` and `table.csv` from claims, verdicts, table and
   figures. Every number in them is computed; the only hand-written text is the study's description.

`Study` bundles the parts; `run(study, quick=..., seeds=...)` runs one from a notebook and returns a `Result`
(`result.table`, `result.verdicts`, shown as markdown in Jupyter); `python -m analyses run NAME` does the same
from the shell; `read_result(dir)` reads a written report back.
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
import os
import resource
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORMAT = "probe.study/1"
OUTCOMES = ("supported", "refuted", "inconclusive")
METHODS = ("t", "bootstrap", "exact")
Values = Sequence[float] | np.ndarray  # per-seed values of a claim's quantity
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


# ---- 1. claims --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """A prediction about one measured quantity: `quantity op bound`.

    `id` is unique within its study; `statement` says the claim in plain words; `source` names where it comes from
    ("001 §11; Vaswani et al. 2017 footnote 4"); `quantity` says exactly what number is measured, per seed.
    """

    id: str
    statement: str
    source: str
    quantity: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"Claim {self.id!r}: op={self.op!r} is not one of {tuple(_OPS)}")
        if not isinstance(self.bound, (int, float)) or not math.isfinite(self.bound):
            raise ValueError(f"Claim {self.id!r}: bound={self.bound!r} must be a finite number")
        for name in ("id", "statement", "source", "quantity"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"Claim: {name} must be a non-empty string, got {getattr(self, name)!r}")

    @property
    def prediction(self) -> str:
        return f"{self.quantity} {self.op} {self.bound:g}"

    def holds(self, value: float) -> bool:
        """Whether `value` satisfies the prediction."""
        return bool(_OPS[self.op](value, self.bound))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---- 3. verdicts ------------------------------------------------------------------------------------------------
def interval(values: Values, method: str = "t", level: float = 0.95, n_boot: int = 10_000,
             seed: int = 0) -> tuple[float, float, float]:
    """(estimate, low, high) of the mean of `values`.

    "t": Student's t interval (one value gives (-inf, inf)); "bootstrap": percentile bootstrap of the mean;
    "exact": a measurement without sampling noise (a deterministic computation, repeated over seeds): the interval
    is the range of the values, which must all be reported.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} must be in (0, 1)")
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("interval() needs at least one value; the verdict selected no rows")
    if not np.isfinite(x).all():
        raise ValueError(f"interval() got non-finite values {x.tolist()}: encode failed runs explicitly "
                         "(e.g. a 'diverged' column) instead of passing NaN or inf to a verdict")
    mean = float(x.mean())
    if method == "exact":
        return mean, float(x.min()), float(x.max())
    if x.size == 1:
        return mean, -math.inf, math.inf
    if method == "t":
        from scipy import stats

        half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
        return mean, mean - half, mean + half
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, (n_boot, x.size))].mean(1)
    lo, hi = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
    return mean, float(lo), float(hi)


@dataclass(frozen=True)
class Verdict:
    """The judgement of one claim: outcome, estimate, its interval, how many values and which table rows."""

    claim: Claim
    outcome: str
    estimate: float
    low: float
    high: float
    n: int
    method: str
    rows: tuple[int, ...] = ()
    level: float = 0.95
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"Verdict outcome={self.outcome!r} is not one of {OUTCOMES}")

    @property
    def supported(self) -> bool:
        return self.outcome == "supported"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["claim"] = self.claim.to_dict()
        for key in ("low", "high"):  # JSON has no infinities
            d[key] = None if not math.isfinite(d[key]) else d[key]
        d["rows"], d["values"] = list(self.rows), list(self.values)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        d = dict(d)
        d["claim"] = Claim(**d["claim"])
        d["estimate"] = math.nan if d["estimate"] is None else d["estimate"]  # not measured (JSON has no NaN)
        d["low"] = -math.inf if d["low"] is None else d["low"]
        d["high"] = math.inf if d["high"] is None else d["high"]
        d["rows"], d["values"] = tuple(d.get("rows", ())), tuple(d.get("values", ()))
        return cls(**d)

    def __str__(self) -> str:
        return (f"{self.claim.id}: {self.outcome} ({self.claim.quantity} = {_fmt(self.estimate)}, "
                f"{self.level:.0%} interval [{_fmt(self.low)}, {_fmt(self.high)}], n={self.n}; "
                f"predicted {self.claim.op} {self.claim.bound:g})")


def judge(claim: Claim, values: Values, rows: Sequence[int] = (), method: str = "t",
          level: float = 0.95) -> Verdict:
    """Judge `claim` on per-seed `values` of its quantity: supported when the whole interval satisfies the
    prediction, refuted when none of it does, inconclusive otherwise."""
    estimate, low, high = interval(values, method, level)
    lo_ok, hi_ok = claim.holds(low), claim.holds(high)
    outcome = "supported" if lo_ok and hi_ok else "refuted" if not (lo_ok or hi_ok) else "inconclusive"
    vals = tuple(float(v) for v in np.asarray(values, dtype=float).ravel())
    return Verdict(claim, outcome, estimate, low, high, len(vals), method, tuple(int(r) for r in rows), level, vals)


def not_measured(claim: Claim, rows: Sequence[int] = ()) -> Verdict:
    """The verdict on a claim that the table holds no measurement of (e.g. every run it needs diverged, or no variant
    reaches the regime it is about): inconclusive, with n = 0 and no estimate."""
    return Verdict(claim, "inconclusive", math.nan, -math.inf, math.inf, 0, "t", tuple(int(r) for r in rows))


# ---- table helpers for verdict functions ----------------------------------------------------------------------------
def select(table: pd.DataFrame, **where: Any) -> pd.DataFrame:
    """Rows whose columns equal the given values (`select(t, variant="post", layers=12)`); a missing column or
    an empty selection raises, naming what was asked for and what the table holds."""
    out = table
    for key, value in where.items():
        if key not in table.columns:
            raise KeyError(f"table has no column {key!r}; columns: {list(table.columns)}")
        out = out[out[key] == value]
    if out.empty:
        raise ValueError(f"no rows with {where}; the table holds "
                         + ", ".join(f"{k} in {sorted(table[k].unique().tolist(), key=str)}" for k in where))
    return out


def column(table: pd.DataFrame, metric: str, **where: Any) -> tuple[np.ndarray, list[int]]:
    """The values of `metric` in the rows matching `where` (ordered by seed), and those rows' index labels."""
    rows = select(table, **where)
    if metric not in rows.columns:
        raise KeyError(f"table has no column {metric!r}; columns: {list(table.columns)}")
    if "seed" in rows.columns:
        rows = rows.sort_values("seed", kind="stable")
    return rows[metric].to_numpy(dtype=float), [int(i) for i in rows.index]


def paired(table: pd.DataFrame, metric: str, a: Mapping[str, Any], b: Mapping[str, Any],
           how: str = "diff") -> tuple[np.ndarray, list[int]]:
    """Per-seed `metric(a) - metric(b)` (how="diff") or `metric(a) / metric(b)` (how="ratio"), where `a` and `b`
    select one row per seed each; the seeds must match. Returns the values and the rows used."""
    if how not in ("diff", "ratio"):
        raise ValueError(f"how={how!r} is not 'diff' or 'ratio'")
    ra, rb = select(table, **a), select(table, **b)
    for name, r in (("a", ra), ("b", rb)):
        if r["seed"].duplicated().any():
            raise ValueError(f"paired(): selection {name}={dict(a if name == 'a' else b)} has several rows per seed")
    ra, rb = ra.set_index("seed", drop=False), rb.set_index("seed", drop=False)
    seeds = sorted(set(ra.index) & set(rb.index))
    if not seeds or len(seeds) != len(ra) or len(seeds) != len(rb):
        raise ValueError(f"paired(): seeds differ between a={dict(a)} ({sorted(ra.index)}) and "
                         f"b={dict(b)} ({sorted(rb.index)})")
    va, vb = ra.loc[seeds, metric].to_numpy(float), rb.loc[seeds, metric].to_numpy(float)
    values = va - vb if how == "diff" else va / vb
    rows = [int(i) for i in select(table, **a).index] + [int(i) for i in select(table, **b).index]
    return values, rows


def per_seed(table: pd.DataFrame, metric: str, how: str | Callable[[np.ndarray], float] = "mean",
             **where: Any) -> tuple[np.ndarray, list[int]]:
    """One value per seed: `metric` over the rows matching `where`, aggregated within each seed by `how` ("mean",
    "median", "min", "max", "sum", or a function of the seed's values, e.g. the fraction below a threshold). Returns
    the values ordered by seed and every row used."""
    rows = select(table, **where)
    if metric not in rows.columns:
        raise KeyError(f"table has no column {metric!r}; columns: {list(table.columns)}")
    if isinstance(how, str):
        if how not in ("mean", "median", "min", "max", "sum"):
            raise ValueError(f"how={how!r} is not 'mean', 'median', 'min', 'max', 'sum' or a function")
        values = rows.groupby("seed")[metric].agg(how)
    else:
        values = rows.groupby("seed")[metric].apply(lambda x: float(how(x.to_numpy(dtype=float))))
    return values.sort_index().to_numpy(dtype=float), [int(i) for i in rows.index]


# ---- 2. experiments ---------------------------------------------------------------------------------------------
def _call(fn: Callable[..., Any], variant: Mapping[str, Any], seed: int, threads: int | None) -> tuple[Any, float]:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    start = time.perf_counter()
    out = fn(**variant, seed=seed)
    return out, time.perf_counter() - start


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes of `grid`)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def grid(fn: Callable[..., Mapping[str, Any] | Sequence[Mapping[str, Any]]], variants: Sequence[Mapping[str, Any]],
         seeds: Sequence[int], desc: str = "runs", progress: bool = True, workers: int = 1) -> pd.DataFrame:
    """Run `fn(**variant, seed=seed)` for every variant and seed; return the tidy table.

    Each row holds the variant's fields, `seed`, what `fn` returned (a dict of measurements; a list of dicts gives
    one row each, e.g. one per layer) and `wall_s`, the run's wall time. `workers > 1` runs the grid in that many
    processes with one torch thread each (`fn` must then be importable: a module-level function).
    """
    from tqdm.auto import tqdm

    variants = [dict(v) for v in variants]
    if not variants or not seeds:
        raise ValueError(f"grid() needs at least one variant and one seed (got {len(variants)} and {len(seeds)})")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers={workers!r} must be an integer >= 1")
    for v in variants:
        if "seed" in v:
            raise ValueError(f"variant {v} has a 'seed' field; seeds are given separately")
    jobs = [(v, int(s)) for v in variants for s in seeds]
    bar = tqdm(total=len(jobs), desc=desc, disable=not progress, dynamic_ncols=True)
    if workers == 1:
        results = []
        for v, s in jobs:
            results.append(_call(fn, v, s, None))
            bar.update()
    else:
        import multiprocessing

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_call, fn, v, s, 1) for v, s in jobs]
            for f in futures:
                f.add_done_callback(lambda _: bar.update())
            results = [f.result() for f in futures]
    bar.close()
    rows = []
    for (v, s), (out, wall) in zip(jobs, results):
        for record in ([out] if isinstance(out, Mapping) else list(out)):
            clash = set(record) & (set(v) | {"seed", "wall_s"})
            if clash:
                raise ValueError(f"{getattr(fn, '__name__', fn)} returned {sorted(clash)}, which name the run's "
                                 "variant fields, seed or wall_s; rename the measurement")
            rows.append({**v, "seed": s, **record, "wall_s": wall})
    return pd.DataFrame(rows)


# ---- the study ----------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What an experiment returns: the tidy table, computed key numbers for the report (`summary`: name -> value,
    rendered as a table), and anything else its figures need (`artifacts`: not written to metrics.json)."""

    table: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Study:
    """A study: its claims, the experiment `experiment(config) -> DataFrame | Outcome`, the pure verdict function
    `verdicts(table) -> list[Verdict]`, and `figures(outcome, out_dir) -> list[Path]` (optional).

    `config` is the full run's configuration and `quick` the same pipeline on a tiny budget; both are dataclass
    instances of one type with a `seeds` field. `description` (plain words, no measured numbers: the report renders
    the configuration and every result from code) opens the report.
    """

    name: str
    title: str
    claims: tuple[Claim, ...]
    config: Any
    quick: Any
    experiment: Callable[[Any], pd.DataFrame | Outcome]
    verdicts: Callable[[pd.DataFrame], Sequence[Verdict]]
    figures: Callable[[Outcome, Path], Sequence[Path]] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        ids = [c.id for c in self.claims]
        if len(set(ids)) != len(ids):
            raise ValueError(f"study {self.name!r} has duplicate claim ids {ids}")
        for name in ("config", "quick"):
            cfg = getattr(self, name)
            if not dataclasses.is_dataclass(cfg) or not hasattr(cfg, "seeds"):
                raise TypeError(f"study {self.name!r}: {name} must be a dataclass instance with a `seeds` field")
        if type(self.config) is not type(self.quick):
            raise TypeError(f"study {self.name!r}: config and quick must be instances of the same dataclass")

    def claim(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(f"study {self.name!r} has no claim {claim_id!r}; claims: {[c.id for c in self.claims]}")

    def configure(self, quick: bool = False, seeds: int | Sequence[int] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Any:
        """The configuration a run uses: quick or full, with `seeds` (a count or a list) and field overrides."""
        cfg = self.quick if quick else self.config
        changes = dict(overrides or {})
        fields = {f.name: f for f in dataclasses.fields(cfg)}
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ValueError(f"study {self.name!r} has no config fields {unknown}; fields: {sorted(fields)}")
        for key, value in changes.items():  # JSON-ish values from the command line: lists become tuples
            if isinstance(value, list) and isinstance(getattr(cfg, key), tuple):
                changes[key] = tuple(value)
        if seeds is not None:
            if isinstance(seeds, int):
                if seeds < 1:
                    raise ValueError(f"seeds={seeds} must be >= 1")
                seeds = tuple(range(seeds))
            changes["seeds"] = tuple(int(s) for s in seeds)
        return dataclasses.replace(cfg, **changes)


@dataclass
class Result:
    """A finished run: the study, its configuration, the table and summary, the verdicts, figures and wall time."""

    study: Study
    config: Any
    outcome: Outcome
    verdicts: list[Verdict]
    figures: list[Path]
    wall_s: float
    quick: bool
    out: Path | None = None

    @property
    def table(self) -> pd.DataFrame:
        return self.outcome.table

    def verdict(self, claim_id: str) -> Verdict:
        for v in self.verdicts:
            if v.claim.id == claim_id:
                return v
        raise KeyError(f"no verdict for claim {claim_id!r}; verdicts: {[v.claim.id for v in self.verdicts]}")

    def _repr_markdown_(self) -> str:
        return verdict_table(self.verdicts)


def run(study: Study, quick: bool = False, seeds: int | Sequence[int] | None = None, out: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None) -> Result:
    """Run `study` (quick or full; `seeds` a count or list), judge its claims, and with `out` write its report."""
    cfg = study.configure(quick, seeds, overrides)
    start = time.perf_counter()
    outcome = study.experiment(cfg)
    if isinstance(outcome, pd.DataFrame):
        outcome = Outcome(outcome)
    if not isinstance(outcome, Outcome):
        raise TypeError(f"{study.name}: experiment returned {type(outcome).__name__}, expected a DataFrame or Outcome")
    verdicts = list(study.verdicts(outcome.table))
    known = {c.id: c for c in study.claims}
    for v in verdicts:
        if known.get(v.claim.id) != v.claim:
            raise ValueError(f"{study.name}: a verdict judges claim {v.claim.id!r}, which is not one of the study's")
    missing = sorted(set(known) - {v.claim.id for v in verdicts})
    if missing:
        raise ValueError(f"{study.name}: the verdict function judged no claim {missing}")
    result = Result(study, cfg, outcome, verdicts, [], time.perf_counter() - start, quick)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        result.figures = [Path(p) for p in (study.figures(outcome, out) if study.figures else ())]
        result.wall_s = time.perf_counter() - start
        result.out = out
        write_report(result, out)
    return result


# ---- 4. reports ---------------------------------------------------------------------------------------------------
def _fmt(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
            return f"{x:.3g}"
        return f"{x:.4g}"
    return str(x)


def _md_cell(x: Any) -> str:
    return _fmt(x).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict_table(verdicts: Sequence[Verdict], links: Sequence[str] | None = None,
                  groups: Sequence[str] | None = None, figures: Sequence[Sequence[str]] | None = None) -> str:
    """One row per verdict: claim, source, prediction, estimate, interval, n, outcome; with `groups` a first column
    naming each claim's group, with `figures` a last column linking each claim's figures."""
    rows = []
    for i, v in enumerate(verdicts):
        name = f"[{v.claim.id}]({links[i]})" if links else v.claim.id
        row = [name, v.claim.statement, v.claim.source, v.claim.prediction, v.estimate,
               f"[{_fmt(v.low)}, {_fmt(v.high)}]", v.n, f"**{v.outcome}**"]
        row = ([groups[i]] if groups else []) + row + ([" ".join(f"[{Path(f).stem}]({f})" for f in figures[i])]
                                                       if figures else [])
        rows.append(row)
    level = f"{verdicts[0].level:.0%} interval" if verdicts else "interval"
    header = ["claim", "statement", "source", "prediction", "estimate", level, "n", "verdict"]
    return markdown_table((["group"] if groups else []) + header + (["figures"] if figures else []), rows)


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


def command_line() -> str:
    """The command that is running, for reports ("python -m analyses run ...")."""
    argv = list(sys.argv)
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    head = f"python -m {spec.name.removesuffix('.__main__')}" if spec is not None else f"python {argv[0]}"
    return " ".join([head, *map(shlex.quote, argv[1:])])


def write_report(result: Result, out: str | Path) -> None:
    """report.md, metrics.json and table.csv under `out`, generated from the result."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s, table = result.study, result.table
    config = dataclasses.asdict(result.config)
    here = out.resolve()  # figures as links relative to report.md, whether `out` is relative or absolute
    figures = [str(Path(p).resolve().relative_to(here)) if Path(p).resolve().is_relative_to(here) else str(p)
               for p in result.figures]
    metrics = {"format": FORMAT, "study": s.name, "title": s.title, "quick": result.quick, "config": config,
               "seeds": list(result.config.seeds), "wall_s": result.wall_s, "command": command_line(),
               "verdicts": [v.to_dict() for v in result.verdicts], "summary": result.outcome.summary,
               "figures": figures, "table": table.to_dict(orient="records")}
    (out / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=1) + "\n")
    table.to_csv(out / "table.csv", index_label="row")
    lines = [f"# {s.title}", ""]
    if s.description:
        lines += [s.description.strip(), ""]
    lines += ["## Claims", "", verdict_table(result.verdicts), ""]
    quick = " (**quick run**: a tiny budget that tests the pipeline, not the science)" if result.quick else ""
    lines += ["## Setup", "", f"`{metrics['command']}`{quick}: {len(result.config.seeds)} seed(s), "
              f"{len(table)} table rows, {_fmt(result.wall_s)} s wall time.", "",
              markdown_table(["field", "value"], [[k, v] for k, v in config.items()]), ""]
    if result.outcome.summary:
        lines += ["## Measurements", "", markdown_table(["quantity", "value"], list(result.outcome.summary.items())),
                  ""]
    lines += ["## Table", ""]
    if len(table) <= 60:
        lines += [markdown_table(["row", *map(str, table.columns)], [[i, *r] for i, r in zip(table.index,
                                                                                           table.to_numpy())])]
    else:
        lines += [f"{len(table)} rows: [table.csv](table.csv)."]
    lines += ["", f"## Figures ({len(figures)})", ""] + [f"![{Path(f).stem}]({f})" for f in figures]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def read_result(path: str | Path) -> dict[str, Any]:
    """A written report's metrics.json with its verdicts as `Verdict`s and its table as a DataFrame."""
    path = Path(path)
    file = path / "metrics.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing: not a study's output directory")
    data = json.loads(file.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{file} has format {data.get('format')!r}, expected {FORMAT!r}")
    data["verdicts"] = [Verdict.from_dict(v) for v in data["verdicts"]]
    data["table"] = pd.DataFrame(data["table"])
    return data


def write_index(out: str | Path, title: str, results: Sequence[tuple[str, Path]], description: str = "",
                group_of: Callable[[str], str] | None = None) -> Path:
    """One page for many studies (`[(name, out_dir)]`): every verdict in one table linking each study's report and
    figures, as report.md and metrics.json under `out`. `group_of(name)` adds a group column (and field)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    verdicts, links, groups, figures, rows, wall, quick = [], [], [], [], [], 0.0, 0
    for name, path in results:
        data = read_result(path)
        link = os.path.relpath(Path(path) / "report.md", out)
        figs = [os.path.relpath(Path(path) / f, out) for f in data["figures"]]
        group = group_of(name) if group_of else None
        wall += data["wall_s"]
        quick += bool(data["quick"])
        for v in data["verdicts"]:
            verdicts.append(v)
            links.append(link)
            groups.append(group)
            figures.append(figs)
            rows.append({"study": name, **({"group": group} if group_of else {}), "report": link, "figures": figs,
                         "quick": data["quick"], **v.to_dict()})
    counts = {o: sum(v.outcome == o for v in verdicts) for o in OUTCOMES}
    lines = [f"# {title}", ""] + ([description.strip(), ""] if description else [])
    lines += [f"{len(results)} studies, {len(verdicts)} claims: " + ", ".join(f"{n} {o}" for o, n in counts.items())
              + f"; {_fmt(wall)} s of study wall time." + (f" {quick} of the studies are quick runs (a tiny budget "
                                                            "that tests the pipeline, not the science)." if quick
                                                            else ""), ""]
    if verdicts:
        lines += [verdict_table(verdicts, links, groups if group_of else None, figures)]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "metrics.json").write_text(json.dumps(_jsonable({"format": FORMAT + "-index", "title": title,
                                                            "counts": counts, "wall_s": wall, "claims": rows}),
                                                 indent=1) + "\n")
    return out / "report.md"


# ---- command line -------------------------------------------------------------------------------------------------
def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`["steps=100", "lrs=[1e-3, 1e-2]"]` -> {"steps": 100, "lrs": [0.001, 0.01]} (JSON values, else strings)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected FIELD=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def add_arguments(parser: Any) -> None:
    parser.add_argument("--quick", action="store_true", help="the same pipeline on a tiny budget (seconds)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the study's)")
    parser.add_argument("--out", default=None, help="output directory (default runs/GROUP/NAME)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a config field (JSON value), e.g. --set steps=2000; repeatable")


def main(study: Study, argv: Sequence[str] | None = None, default_out: str | Path | None = None) -> Result:
    """`python -m analyses.<group>.<name> [--quick] [--seeds N] [--out DIR] [--set FIELD=VALUE ...]`."""
    import argparse

    parser = argparse.ArgumentParser(prog=study.name, description=study.title)
    add_arguments(parser)
    args = parser.parse_args(argv)
    out = args.out or default_out or Path("runs") / study.name.replace(".", "/")
    result = run(study, quick=args.quick, seeds=args.seeds, out=out, overrides=parse_overrides(args.overrides))
    for v in result.verdicts:
        print(v)
    print(f"wrote {Path(out) / 'report.md'} ({result.wall_s:.1f} s)")
    return result
