"""A synthetic but realistic results store for the report tests (tests/test_report_*.py).

12 trials: a 2 x 2 grid of ``loss`` x ``lr`` with seeds 0, 1, 2 as replicates, each
with an FID series over 5 evaluations, a real PNG sample grid per evaluation, a
trials row with ``wall_time_s`` / ``cpu_hours`` / ``gpu_hours`` and the config columns
a grid sweep's ResultsCallback writes (``config/loss``, ``config/lr``, ``config/seed``).
"""
from __future__ import annotations

import os
from html.parser import HTMLParser

import numpy as np
import pandas as pd

from gensweep.platform.report import ReportData
from gensweep.platform.results import ResultsStore
from gensweep.platform.spec.space import config_id

EXPERIMENT = "ablation-20250301-120000"
STEPS = (100, 200, 300, 400, 500)
LOSS_EFFECT = {"hinge": 20.0, "ns": 40.0}  # the dominant factor
LR_EFFECT = {1e-4: 0.0, 1e-3: 1.5}
SEED_EFFECT = {0: 0.0, 1: 0.6, 2: -0.4}
PALETTE = [(230, 60, 60), (60, 160, 60), (60, 90, 230), (230, 170, 30), (150, 60, 200), (40, 180, 190)]


def best_fid(loss: str, lr: float, seed: int, loss_effect=None, lr_effect=None) -> float:
    return (loss_effect or LOSS_EFFECT)[loss] + (lr_effect or LR_EFFECT)[lr] + SEED_EFFECT[seed]


def grid_trials(loss_effect=None, lr_effect=None) -> list[dict]:
    """The 12 trials: id, config, best FID, cost."""
    out = []
    i = 0
    for loss in ("hinge", "ns"):
        for lr in (1e-4, 1e-3):
            for seed in (0, 1, 2):
                out.append({
                    "trial_id": f"t{i:02d}",
                    "loss": loss,
                    "lr": lr,
                    "seed": seed,
                    "best": best_fid(loss, lr, seed, loss_effect, lr_effect),
                    # cost grows with the trial index; hinge trials at lr 1e-3 are the slowest
                    "cpu_hours": 0.1 + 0.01 * i + (0.05 if (loss == "hinge" and lr == 1e-3) else 0.0),
                    "wall_time_s": 600.0 + 30.0 * i,
                })
                i += 1
    return out


def write_png(path: str, color: tuple[int, int, int], size: int = 64, seed: int = 0) -> str:
    """A small real PNG: a 4 x 4 grid of noisy tiles tinted with ``color``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), 255, dtype=np.uint8)
    tile = size // 4
    for r in range(4):
        for c in range(4):
            noise = rng.integers(0, 90, size=(tile - 2, tile - 2, 1))
            img[r * tile + 1:(r + 1) * tile - 1, c * tile + 1:(c + 1) * tile - 1] = np.clip(
                np.array(color)[None, None, :] - noise, 0, 255)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(img).save(path, format="PNG")
    return path


def fid_series(best: float, trial_index: int) -> list[float]:
    """Decays towards ``best``; every third trial's last evaluation is worse than its best."""
    series = [best + 60.0 * np.exp(-0.9 * k) for k in range(len(STEPS))]
    series[-1] = best
    if trial_index % 3 == 2:  # best at step 400, a bump at 500
        series[-2], series[-1] = best, best + 3.0
    return [float(v) for v in series]


def make_store(root: str, grid_dir: str, *, experiment: str = EXPERIMENT, with_costs: bool = True,
               loss_effect=None, lr_effect=None, workers: int = 2) -> ResultsStore:
    store = ResultsStore.open(root)
    spec_yaml = (f"name: ablation\nfamily: gan\nseed: 0\nresources:\n  workers: {workers}\n"
                 "  cpus_per_worker: 1\nsearch:\n  algorithm: grid\n  seeds: [0, 1, 2]\n")
    store.log_experiment(experiment, spec=spec_yaml, status="completed", seed=0)
    metrics, trials = [], []
    for i, t in enumerate(grid_trials(loss_effect, lr_effect)):
        config = {"config/loss": t["loss"], "config/lr": t["lr"], "config/seed": t["seed"]}
        replicate_group = config_id({"loss": t["loss"], "lr": t["lr"], "seed": t["seed"]})
        for k, (step, fid) in enumerate(zip(STEPS, fid_series(t["best"], i))):
            png = write_png(os.path.join(grid_dir, t["trial_id"], f"samples_{step:06d}.png"),
                            PALETTE[i % len(PALETTE)], seed=1000 * i + k)
            metrics.append({"experiment": experiment, "trial_id": t["trial_id"], "step": step, "fid": fid,
                            "kid": fid / 1000.0, "backbone": "mnist-lenet", "eval_n": 1000,
                            "images_per_s": 500.0 + i, "sample_grid": png,
                            "time_total_s": t["wall_time_s"] * (k + 1) / len(STEPS), "config_id": replicate_group,
                            **config})
        row = {"experiment": experiment, "trial_id": t["trial_id"], "status": "completed", "reason": None,
               "wall_time_s": t["wall_time_s"], "seed": t["seed"], **config}
        if with_costs:
            row.update(cpu_hours=t["cpu_hours"], gpu_hours=0.0)
        trials.append(row)
    store.write("metrics", metrics)
    store.write("trials", trials)
    return store


class Page(HTMLParser):
    """Tables (by id) as lists of rows of cell text, images (by id) as their src."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: dict[str, str] = {}
        self.sections: list[str] = []
        self.tags: set[str] = set()
        self._table = None
        self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.sections.append(a.get("id"))
        elif tag == "table":
            self._table = self.tables.setdefault(a.get("id") or f"anon{len(self.tables)}", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "img":
            self.images[a.get("id")] = a.get("src", "")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._table[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def synthetic_report_data(n_trials: int, n_evals: int = 10, seed: int = 0) -> ReportData:
    """A ReportData of ``n_trials`` trials x ``n_evals`` evaluations, built in memory (no store):
    loss (4 levels), a log-uniform lr, an int width; half the trials stopped after a third of
    the evaluations (ASHA-like); a ``fid_floor`` on every metrics row."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"t{i:05d}" for i in range(n_trials)])
    loss = rng.choice(["ns", "hinge", "lsgan", "rpgan"], n_trials)
    lr = np.exp(rng.uniform(np.log(1e-5), np.log(1e-2), n_trials))
    width = rng.choice([16, 32, 48, 64], n_trials)
    base = 30.0 + 5.0 * (loss == "lsgan") + 4.0 * np.abs(np.log10(lr) + 3.5) + rng.normal(0, 1.0, n_trials)
    last = np.where(rng.random(n_trials) < 0.5, max(1, n_evals // 3), n_evals)
    k = np.concatenate([np.arange(n) for n in last])
    owner = np.repeat(np.arange(n_trials), last)
    fid = base[owner] + 200.0 * np.exp(-0.5 * k) + rng.normal(0, 0.3, k.size)
    metrics = pd.DataFrame({"experiment": "scale", "trial_id": ids[owner], "step": 45 * (k + 1), "fid": fid,
                            "backbone": "mnist-lenet", "eval_n": 1000, "fid_floor": 1.5})
    best = pd.Series(fid).groupby(owner).min().to_numpy()
    best_step = metrics.groupby(owner)["fid"].idxmin().map(metrics["step"]).to_numpy()
    order = np.argsort(best, kind="stable")
    board = pd.DataFrame({"trial_id": ids, "status": np.where(last < n_evals, "stopped", "completed"),
                          "best_fid": best, "best_step": best_step, "last_step": 45 * last, "n_reports": last,
                          "wall_time_s": 20.0 * last, "reason": None, "config/loss": loss, "config/lr": lr,
                          "config/width": width}).iloc[order].reset_index(drop=True)
    per_trial = pd.DataFrame({"trial_id": board["trial_id"], "status": board["status"], "best_fid": board["best_fid"],
                              "best_step": board["best_step"], "last_step": board["last_step"],
                              "loss": board["config/loss"], "lr": board["config/lr"], "width": board["config/width"],
                              "cost_hours": board["wall_time_s"] / 3600.0})
    return ReportData(experiment="scale", metric="fid", mode="min", metrics=metrics, trials=pd.DataFrame(),
                      board=board, per_trial=per_trial, factors=["loss", "lr", "width"], cost_label="hours",
                      cost_note="cost: synthetic wall time")
