"""Capacity of linear attention: synthetic associative retrieval (Schlag, Irie, Schmidhuber, ICML 2021, section 6.1;
/work/shared/reference/fast_weights.md).

S keys and S values come from vocabularies of size S. Setting 1: S (key, value) pairs, keys without replacement;
Setting 2: 2S pairs with replacement, the target being the value at the queried key's last occurrence. One query key
per sequence. k_t = W_k [onehot(value_t); emb(key_t)], q = W_q emb(query), v_t = onehot(value_t); one retrieval
y = W_T phi(q) (or softmax attention), nothing after it. Loss 0.5 ||y - onehot(target)||^2 (0.5 = zero output). As in
the authors' code (ischlag/fast-weight-transformers, synthetic/): the sum rule is linear attention with its
denominator, y = W_T phi(q) / (z_T . phi(q)); the delta rule uses sum-normalised phi'(q), phi'(k) and
beta_t = sigmoid(w_beta . [onehot(value_t); emb(key_t)]); FAVOR+ redraws its random features at every forward.
Each run trains with Adam through `probe.Trainer` and stops (`probe.train.EarlyStopping`) when the loss on a fixed
evaluation batch reaches 0.001 ("solved"), after a run of evaluations without improvement ("plateau"), or at the
step budget. d_phi scales with d_key (elu+1: d_key; DPFP-nu: 2 nu d_key; FAVOR+ m = 64 or 128 at the paper's
d_key = 64, scaled by d_key / 64); each method runs on one grid of S shared by all, up to 2 d_phi (a dozen d_key for
softmax).

The paper's qualitative claims are measured per seed: "solves" is the fraction of the runs that reach the target
loss; "fails" is the smallest best loss of the runs that should fail, above the target; "the larger map has the
lower loss wherever the smaller fails" is the mean, over adjacent deterministic maps (ordered by d_phi) and the S
where the smaller one fails, of log10(best loss of the smaller / best loss of the larger), above 0; "capacity does
not shrink with d_phi" is the smallest difference of the largest solved S between adjacent maps, at least 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from probe.ops.delta_rule import delta_rule
from probe.ops.feature_maps import apply_feature_map, orthogonal_random_features, sum_normalize
from probe.study import Claim, Outcome, Study, grid, judge, main, per_seed
from probe.train import EarlyStopping, TrainConfig, Trainer

SOURCE = "Schlag, Irie, Schmidhuber, ICML 2021 (arXiv 2102.11174v3), section 6.1"
PAPER_D_KEY = 64
METHODS = {  # id -> (feature map, nu, FAVOR+ m at the paper's d_key)
    "softmax": (None, 0, 0),
    "linear": ("elu_plus_one", 1, 0),
    "dpfp1": ("dpfp", 1, 0),
    "dpfp2": ("dpfp", 2, 0),
    "dpfp3": ("dpfp", 3, 0),
    "favor64": ("favor_plus", 1, 64),
    "favor128": ("favor_plus", 1, 128),
}
DETERMINISTIC = ("linear", "dpfp1", "dpfp2", "dpfp3")  # in order of d_phi
FAVOR = ("favor64", "favor128")
SOLVED = 1e-3
CLAIMS = (
    Claim("small_S_solved", "Sum-rule linear attention with a deterministic feature map (elu+1, DPFP) retrieves "
          "perfectly at small S", SOURCE,
          "fraction of the deterministic maps whose best eval loss at the smallest S reaches 0.001", ">=", 1.0),
    Claim("fails_at_2_d_phi", "A deterministic feature map fails once S reaches twice its feature dimension d_phi",
          SOURCE,
          "smallest best eval loss of the deterministic maps at S = 2 d_phi", ">", SOLVED),
    Claim("larger_d_phi_lower_loss", "Where a map fails, the next larger map (in d_phi) has the lower loss", SOURCE,
          "mean over adjacent deterministic maps and the S where the smaller fails of log10(best loss of the "
          "smaller / best loss of the larger)", ">", 0.0),
    Claim("capacity_grows", "The largest solved S does not shrink as d_phi grows", SOURCE,
          "smallest, over adjacent deterministic maps, largest solved S of the larger map minus of the smaller",
          ">=", 0.0),
    Claim("favor_fails", "FAVOR+'s random features solve no S >= d_phi / 2",
          f"{SOURCE}; the authors' logs (ischlag/fast-weight-transformers, synthetic/)",
          "smallest best eval loss of FAVOR+ at S >= d_phi / 2", ">", SOLVED),
    Claim("favor_more_features", "More random features lower FAVOR+'s loss", SOURCE,
          "mean over the S where FAVOR+ with the smaller m fails of log10(its best loss / best loss with the larger "
          "m)", ">", 0.0),
    Claim("softmax_solves", "Softmax attention retrieves perfectly at every S tried", SOURCE,
          "fraction of the S values at which softmax's best eval loss reaches 0.001", ">=", 1.0),
    Claim("delta_beats_sum", "In Setting 2 the delta rule solves S where the sum rule with the same feature map "
          "does not", SOURCE, "number of S values solved by the delta rule minus by the sum rule (Setting 2)",
          ">", 0.0),
)


@dataclass(frozen=True)
class Config:
    setting1_methods: tuple[str, ...] = tuple(METHODS)
    setting1_S: tuple[int, ...] = ()  # empty: each method's default grid (`default_S`)
    setting2_methods: tuple[str, ...] = ("dpfp1",)
    setting2_S: tuple[int, ...] = (8, 16, 32)
    d_key: int = 16  # the paper's 64 costs ~16x more per step than two shared CPU cores allow
    lr: float | None = None  # None: the paper's 1e-3 at d_key >= 64, else 1e-2 (1e-3 needs more steps than the budget)
    batch: int = 32
    max_steps: int = 3000
    eval_every: int = 50
    patience: int = 10  # evaluations without improvement
    eval_size: int = 256
    seeds: tuple[int, ...] = (0, 1, 2)


def d_phi(method: str, d_key: int) -> float:
    """Feature dimension of `method` at `d_key` (inf for softmax)."""
    name, nu, m = METHODS[method]
    return math.inf if name is None else {"elu_plus_one": d_key, "dpfp": 2 * nu * d_key,
                                          "favor_plus": 2 * m * d_key // PAPER_D_KEY}[name]


def default_S(method: str, d_key: int) -> tuple[int, ...]:
    """A grid shared by all methods (so losses compare at equal S): d_key/2, d_key, 2 d_key, ... up to 2 d_phi
    (12 d_key for softmax, whose d_phi is unbounded)."""
    top = 12 * d_key if METHODS[method][0] is None else 2 * d_phi(method, d_key)
    return tuple(S for S in [d_key // 2 * 2**i for i in range(5)] + [12 * d_key] if S <= top)


class Retrieval(nn.Module):
    """One retrieval from S (key, value) writes: the model of Schlag et al. section 6.1."""

    def __init__(self, method: str, S: int, rule: str = "sum", d_key: int = PAPER_D_KEY) -> None:
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
        self.m = m * d_key // PAPER_D_KEY  # FAVOR+ features, redrawn at every forward (see `phi`)

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

    def forward(self, keys: Int[Tensor, "batch pos"], values: Int[Tensor, "batch pos"], query: Int[Tensor, " batch"],
                target: Int[Tensor, " batch"] | None = None, return_type: str = "logits",
                ) -> Float[Tensor, "batch S"] | Float[Tensor, ""]:
        """The retrieved vector y [batch, S] ("logits"), or with `target` the loss 0.5 ||y - onehot(target)||^2."""
        if return_type not in ("logits", "loss"):
            raise ValueError(f"return_type={return_type!r} must be 'logits' or 'loss'")
        y = self.retrieve(keys, values, query)
        if return_type == "logits":
            return y
        if target is None:
            raise ValueError("return_type='loss' needs target [batch] (the value to retrieve)")
        return loss_fn(y, target)

    def retrieve(self, keys: Tensor, values: Tensor, query: Tensor) -> Tensor:
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


def sample(setting: int, S: int, batch: int, gen: torch.Generator) -> dict[str, Tensor]:
    """{"keys", "values"} [batch n], {"query", "target"} [batch]; n = S (setting 1) or 2S (setting 2)."""
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
    return {"keys": keys, "values": values, "query": query, "target": values.gather(1, last[:, None]).squeeze(1)}


def loss_fn(y: Tensor, target: Tensor) -> Tensor:
    return 0.5 * (y - F.one_hot(target, y.shape[-1]).float()).pow(2).sum(-1).mean()


def batches(setting: int, S: int, batch: int, seed: int):
    gen = torch.Generator().manual_seed(seed + 1)
    while True:
        yield sample(setting, S, batch, gen)


def train_one(setting: int, method: str, rule: str, S: int, seed: int, cfg: Config) -> dict:
    """Train one retrieval model until it is solved, plateaus or spends the budget; its best and last eval loss."""
    lr = cfg.lr if cfg.lr is not None else (1e-3 if cfg.d_key >= PAPER_D_KEY else 1e-2)
    with torch.random.fork_rng():  # the init from `seed`, leaving the global generator as it was
        torch.manual_seed(seed)
        model = Retrieval(method, S, rule, cfg.d_key)
    eval_batch = sample(setting, S, cfg.eval_size, torch.Generator().manual_seed(seed + 2))

    @torch.no_grad()
    def eval_loss(trainer: Trainer) -> float:
        return trainer.model(**{k: v.to(trainer.device) for k, v in eval_batch.items()}, return_type="loss").item()

    stop = EarlyStopping(eval_loss, every=cfg.eval_every, target=SOLVED, patience=cfg.patience)
    train = TrainConfig(steps=cfg.max_steps, lr=lr, optimizer="adam", weight_decay=0.0, grad_clip=None, seed=seed,
                        log_every=cfg.eval_every, progress=False)
    trainer = Trainer(model, batches(setting, S, cfg.batch, seed), None, train, callbacks=[stop])
    trainer.fit()
    curve = [v for _, v in stop.history]
    p = cfg.patience  # for unsolved runs: best loss before the last `patience` evaluations over the best within them
    gain = min(curve[:-p]) / min(curve[-p:]) if len(curve) > p else math.nan
    reason = {"target": "solved", "plateau": "plateau"}.get(stop.reason, "budget")
    return {"d_phi": d_phi(method, cfg.d_key), "best_loss": stop.best, "final_loss": curve[-1], "steps": trainer.step,
            "solved": stop.best <= SOLVED, "stop": reason, "last_gain": gain, "curve": curve}


def variants(cfg: Config) -> list[dict]:
    out = [{"setting": 1, "method": m, "rule": "sum", "S": S} for m in cfg.setting1_methods
           for S in (cfg.setting1_S or default_S(m, cfg.d_key))]
    return out + [{"setting": 2, "method": m, "rule": r, "S": S} for m in cfg.setting2_methods
                  for r in ("sum", "delta") for S in cfg.setting2_S]


def experiment(cfg: Config) -> Outcome:
    for m in (*cfg.setting1_methods, *cfg.setting2_methods):
        if m not in METHODS:
            raise ValueError(f"method {m!r} is not one of {tuple(METHODS)}")
    if "softmax" in cfg.setting2_methods:
        raise ValueError("setting2_methods compare the sum and delta rules: softmax has no delta rule")
    table = grid(partial(train_one, cfg=cfg), variants(cfg), cfg.seeds, desc="capacity")
    return Outcome(table.drop(columns="curve"), summary={"d_key": cfg.d_key, "solved: eval loss <=": SOLVED})


# ---- verdicts: each a per-seed quantity ---------------------------------------------------------------------------
def _by_seed(table: pd.DataFrame, fn, what: str) -> tuple[np.ndarray, list[int]]:
    """fn(rows of one seed) -> value or None for every seed; the seeds with a value; all rows."""
    values = [v for _, g in table.groupby("seed") if (v := fn(g)) is not None]
    if not values:
        raise ValueError(f"the sweep has no runs that measure {what}; check the configured methods and S")
    return np.array(values, dtype=float), [int(i) for i in table.index]


def lower_where_failing(g: pd.DataFrame, pairs: list[tuple[str, str]]) -> float | None:
    """Mean over `pairs` (small, large) and the S both tried where `small` fails of log10(loss small / loss large)."""
    loss = g.pivot_table(index="S", columns="method", values="best_loss")
    gaps = [np.log10(loss.at[S, a] / loss.at[S, b]) for a, b in pairs for S in loss.index
            if not np.isnan(loss.at[S, a]) and not np.isnan(loss.at[S, b]) and loss.at[S, a] > SOLVED]
    return float(np.mean(gaps)) if gaps else None


def largest_solved(g: pd.DataFrame, method: str) -> int:
    solved = g[(g["method"] == method) & g["solved"]]["S"]
    return int(solved.max()) if len(solved) else 0


def verdicts(table: pd.DataFrame) -> list:
    s1 = table[(table["setting"] == 1) & (table["rule"] == "sum")]
    det = [m for m in DETERMINISTIC if m in set(s1["method"])]
    pairs = list(zip(det, det[1:]))
    d = s1[s1["method"].isin(det)]
    smallest = d[d["S"] == d.groupby("method")["S"].transform("min")]
    fav = s1[s1["method"].isin(FAVOR)]
    s2 = table[table["setting"] == 2]
    solved2 = s2.groupby(["seed", "rule"])["solved"].sum().unstack("rule")
    return [
        judge(CLAIMS[0], *per_seed(smallest, "solved", "mean")),
        judge(CLAIMS[1], *per_seed(d[d["S"] >= 2 * d["d_phi"]], "best_loss", "min")),
        judge(CLAIMS[2], *_by_seed(d, lambda g: lower_where_failing(g, pairs), "a failing deterministic map")),
        judge(CLAIMS[3], *_by_seed(d, lambda g: min(largest_solved(g, b) - largest_solved(g, a) for a, b in pairs),
                                   "two deterministic maps")),
        judge(CLAIMS[4], *per_seed(fav[fav["S"] >= fav["d_phi"] / 2], "best_loss", "min")),
        judge(CLAIMS[5], *_by_seed(fav, lambda g: lower_where_failing(g, [FAVOR]), "a failing FAVOR+ map")),
        judge(CLAIMS[6], *per_seed(s1, "solved", "mean", method="softmax")),
        judge(CLAIMS[7], (solved2["delta"] - solved2["sum"]).sort_index().to_numpy(float), [int(i) for i in s2.index]),
    ]


def figures(outcome: Outcome, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    t = outcome.table
    paths = []
    for setting, g in t.groupby("setting"):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for (method, rule), r in g.groupby(["method", "rule"], sort=False):
            m = r.groupby("S")["best_loss"].agg(["mean", "min", "max"]).clip(lower=1e-6)
            d = r["d_phi"].iloc[0]
            ax.errorbar(m.index, m["mean"], [m["mean"] - m["min"], m["max"] - m["mean"]], fmt="o-", capsize=2,
                        label=f"{method} ({rule}, d_phi = {'inf' if math.isinf(d) else f'{d:g}'})")
        ax.axhline(SOLVED, color="k", ls=":", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="S (number of keys = values)",
               ylabel="best eval loss (mean, range over seeds)",
               title=f"Associative retrieval, setting {setting}, d_key = {outcome.summary['d_key']}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(out / f"capacity_setting{setting}.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


STUDY = Study(
    name="papers.capacity", title="Capacity of linear attention: associative retrieval against d_phi",
    claims=CLAIMS, config=Config(),
    quick=Config(setting1_methods=("softmax", "linear", "dpfp1", "favor64", "favor128"), setting1_S=(4, 16),
                 setting2_S=(4, 8), d_key=8, max_steps=20, eval_every=10, patience=2, eval_size=32, seeds=(0,)),
    experiment=experiment, verdicts=verdicts, figures=figures, description=__doc__)

if __name__ == "__main__":
    main(STUDY)
