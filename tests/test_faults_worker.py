"""Faults inside a trial, on real Ray: a worker killed mid-trial, and a trial that diverges.

One tiny sweep (two Optuna trials: lr 2e-4 and lr 1.0) serves both scenarios, and runs once per
launcher:

* the process running the healthy trial's loop is SIGKILLed (by the PID it reports, as soon as
  its second checkpoint exists, i.e. with most of its six segments still to run): under
  ``launcher: train`` its Ray Train worker, and ``resources.max_failures: 1`` makes Train restart
  the worker group; under ``launcher: inline`` the Tune trial actor itself, and the same setting
  makes Tune restart the trial. Either way the trial resumes from its latest checkpoint, finishes,
  and its metrics series has every step exactly once;
* the lr 1.0 trial diverges (exploding gradient at its first step): status ``diverged`` with
  step and reason in the store, the Optuna trial FAIL (no score), and the sweep goes on (the
  healthy trial completes; the divergence is not counted as an error). Under ``inline`` Tune
  restarts the diverged trial too (``max_failures`` does not tell errors apart); the restarted
  trial finds its divergence record and raises it again without training.

A second test checks, without Ray, that a NaN on one rank of a two-rank gloo group makes
every rank stop at the same step (no rank left in an all-reduce).
"""
from __future__ import annotations

import glob
import json
import math
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from gensweep.platform.results import ResultsStore
from gensweep.platform.sweep.runner import run_sweep
from gensweep.platform.spec import parse_spec
from gensweep.platform.trial.checkpoints import INFO_FILE, REPORT_FILE
from tests.ray_support import ray_local  # noqa: F401 - fixture

pytestmark = pytest.mark.slow

EXP = "faults-run"
GOOD_LR, BAD_LR = 2e-4, 1.0
STEPS = [15, 30, 45, 60, 75, 90]  # an inline segment takes well under a second: enough of them to kill in
# launcher -> (its checkpoint folders under <root>/ray, the title of the process that runs the loop,
# how many evaluations a restart may compute again). Train registers a checkpoint before Tune
# sees its report, so none is. Tune registers an inline trial's checkpoint with a `save` task of
# its own after taking in the result: a kill in between resumes from the checkpoint before, and
# the one evaluation after it is trained again (to the same values: the resume is exact).
LAUNCHERS = {
    "train": (f"{EXP}-*/checkpoint_*", b"RayTrainWorker", 0),  # each trial's own Train run
    "inline": (f"{EXP}/*/checkpoint_*", b"ImplicitFunc", 1),  # Tune's trial folders; the trial actor
}


def _results(tune_dir: Path) -> list[dict]:
    """Every result Tune logged (its JSON logger flushes each one), across trials."""
    out = []
    for path in glob.glob(str(tune_dir / "**" / "result.json"), recursive=True):
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line being written
    return out


class WorkerKiller(threading.Thread):
    """Waits (bounded) for the healthy trial's second checkpoint, then SIGKILLs the process that
    wrote it (by the PID in the report saved with it; only the healthy trial checkpoints). A
    second checkpoint means the first one is registered: a reporting trial waits for its previous
    report to be taken in before it trains on."""

    def __init__(self, checkpoints: str, title: bytes, timeout_s: float = 420.0):
        super().__init__(daemon=True)
        self.checkpoints, self.title, self.timeout_s = checkpoints, title, timeout_s
        self.killed_pid = None
        self.trial_id = None
        self.last_step_before_kill = None
        self.error = None
        self.stop = threading.Event()

    def run(self):
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline and not self.stop.is_set():
            reports = []
            for path in glob.glob(os.path.join(self.checkpoints, REPORT_FILE)):
                try:
                    metrics = json.loads(Path(path).read_text())["metrics"]
                    trial_id = json.loads((Path(path).parent / INFO_FILE).read_text())["trial_id"]
                    reports.append((int(metrics["step"]), int(metrics["worker_pid"]), trial_id))
                except (OSError, ValueError, KeyError):
                    continue  # being written
            if len(reports) >= 2:
                (first, _, trial_id), (_, pid, _) = sorted(reports)[:2]
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    cmdline = b""
                if self.title not in cmdline:
                    self.error = f"pid {pid} is not a running {self.title.decode()} process: {cmdline[:80]!r}"
                    return
                os.kill(pid, signal.SIGKILL)  # the process running the loop only, found by its own report
                self.trial_id, self.last_step_before_kill, self.killed_pid = trial_id, first, pid
                return
            time.sleep(0.05)
        self.error = "no two checkpoints of the healthy trial within the time limit"


def run_sweep_with(killer: WorkerKiller, spec, experiment: str):
    """Run the sweep while ``killer`` watches it; the killer is stopped however the sweep ends."""
    killer.start()
    try:
        return run_sweep(spec, experiment=experiment, verbose=0)
    finally:
        killer.stop.set()
        killer.join(timeout=10)


@pytest.fixture(scope="module", params=sorted(LAUNCHERS))
def faulty_sweep(request, tmp_path_factory, ray_local):
    launcher = request.param
    root = tmp_path_factory.mktemp(f"faults-{launcher}")
    spec = parse_spec({
        "name": "faults",
        "seed": 0,  # Optuna (seeded TPE start-up) then suggests lr 1.0 and lr 2e-4
        "trainable": {"steps": STEPS[-1], "eval_every": STEPS[0], "width": 8, "z_dim": 16, "batch_size": 32,
                      "num_classes": 0, "grid_size": 16},
        "space": {"lr": [GOOD_LR, BAD_LR]},
        "search": {"algorithm": "optuna-tpe", "num_trials": 2, "max_concurrent": 2},
        "scheduler": {"kind": "none"},
        "resources": {"workers": 1, "cpus_per_worker": 0.9, "max_failures": 1, "launcher": launcher},
        "eval": {"num_samples": 200, "ref_samples": 1000, "metrics": ["fid"]},
        "results": {"root": str(root)},
    })
    checkpoints, title, _ = LAUNCHERS[launcher]
    killer = WorkerKiller(str(root / "ray" / checkpoints), title)
    outcome = run_sweep_with(killer, spec, EXP)
    store = ResultsStore.open(str(root))
    return {"launcher": launcher, "root": root, "outcome": outcome, "killer": killer, "store": store,
            "trials": store.read("trials", EXP), "metrics": store.read("metrics", EXP),
            "raw_metrics": store.read("metrics", EXP, dedupe_rows=False)}


def _trial_with_lr(trials, lr):
    ids = trials.loc[trials["config/lr"] == lr, "trial_id"].unique()
    assert len(ids) == 1, f"expected one trial with lr={lr} (Optuna's seeded suggestions), got {list(ids)}"
    return ids[0]


def test_killed_worker_restarts_from_checkpoint_without_gaps(faulty_sweep):
    killer = faulty_sweep["killer"]
    assert killer.error is None, killer.error
    assert killer.killed_pid is not None
    metrics, raw, trials = faulty_sweep["metrics"], faulty_sweep["raw_metrics"], faulty_sweep["trials"]
    tid = _trial_with_lr(trials, GOOD_LR)
    assert tid == killer.trial_id

    row = trials.set_index("trial_id").loc[tid]
    assert row["status"] == "completed", row.to_dict()

    rows = metrics[metrics["trial_id"] == tid].sort_values("step")
    assert list(rows["step"]) == STEPS  # no gap, no duplicate
    assert all(math.isfinite(v) for v in rows["fid"])
    # the restarted worker group (train) or trial actor (inline) resumed from the latest
    # checkpoint the killed process had made (and had registered)
    resumed = rows["resumed_from_step"].dropna().unique()
    assert len(resumed) == 1 and resumed[0] >= killer.last_step_before_kill, rows[["step", "resumed_from_step"]]
    before, after = rows[rows["step"] <= resumed[0]], rows[rows["step"] > resumed[0]]
    assert len(after) >= 1 and (after["resumed_from_step"] == resumed[0]).all()
    assert (before["worker_pid"] == killer.killed_pid).all()
    assert (after["worker_pid"] != killer.killed_pid).all()  # a new worker process did the rest

    # every row of a step holds the same values, however often it was computed or sent; the
    # extra rows are the restarted process's backfill of the checkpoint it resumed from (a copy)
    # and, at most, the evaluations the launcher may compute again, right after that checkpoint.
    # The store compacts the experiment when the sweep ends (one deduplicated part per table),
    # so its raw rows no longer show which steps were computed twice: Tune's logs do.
    raw_rows = raw[raw["trial_id"] == tid]
    for step, same in raw_rows.groupby("step"):
        assert same["fid"].nunique() == 1, (step, same)
    computed = raw_rows.loc[raw_rows["backfilled"] != True, "step"]  # noqa: E712
    assert sorted(set(computed)) == STEPS
    # Tune saw a result per evaluation: once each, but for those computed again; Tune's
    # result.json holds them all although an inline restart restores it from the last synced
    # copy (TrialLogsUpload uploads it first; without that, CI once lost step 30 here)
    results = [r for r in _results(faulty_sweep["root"] / "ray" / EXP) if r.get("trial_id") == tid]
    seen = Counter(r["step"] for r in results)
    again = sorted((seen - Counter(STEPS)).elements())
    allowed = [s for s in STEPS if s > resumed[0]][:LAUNCHERS[faulty_sweep["launcher"]][2]]
    assert set(seen) == set(STEPS), sorted(seen.elements())
    assert sorted(again) == sorted(set(again)) and set(again) <= set(allowed), (again, allowed)


def test_divergence_is_recorded_and_the_sweep_goes_on(faulty_sweep):
    import optuna

    outcome, metrics, trials = faulty_sweep["outcome"], faulty_sweep["metrics"], faulty_sweep["trials"]
    bad = _trial_with_lr(trials, BAD_LR)
    good = _trial_with_lr(trials, GOOD_LR)
    by_id = trials.set_index("trial_id")
    assert by_id.loc[bad, "status"] == "diverged"
    reason = by_id.loc[bad, "reason"]
    assert reason.startswith("diverged at step 0: ") and ("gradient norm" in reason or "loss is" in reason), reason
    assert by_id.loc[good, "status"] == "completed"  # the sweep went on
    assert outcome.num_errors == 0 and outcome.num_diverged == 1

    assert by_id.loc[bad, "last_step"] == 0
    assert metrics[metrics["trial_id"] == bad].empty  # no score was ever reported for it

    # the searcher was told "failed", not given a score
    study = optuna.load_study(study_name=EXP, storage=f"sqlite:///{faulty_sweep['root']}/optuna.db")
    states = {t.params["lr"]: t.state for t in study.trials}
    assert states[BAD_LR] == optuna.trial.TrialState.FAIL
    assert states[GOOD_LR] == optuna.trial.TrialState.COMPLETE
    good_value = next(t.value for t in study.trials if t.params["lr"] == GOOD_LR)
    assert math.isfinite(good_value)


# ------------------------------------------------------------- ranks agree (no Ray)
def _rank_main(rank: int, world: int, init_file: str, queue) -> None:
    import torch
    import torch.distributed as dist

    from gensweep.platform.trial.context import RayTrainContext
    from gensweep.trainables.context import LocalContext
    from gensweep.trainables.errors import Diverged
    from gensweep.trainables.gan.trainable import train_gan

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=__import__("datetime").timedelta(seconds=60))

    class TwoRankContext(LocalContext):
        broadcast_parameters = RayTrainContext.broadcast_parameters  # the platform's real collectives
        reduce_gradients = RayTrainContext.reduce_gradients

    def batches(epoch):
        g = torch.Generator().manual_seed(rank)
        for i in range(8):
            x = torch.rand(16, 1, 16, 16, generator=g) * 2 - 1
            if rank == 1 and i == 2:
                x = x * float("nan")  # only rank 1, only its third batch
            yield {"image": x, "label": torch.zeros(16, dtype=torch.long)}

    ctx = TwoRankContext({"steps": 6, "eval_every": 100, "batch_size": 16, "resolution": 16, "width": 8, "z_dim": 8,
                          "num_classes": 0, "grid_size": 4}, batches)
    ctx.rank, ctx.world_size = rank, world
    try:
        train_gan(ctx)
        queue.put((rank, None, None))
    except Diverged as e:
        queue.put((rank, e.step, e.reason))
    except Exception as e:  # noqa: BLE001
        queue.put((rank, "error", f"{type(e).__name__}: {e}"))
    finally:
        dist.destroy_process_group()


def test_nan_on_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_rank_main, args=(r, 2, str(tmp_path / "pg"), queue)) for r in range(2)]
    for p in procs:
        p.start()
    try:
        got = dict((r, (s, why)) for r, s, why in (queue.get(timeout=180) for _ in procs))
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert got[0][0] == got[1][0] == 2, got  # both at step 2 (the poisoned batch), none hung
    assert got[1][1] == "D_main loss is nan"
    assert got[0][1].startswith("D_main gradient norm is nan")
