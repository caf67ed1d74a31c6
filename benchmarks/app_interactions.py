"""Dashboard responsiveness: every interaction of the pages, timed through Streamlit's AppTest on the shipped
checkpoints (checkpoints/), as a user would do them one after another in one session.

Each interaction is one `AppTest.run()` after a widget change: a rerun of the page script, including the cached or
fresh computation it triggers (the browser's drawing is not included). The target is under 2 s each on 2 CPU cores.
Page opens (the first run of a page in a session) are reported apart: the first image checkpoint of a process also
imports scikit-learn for the digits. The process's first model explorer load (importing torch, TransformerLens,
plotly) is the cold start. Reported: wall and CPU seconds of each, the slowest, the machine's load average before
and after (other processes share the CPUs), and the slowest's ratio to a reference rerun of the Overview page
measured in the same run. The app runs torch on one thread by default (apps/lib.py, PROBE_APP_THREADS; --threads
changes it). Results go to benchmarks/results/app_interactions.json.

    python benchmarks/app_interactions.py [--runs DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOME = str(REPO / "apps" / "Home.py")
TARGET_S = 2.0


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


class Session:
    """One AppTest session; `step(name, change)` applies a widget change, reruns, and records the time."""

    def __init__(self, results: list[dict], page: str | None = None, query: dict | None = None) -> None:
        from streamlit.testing.v1 import AppTest

        self.results = results
        self.at = AppTest.from_file(HOME, default_timeout=120)
        for k, v in (query or {}).items():
            self.at.query_params[k] = v
        self.at.run()
        self.check("load")
        if page is not None:
            self.step(f"open {page}" + (f" {query}" if query else ""), lambda at: at.switch_page(f"views/{page}.py"))

    def check(self, name: str) -> None:
        if self.at.exception:
            raise RuntimeError(f"{name}: {self.at.exception[0].value}")

    def step(self, name: str, change: Callable) -> None:
        change(self.at)
        wall, cpu = timed(self.at.run)
        self.check(name)
        self.results.append({"interaction": name, "wall_s": wall, "cpu_s": cpu, "page_open": name.startswith("open ")})
        print(f"{wall:6.3f} s  (cpu {cpu:6.3f})  {name}", flush=True)


def tab(name: str) -> Callable:
    def change(at):
        at.session_state["view"] = name

    return change


def explorer(results: list[dict], checkpoint: str, steps: list[tuple[str, Callable]]) -> None:
    s = Session(results, "model_explorer", {"checkpoint": checkpoint})
    for name, change in steps:
        s.step(f"{checkpoint}: {name}", change)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default=None, help="PROBE_RUNS for the run pages (default: an empty folder)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the app (PROBE_APP_THREADS; default: the app's default, 1)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "app_interactions.json"))
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ["PROBE_CHECKPOINTS"] = str(REPO / "checkpoints")
    os.environ["PROBE_RUNS"] = args.runs or tempfile.mkdtemp(prefix="probe_runs_")
    if args.threads:
        os.environ["PROBE_APP_THREADS"] = str(args.threads)
    import torch
    load_before = os.getloadavg()
    results: list[dict] = []
    cold_wall, cold_cpu = timed(lambda: Session([], "model_explorer", {"checkpoint": "induction_2l"}))

    reference = Session(results)  # the Overview page: the cheapest rerun there is
    ref = [timed(reference.at.run)[0] for _ in range(5)]

    sel = lambda key, value: lambda at: at.selectbox(key=key).set_value(value)  # noqa: E731
    text = lambda key, value: lambda at: at.text_input(key=key).set_value(value)  # noqa: E731
    radio = lambda key, value: lambda at: at.radio(key=key).set_value(value)  # noqa: E731
    multi = lambda key, value: lambda at: at.multiselect(key=key).set_value(value)  # noqa: E731
    slider = lambda key, value: lambda at: at.slider(key=key).set_value(value)  # noqa: E731
    explorer(results, "induction_2l", [
        ("layer 1", sel("layer", 1)), ("head 3", sel("head", 3)),
        ("new prompt", text("tokens", "<bos> s1 s2 s3 s4 s5 s1 s2 s3 s4 s5")),
        ("Predictions tab", tab("Predictions")), ("position 5", slider("position", 5)),
        ("DLA answer s3", sel("answer", 6)), ("Logit lens tab", tab("Logit lens")),
        ("lens: next input token", radio("lens_target", "the next input token")),
        ("Patching tab", tab("Patching")), ("patching: loss metric", radio("metric", "loss")),
        ("patching: corrupted prompt", text("corrupted", "<bos> s9 s8 s7 s6 s5 s1 s2 s3 s4 s5")),
        ("Ablation tab", tab("Ablation")), ("ablate L1H3 + L0H2", multi("ablate_heads", ["L1H3", "L0H2"])),
        ("mean ablation", radio("method", "mean")), ("resample ablation", radio("method", "resample")),
        ("Circuits tab", tab("Circuits")), ("circuit L1H3", lambda at: (at.selectbox(key="layer").set_value(1),
                                                                        at.selectbox(key="head").set_value(3))),
        ("Attention tab", tab("Attention")),
    ])
    explorer(results, "reverse_encdec", [
        ("cross-attention", sel("stack", "decoder cross-attention")), ("new source", text("src", "3 1 4 1 5 9 2")),
        ("Predictions tab", tab("Predictions")), ("Logit lens tab", tab("Logit lens")),
        ("Patching tab", tab("Patching")), ("patching: cross heads", sel("patch_stack", "decoder cross-attention")),
        ("patching: encoder stream", sel("patch_stream", "encoder")),
        ("Ablation tab", tab("Ablation")), ("ablate cross.L0H1 + cross.L1H2",
                                            multi("ablate_heads", ["cross.L0H1", "cross.L1H2"])),
        ("resample ablation", radio("method", "resample")),
        ("Circuits tab", tab("Circuits")),
        ("cross-attention circuits", sel("circuit_stack", "decoder cross-attention")),
    ])
    explorer(results, "vit_digits", [
        ("image 7", slider("image", 7)), ("layer 1", sel("layer", 1)), ("head 2", sel("head", 2)),
        ("Predictions tab", tab("Predictions")), ("Logit lens tab", tab("Logit lens")),
        ("Patching tab", tab("Patching")), ("corrupted image 3", slider("corrupted_image", 3)),
        ("Ablation tab", tab("Ablation")), ("ablate L1H0", multi("ablate_heads", ["L1H0"])),
        ("mean ablation", radio("method", "mean")),
    ])
    explorer(results, "cnn_digits", [("image 9", slider("image", 9)), ("stage 1 maps", sel("cnn_hook",
                                                                                         "stages.1.hook_out"))])
    s = Session(results, "scan_snap_replay")
    s.step("scan & snap: iteration 50", slider("iteration", 50))
    s.step("scan & snap: train 50 iterations", lambda at: at.button[0].click())
    s.step("scan & snap: train a second run", lambda at: at.button[0].click())
    for page in ("runs_browser", "compare_runs", "training_trajectories"):
        Session(results, page)

    load_after = os.getloadavg()
    changes = [r for r in results if not r["page_open"]]
    slowest = max(changes, key=lambda r: r["wall_s"])
    slowest_open = max((r for r in results if r["page_open"]), key=lambda r: r["wall_s"])
    out = {
        "target_s": TARGET_S,
        "slowest": slowest,
        "slowest_cpu": max(changes, key=lambda r: r["cpu_s"]),
        "slowest_page_open": slowest_open,
        "n_interactions": len(changes),
        "n_over_target": sum(r["wall_s"] > TARGET_S for r in changes),
        "n_page_opens_over_target": sum(r["wall_s"] > TARGET_S for r in results if r["page_open"]),
        "median_wall_s": statistics.median(r["wall_s"] for r in results),
        "reference_overview_rerun_s": statistics.median(ref),
        "ratio_slowest_to_reference": slowest["wall_s"] / statistics.median(ref),
        "cold_start": {"wall_s": cold_wall, "cpu_s": cold_cpu},
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "interactions": results,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"slowest interaction: {slowest['interaction']} {slowest['wall_s']:.3f} s (cpu {slowest['cpu_s']:.3f} s); "
          f"{out['n_over_target']} of {len(changes)} over {TARGET_S} s; slowest page open: "
          f"{slowest_open['interaction']} {slowest_open['wall_s']:.3f} s; cold start {cold_wall:.1f} s; "
          f"load {load_before} -> {load_after}")


if __name__ == "__main__":
    main()
