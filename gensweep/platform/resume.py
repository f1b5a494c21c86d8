"""``gensweep resume EXPERIMENT``: finish a sweep whose driver died.

At sweep start the runner saves the spec next to Tune's experiment state
(``<ray storage>/<experiment>/gensweep_spec.yaml``; the secrets file only as its path).
Resuming loads it, prepares the same trial plan (the dataset and reference statistics are
found, not rebuilt), builds the same ``with_parameters`` trainable and calls
``tune.Tuner.restore(path, trainable=..., resume_unfinished=True, resume_errored=...)``.

What comes back, and from where:

* **Trials** (configs, statuses, last results): Tune's experiment state, which Tune saves
  periodically. Trials that were running are started again; each one's ``TorchTrainer`` run
  has the same name, so it continues from its latest Train checkpoint (models, optimizers, EMA,
  augmentation state, step, RNG) rather than from step 0. Finished trials stay finished;
  errored (failed or diverged) trials stay errored.
* **Searcher**: OptunaSearch is saved by Tune with the experiment state (its sampler, the
  study, and the Tune-trial -> Optuna-trial map); with an RDB study (the default for a local
  results root, ``<root>/optuna.db``) the study itself is durable as well. New trials are
  suggested from the restored study.
* **Scheduler**: Tune does not checkpoint scheduler state; the ASHA scheduler is the one
  pickled with the Tuner, i.e. *re-seeded empty*: its rungs only see results reported after
  the resume (restored trials are re-added to it, and reach its milestones again as they report).
* **Results store**: rows the dead driver still held in memory come back from the results
  callback's write-ahead journal and are re-sent under the same row keys (no duplicates); the
  report of the checkpoint a trial resumes from, if the dead driver never received it, is
  written by the resumed worker from the copy saved in that checkpoint.

Reconciliation after the resumed sweep ends: a trial the dead driver had started after Tune's
last experiment checkpoint is unknown to the restored state (a new trial ran in its place);
its ``running`` row in the store becomes ``failed`` with a reason saying so, and Optuna trials
left RUNNING by the dead driver are marked FAIL, so every trial ends exactly once with a final
status.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import posixpath
import sys
import time
from typing import Any, Optional

import yaml

from gensweep.platform.spec import ExperimentSpec, SpecError

RESUME_FILE = "gensweep_spec.yaml"
LOST_REASON = ("lost when the sweep's driver died: started after Tune's last experiment checkpoint, so the"
               " resumed sweep did not know it (another trial ran in its place)")


class ResumeError(SpecError):
    """Nothing to resume, or the saved state cannot be used (the CLI exits 2)."""


def resume_spec_uri(ray_storage: str, experiment: str) -> str:
    from gensweep.platform.data.storage import join_uri

    return join_uri(ray_storage, experiment, RESUME_FILE)


def save_resume_spec(spec: ExperimentSpec, setup: Any) -> str:
    """Save what ``gensweep resume`` needs: the full spec (the secrets file as a path only)."""
    from gensweep.platform.artifacts import put_bytes

    doc = spec.model_dump(mode="json")
    doc["results"]["root"] = setup.root
    if spec.data.storage and spec.data.storage.secrets_file:
        doc["data"]["storage"]["secrets_file"] = spec.data.storage.secrets_file
    uri = resume_spec_uri(setup.plan.train_storage_path, setup.experiment)
    return put_bytes(uri, yaml.safe_dump(doc, sort_keys=False).encode())


def load_resume_spec(experiment: str, ray_storage: str) -> ExperimentSpec:
    from gensweep.platform.artifacts import get_bytes
    from gensweep.platform.spec import parse_spec

    uri = resume_spec_uri(ray_storage, experiment)
    try:
        text = get_bytes(uri).decode()
    except FileNotFoundError:
        raise ResumeError(f"experiment {experiment!r}: no saved spec at {uri}; nothing to resume"
                          " (check the experiment id and --root)") from None
    except OSError as e:
        raise ResumeError(f"experiment {experiment!r}: cannot read {uri}: {e}") from None
    return parse_spec(yaml.safe_load(text))


def resume_sweep(experiment: str, *, root: str = "./gensweep_results", address: Optional[str] = None,
                 num_cpus: Optional[int] = None, verbose: int = 1):
    from ray import tune

    from gensweep.platform.ray_storage import storage_for
    from gensweep.platform.runner import absolute_root, setup_sweep, sweep_outcome, sweep_trainable, train_storage_path

    t0 = time.perf_counter()
    root = absolute_root(root)
    storage_uri = train_storage_path(root)
    spec = load_resume_spec(experiment, storage_uri)
    storage_path, storage_filesystem = storage_for(storage_uri)
    # a pyarrow filesystem takes the scheme-less path; a local path is used as it is
    path = (posixpath.join if storage_filesystem is not None else os.path.join)(storage_path, experiment)
    if not tune.Tuner.can_restore(path, storage_filesystem=storage_filesystem):
        raise ResumeError(f"experiment {experiment!r}: no Tune experiment state under {storage_uri}; nothing to resume")
    setup = setup_sweep(spec, experiment, address, num_cpus)
    print(f"[gensweep] resuming {experiment} from {storage_uri}", flush=True)
    tuner = tune.Tuner.restore(
        path,
        trainable=sweep_trainable(spec, setup),
        resume_unfinished=True,
        resume_errored=False,
        restart_errored=False,
        storage_filesystem=storage_filesystem,
    )
    grid = tuner.fit()
    reconcile(spec, setup, _trial_ids(grid))
    return sweep_outcome(spec, setup, grid, t0)


def _trial_ids(grid: Any) -> set[str]:
    analysis = getattr(grid, "_experiment_analysis", None)
    trials = getattr(analysis, "trials", None)
    if trials is not None:
        return {t.trial_id for t in trials}
    return {r.metrics.get("trial_id") for r in grid if r.metrics and r.metrics.get("trial_id")}


def reconcile(spec: ExperimentSpec, setup: Any, tune_trials: set[str]) -> list[str]:
    """Give every trial the dead driver left behind a final status; returns the trial ids fixed."""
    from gensweep.platform.results import ResultsStore
    from gensweep.platform.results.schema import ROW_KEY, WRITTEN_AT
    from gensweep.platform.runner import optuna_storage_url

    store = ResultsStore.open(setup.root)
    trials = store.read("trials", setup.experiment)
    fixed: list[str] = []
    if not trials.empty:
        lost = trials[(trials["status"] == "running") & ~trials["trial_id"].isin(tune_trials)]
        rows = []
        now = _dt.datetime.now(_dt.timezone.utc)
        for _, row in lost.iterrows():
            new = {k: v for k, v in row.items() if k not in (ROW_KEY, WRITTEN_AT) and not _is_missing(v)}
            new.update(status="failed", reason=LOST_REASON, ended_at=now)
            rows.append(new)
            fixed.append(str(row["trial_id"]))
        if rows:
            store.write("trials", rows)
    url = optuna_storage_url(spec, setup.root)
    if url and spec.search.algorithm in ("optuna-tpe", "random"):
        import optuna

        try:
            study = optuna.load_study(study_name=setup.experiment, storage=url)
        except KeyError:  # no study of that name
            return fixed
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    return fixed


def _is_missing(value: Any) -> bool:
    try:
        import pandas as pd

        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def cmd_resume(args: argparse.Namespace) -> int:
    try:
        outcome = resume_sweep(args.experiment, root=args.root, address=args.address, num_cpus=args.num_cpus)
    except SpecError as e:
        print(f"gensweep: {e}", file=sys.stderr)
        return 2
    from gensweep.platform.report_text import print_outcome

    print_outcome(outcome)
    return 0 if outcome.num_errors == 0 else 1


def register(subparsers) -> None:
    p = subparsers.add_parser("resume", help="finish a sweep whose driver died (restores Tune's experiment state)")
    p.add_argument("experiment", help="experiment id (as given to or printed by `gensweep run`)")
    p.add_argument("--root", default="./gensweep_results", help="results root of the sweep (local path or s3://)")
    p.add_argument("--address", help="Ray cluster address (default: start a local instance)")
    p.add_argument("--num-cpus", type=int, help="CPUs for a local Ray instance (default: all)")
    p.set_defaults(func=cmd_resume)
