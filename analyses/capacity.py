"""Capacity of linear attention: synthetic associative retrieval (Schlag, Irie, Schmidhuber 2021, section 6.1).

S keys and S values drawn from vocabularies of size S. Setting 1: S (key, value) pairs, keys without replacement;
Setting 2: 2S pairs with replacement, the target being the value at the queried key's last occurrence. One query key
per sequence. k_t = W_k [onehot(value_t); emb(key_t)], q = W_q emb(query), v_t = onehot(value_t), d_key = 64; one
retrieval y = W_T phi(q) (or softmax attention), nothing after it. Loss 0.5 ||y - onehot(target)||^2 (0.5 = zero
output). Adam; stop when the eval loss <= 0.001, after `patience` evaluations without improvement, or at the step
budget. As in the authors' code (ischlag/fast-weight-transformers, synthetic/): the sum rule is linear attention with
its denominator, y = W_T phi(q) / (z_T . phi(q)); the delta rule uses sum-normalised phi'(q), phi'(k) (sec. 4.2) and
beta_t = sigmoid(w_beta . [onehot(value_t); emb(key_t)]); FAVOR+ redraws its random features at every forward.

Claims under test, with the sum rule: (1) a deterministic feature map (elu+1, DPFP-nu) of dimension d_phi solves the
task (loss <= 0.001) at small S and fails at S = 2 d_phi, while softmax keeps solving; (2) capacity grows with d_phi
(wherever the smaller map fails, the larger has lower loss; the largest solved S does not shrink); (3) FAVOR+'s random
features solve no S >= d_phi / 2 (the authors' own logs: loss 0.13 at S = 20 with m = 64, d_phi = 128), and more
features lower the loss. With the delta rule: (4) in Setting 2 it solves values of S where the sum rule (same phi)
does not. The default sweep uses d_key = 16 (d_phi and FAVOR+'s m scale with it) to finish in minutes on 2 CPU
cores; `--d-key 64` is the paper's width (DPFP-3 at S = 384 alone takes about 5 minutes there).

`python -m analyses.capacity [--setting 1 2] [--methods ...] [--rule sum|delta] [--S ...] [--quick] [--out DIR]`.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from tqdm import tqdm  # noqa: E402

from probe.ops.delta_rule import delta_rule  # noqa: E402
from probe.ops.feature_maps import apply_feature_map, orthogonal_random_features, sum_normalize  # noqa: E402

D_KEY = 64
METHODS = {  # id -> (feature map, nu, favor m)
    "softmax": (None, 0, 0),
    "linear": ("elu_plus_one", 1, 0),
    "dpfp1": ("dpfp", 1, 0),
    "dpfp2": ("dpfp", 2, 0),
    "dpfp3": ("dpfp", 3, 0),
    "favor64": ("favor_plus", 1, 64),
    "favor128": ("favor_plus", 1, 128),
}
SOLVED = 1e-3
DEFAULT_D_KEY = 16  # default sweep's width: the paper's d_key = 64 costs ~16x more per step than 2 CPU cores allow
DEFAULT = {  # setting -> (methods, rule(s), S values; None: default_S of each method)
    1: (("softmax", "linear", "dpfp1", "dpfp2", "dpfp3", "favor64", "favor128"), ("sum",), None),
    2: (("dpfp1",), ("sum", "delta"), (8, 16, 32)),
}
DETERMINISTIC = ("linear", "dpfp1", "dpfp2", "dpfp3")  # in order of d_phi
FAVOR = ("favor64", "favor128")


def default_S(method: str, d_key: int) -> tuple[int, ...]:
    """A grid shared by all methods (so losses compare at equal S): d_key/2, d_key, 2 d_key, ... up to 2 d_phi
    (12 d_key for softmax, whose d_phi is unbounded)."""
    top = 12 * d_key if METHODS[method][0] is None else 2 * d_phi(method, d_key)
    grid = [d_key // 2 * 2**i for i in range(5)] + [12 * d_key]
    return tuple(S for S in grid if S <= top)


def d_phi(method: str, d_key: int = D_KEY) -> float:
    """Feature dimension; FAVOR+'s m scales with d_key (m = 64 or 128 at the paper's d_key = 64)."""
    name, nu, m = METHODS[method]
    return math.inf if name is None else {"elu_plus_one": d_key, "dpfp": 2 * nu * d_key,
                                          "favor_plus": 2 * m * d_key // D_KEY}[name]


class Retrieval(nn.Module):
    """One retrieval from S (key, value) writes: the model of Schlag et al. section 6.1."""

    def __init__(self, method: str, S: int, rule: str = "sum", d_key: int = D_KEY) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method={method!r} is not one of {tuple(METHODS)}")
        if rule not in ("sum", "delta"):
            raise ValueError(f"rule={rule!r} is not one of ('sum', 'delta')")
        if rule == "delta" and method == "softmax":
            raise ValueError("rule='delta' needs a linear method (a feature map), not method='softmax'")
        self.method, self.rule, self.S, self.d_key = method, rule, S, d_key
        self.feature, self.nu, m = METHODS[method]
        self.emb = nn.Embedding(S, d_key)
        # W_k [onehot(value); emb(key)] = W_k_value[value] + W_k_key emb(key): the one-hot half is a lookup
        self.W_k_value, self.W_k_key = nn.Embedding(S, d_key), nn.Linear(d_key, d_key)
        self.W_q = nn.Linear(d_key, d_key)
        nn.init.uniform_(self.W_k_value.weight, -(d_key**-0.5), d_key**-0.5)  # the authors' init of all of W_k
        if rule == "delta":  # beta_t = sigmoid(w_beta . [onehot(value_t); emb(key_t)])
            self.w_beta_value, self.w_beta_key = nn.Embedding(S, 1), nn.Linear(d_key, 1)
        self.m = m * d_key // D_KEY  # FAVOR+ features, redrawn at every forward (see `phi`)

    def phi(self, x: Tensor, projection: Tensor | None = None) -> Tensor:
        """phi(x) for the sum rule, sum-normalised phi'(x) for the delta rule."""
        x = x * self.d_key**-0.25 if self.feature == "favor_plus" else x
        phi = apply_feature_map(self.feature, x, nu=self.nu, projection=projection)
        return sum_normalize(phi) if self.rule == "delta" else phi

    def projection(self, device: torch.device) -> Tensor | None:
        """A fresh FAVOR+ draw (the authors redraw at every forward); None for the deterministic maps."""
        return orthogonal_random_features(self.m, self.d_key, device=device) if self.feature == "favor_plus" else None

    def scatter(self, weights: Tensor, values: Tensor) -> Tensor:
        """sum_t weights_t onehot(value_t), without building the one-hot tensor."""
        return weights.new_zeros(weights.shape[0], self.S).scatter_add(1, values, weights)

    def keys(self, keys: Tensor, values: Tensor) -> Tensor:
        return self.W_k_value(values) + self.W_k_key(self.emb(keys))  # [batch pos d_key]

    def forward(self, keys: Tensor, values: Tensor, query: Tensor) -> Tensor:
        k, q = self.keys(keys, values), self.W_q(self.emb(query))
        if self.feature is None:  # y = sum_t softmax(q.k_t / sqrt(d))_t onehot(value_t), as a scatter
            return self.scatter(torch.softmax(torch.einsum("bd,bpd->bp", q, k) / self.d_key**0.5, -1), values)
        projection = self.projection(k.device)
        pk, pq = self.phi(k, projection), self.phi(q, projection)
        if self.rule == "sum":  # y = W phi(q) / (z . phi(q)), W = sum_t onehot(v_t) phi(k_t)^T, z = sum_t phi(k_t)
            scores = torch.einsum("bd,bpd->bp", pq, pk)
            return self.scatter(scores / (scores.sum(-1, keepdim=True) + 1e-6), values)
        v = F.one_hot(values, self.S).to(pk.dtype)
        beta = torch.sigmoid(self.w_beta_value(values) + self.w_beta_key(self.emb(keys))).squeeze(-1)
        _, W = delta_rule(pk[:, None], pk[:, None], v[:, None], beta[:, None], form="chunked", return_state=True)
        return torch.einsum("bed,bd->be", W[:, 0], pq)


def sample(setting: int, S: int, batch: int, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """keys, values [batch n], query [batch], target [batch]; n = S (setting 1) or 2S (setting 2)."""
    if setting == 1:
        keys = torch.argsort(torch.rand(batch, S, generator=gen), dim=-1)
        values = torch.randint(0, S, (batch, S), generator=gen)
        pick = torch.randint(0, S, (batch,), generator=gen)
    elif setting == 2:
        keys = torch.randint(0, S, (batch, 2 * S), generator=gen)
        values = torch.randint(0, S, (batch, 2 * S), generator=gen)
        pick = torch.randint(0, 2 * S, (batch,), generator=gen)
    else:
        raise ValueError(f"setting={setting!r} is not one of (1, 2)")
    query = keys.gather(1, pick[:, None]).squeeze(1)
    last = ((keys == query[:, None]) * torch.arange(keys.shape[1])).amax(1)  # last occurrence of the query
    return keys, values, query, values.gather(1, last[:, None]).squeeze(1)


def loss_fn(y: Tensor, target: Tensor) -> Tensor:
    return 0.5 * (y - F.one_hot(target, y.shape[-1]).float()).pow(2).sum(-1).mean()


def train_one(setting: int, method: str, rule: str, S: int, max_steps: int, eval_every: int, patience: int,
              lr: float, d_key: int = D_KEY, seed: int = 0, batch: int = 32) -> dict:
    torch.manual_seed(seed)
    model = Retrieval(method, S, rule, d_key)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen, eval_gen = torch.Generator().manual_seed(seed + 1), torch.Generator().manual_seed(seed + 2)
    eval_batch = sample(setting, S, 256, eval_gen)
    best, since, step, curve, stop = math.inf, 0, 0, [], "budget"
    while step < max_steps:
        for _ in range(eval_every):
            *inputs, target = sample(setting, S, batch, gen)
            loss = loss_fn(model(*inputs), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        with torch.no_grad():
            ev = loss_fn(model(*eval_batch[:3]), eval_batch[3]).item()
        curve.append(ev)
        best, since = (ev, 0) if ev < best else (best, since + 1)
        if ev <= SOLVED or since >= patience:
            stop = "solved" if ev <= SOLVED else "plateau"
            break
    # plateau check for runs that end unsolved: best loss of the last `patience` evaluations over the best before them
    before = min(curve[:-patience], default=math.inf)
    gain = before / min(curve[-patience:]) if len(curve) > patience else math.nan
    return dict(setting=setting, method=method, rule=rule, S=S, d_phi=d_phi(method, d_key), final_loss=curve[-1],
                best_loss=best, steps=step, solved=best <= SOLVED, stop=stop, last_gain=gain, d_key=d_key,
                curve=curve)


@dataclass
class CapacityResult:
    runs: list[dict] = field(default_factory=list)
    largest_solved: dict[str, dict] = field(default_factory=dict)  # "setting/method/rule" -> {S, d_phi}
    claims: dict[str, bool | None] = field(default_factory=dict)
    seconds: float = 0.0


def summarise(res: CapacityResult) -> None:
    groups: dict[str, list[dict]] = {}
    for r in res.runs:
        groups.setdefault(f"{r['setting']}/{r['method']}/{r['rule']}", []).append(r)
    for key, runs in groups.items():
        solved = [r["S"] for r in runs if r["solved"]]
        res.largest_solved[key] = dict(S=max(solved) if solved else None, d_phi=runs[0]["d_phi"],
                                       failed_S=sorted(r["S"] for r in runs if not r["solved"]))
    best = {(r["method"], r["S"]): r["best_loss"] for r in res.runs if r["setting"] == 1 and r["rule"] == "sum"}
    info1 = {m: res.largest_solved[f"1/{m}/sum"] for m in METHODS if f"1/{m}/sum" in res.largest_solved}

    def lower_where_unsolved(small: str, large: str) -> bool | None:
        """`large` has the lower best loss at every S both tried where `small` failed (None: no such S)."""
        common = [S for (m, S) in best if m == small and (large, S) in best and best[small, S] > SOLVED]
        return all(best[large, S] < best[small, S] for S in common) if common else None

    det = [m for m in DETERMINISTIC if m in info1]
    if det:  # (1) solved at the smallest S tried, failed at 2 d_phi
        res.claims["sum_rule_solves_small_S_and_fails_at_2_d_phi"] = all(
            info1[m]["S"] is not None and min(S for (k, S) in best if k == m) <= info1[m]["S"]
            and any(S >= 2 * info1[m]["d_phi"] for S in info1[m]["failed_S"]) for m in det)
    if len(det) > 1:  # (2) more d_phi, more capacity
        pairs = [lower_where_unsolved(a, b) for a, b in zip(det, det[1:])]
        solved = [info1[m]["S"] or 0 for m in det]
        res.claims["capacity_grows_with_d_phi"] = None if None in pairs else (
            all(pairs) and solved == sorted(solved))
    fav = [m for m in FAVOR if m in info1]
    if fav:  # (3) FAVOR+ below its d_phi / 2, where the deterministic maps still solve; more features help
        res.claims["favor_retrieves_below_d_phi_over_2"] = all(
            (info1[m]["S"] or 0) < info1[m]["d_phi"] / 2 for m in fav)
    if len(fav) == 2:
        res.claims["favor_improves_with_m"] = lower_where_unsolved(*fav)
    soft = info1.get("softmax")
    res.claims["softmax_solves_every_S"] = None if soft is None else not soft["failed_S"]
    d, s = res.largest_solved.get("2/dpfp1/delta"), res.largest_solved.get("2/dpfp1/sum")
    if d is not None and s is not None:
        res.claims["delta_beats_sum_in_setting_2"] = (d["S"] or 0) > (s["S"] or 0)


def figure(res: CapacityResult, out: Path) -> None:
    for setting in sorted({r["setting"] for r in res.runs}):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        keys = sorted({(r["method"], r["rule"]) for r in res.runs if r["setting"] == setting})
        for method, rule in keys:
            runs = sorted((r for r in res.runs if (r["setting"], r["method"], r["rule"]) == (setting, method, rule)),
                          key=lambda r: r["S"])
            label = f"{method} ({rule}, d_phi={d_phi(method):g})"
            ax.plot([r["S"] for r in runs], [max(r["best_loss"], 1e-6) for r in runs], "o-", label=label)
        ax.axhline(SOLVED, color="k", ls=":", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="S (number of keys = values)", ylabel="best eval loss",
               title=f"Associative retrieval, setting {setting}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / f"capacity_setting{setting}.png", dpi=110)
        plt.close(fig)


def run(settings: tuple[int, ...] = (1, 2), methods: tuple[str, ...] | None = None,
        rules: tuple[str, ...] | None = None, S_values: tuple[int, ...] | None = None, quick: bool = False,
        out: str | Path = "runs/capacity",
        max_steps: int = 3000, eval_every: int = 50, patience: int = 10, lr: float | None = None,
        d_key: int = DEFAULT_D_KEY) -> CapacityResult:
    """Sweep (setting, method, rule, S); unspecified lists come from DEFAULT per setting. lr None: the paper's 1e-3
    at d_key >= 64, 1e-2 below it (where 1e-3 needs more steps than the budget)."""
    lr = lr if lr is not None else (1e-3 if d_key >= D_KEY else 1e-2)
    start = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if quick:
        max_steps, eval_every, patience = 20, 10, 2
    jobs = []
    for setting in settings:
        d_methods, d_rules, d_S = DEFAULT[setting]
        if quick:
            d_methods, d_S = (d_methods[:2] if setting == 1 else d_methods), (8, 16)
        for method in methods or d_methods:
            for rule in rules or d_rules:
                if rule == "delta" and method == "softmax":
                    continue
                jobs.extend((setting, method, rule, S) for S in (S_values or d_S or default_S(method, d_key)))
    res = CapacityResult()
    for job in tqdm(jobs, desc="capacity", disable=quick):
        res.runs.append(train_one(*job, max_steps=max_steps, eval_every=eval_every, patience=patience, lr=lr,
                                  d_key=d_key))
    summarise(res)
    res.seconds = time.time() - start
    figure(res, out)
    (out / "metrics.json").write_text(json.dumps(asdict(res), indent=1, default=str))
    write_report(res, out / "report.md", max_steps, lr, d_key, eval_every)
    return res


def write_report(res: CapacityResult, path: Path, max_steps: int, lr: float, d_key: int, eval_every: int) -> None:
    lines = [
        "# Capacity of linear attention (Schlag et al. 2021, sec. 6.1)",
        "",
        "Claims: (1) sum-rule linear attention with a deterministic feature map (elu+1, DPFP-nu) of dimension d_phi",
        "retrieves perfectly (loss <= 0.001) at small S and fails at S = 2 d_phi, while softmax keeps solving; (2) the",
        "capacity grows with d_phi (lower loss wherever the smaller map fails, largest solved S non-decreasing); (3)",
        "FAVOR+'s random features solve no S >= d_phi / 2, and more features (m) lower the loss; (4) in Setting 2",
        "(2S pairs, keys repeat, the latest value wins) the delta rule solves S where the sum rule with the same phi",
        "does not.",
        f"d_key = {d_key} (the paper: 64; d_phi scales with it: elu+1 d_key, DPFP-nu 2 nu d_key, FAVOR+ m scaled by",
        f"d_key/64). Budget per run: at most {max_steps} Adam steps (lr {lr:g}, batch 32), evaluated every",
        f"{eval_every} steps on 256 fixed sequences; stop at loss <= 0.001 ('solved') or 10 evaluations without",
        "improvement ('plateau'), else 'budget'. An unsolved run that stopped on 'budget' may be budget-limited:",
        "'gain' = best loss before the last 10 evaluations / best loss within them (1.0 = flat; >> 1 = improving).",
        "",
        "| setting | method | rule | d_phi | largest solved S | S not solved |",
        "|---|---|---|---|---|---|",
    ]
    for key, info in res.largest_solved.items():
        setting, method, rule = key.split("/")
        lines.append(f"| {setting} | {method} | {rule} | {info['d_phi']:g} | {info['S']} | {info['failed_S']} |")
    lines += ["", "| setting | method | rule | S | S/d_phi | best loss | final loss | steps | stop | gain |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res.runs:
        lines.append(f"| {r['setting']} | {r['method']} | {r['rule']} | {r['S']} | {r['S'] / r['d_phi']:.2f} | "
                     f"{r['best_loss']:.2e} | {r['final_loss']:.2e} | {r['steps']} | {r['stop']} | "
                     f"{r['last_gain']:.2f} |")
    lines += ["", "Claims measured:"]
    for name, ok in res.claims.items():
        lines.append(f"- {name}: {'supported' if ok else 'not supported' if ok is not None else 'not measured'}")
    lines += ["", f"Runtime {res.seconds:.0f} s. Figures: capacity_setting*.png."]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", type=int, nargs="+", default=[1, 2], choices=[1, 2])
    parser.add_argument("--methods", nargs="+", choices=list(METHODS))
    parser.add_argument("--rule", nargs="+", choices=["sum", "delta"])
    parser.add_argument("--S", type=int, nargs="+")
    parser.add_argument("--max-steps", type=int, default=3000)
    parser.add_argument("--lr", type=float, help="Adam's lr (default: 1e-3 at d_key >= 64 as the paper, else 1e-2)")
    parser.add_argument("--d-key", type=int, default=DEFAULT_D_KEY)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="runs/capacity")
    a = parser.parse_args()
    torch.set_num_threads(1)  # tiny ops: thread start-up costs more than it saves on a shared 2-core machine
    res = run(tuple(a.setting), tuple(a.methods) if a.methods else None, tuple(a.rule) if a.rule else None,
              tuple(a.S) if a.S else None, quick=a.quick, out=a.out, max_steps=a.max_steps, lr=a.lr, d_key=a.d_key)
    for key, info in res.largest_solved.items():
        print(f"{key}: largest solved S={info['S']} (d_phi={info['d_phi']:g}), not solved {info['failed_S']}")
    print(f"claims: {res.claims} -> {a.out}")


if __name__ == "__main__":
    main()
