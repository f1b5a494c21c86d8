"""``gensweep resume EXPERIMENT``: finish a sweep whose driver died.

At sweep start the runner saves the spec next to Tune's experiment state
(:meth:`RootLayout.resume_spec`; the secrets file only as its path).
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

import datetime as _dt
import os
import posixpath
import time
from typing import Any, Optional

import yaml

from gensweep.platform.spec import ExperimentSpec, SpecError
from gensweep.platform.storage.layout import DEFAULT_ROOT, RootLayout
from gensweep.platform.storage.secrets import with_password
from gensweep.platform.sweep.interrupt import raise_if_interrupted
from gensweep.platform.sweep.outcome import sweep_outcome
from gensweep.platform.sweep.setup import (
    checked_experiment,
    optuna_storage_url,
    setup_sweep,
    sweep_trainable,
)

LOST_REASON = ("lost when the sweep's driver died: started after Tune's last experiment checkpoint, so the"
               " resumed sweep did not know it (another trial ran in its place)")


class ResumeError(SpecError):
    """Nothing to resume, or the saved state cannot be used (the CLI exits 2)."""


def load_resume_spec(experiment: str, layout: RootLayout) -> ExperimentSpec:
    from gensweep.platform.spec import parse_spec
    from gensweep.platform.storage.artifacts import get_bytes

    uri = layout.resume_spec(experiment)
    try:
        text = get_bytes(uri).decode()
    except FileNotFoundError:
        raise ResumeError(f"experiment {experiment!r}: no saved spec at {uri}; nothing to resume"
                          " (check the experiment id and --root)") from None
    except OSError as e:
        raise ResumeError(f"experiment {experiment!r}: cannot read {uri}: {e}") from None
    return parse_spec(yaml.safe_load(text))


def resume_sweep(experiment: str, *, root: str = DEFAULT_ROOT, address: Optional[str] = None,
                 num_cpus: Optional[int] = None, verbose: int = 1):
    """``verbose`` as :func:`~gensweep.platform.sweep.runner.run_sweep`'s (the restored sweep's
    progress callback writes to this console)."""
    from gensweep.platform.sweep.console import sweep_console

    checked_experiment(experiment)
    spec = load_resume_spec(experiment, RootLayout.of(root))
    with sweep_console(spec, experiment, verbose):
        return _resume(experiment, spec, RootLayout.of(root), address, num_cpus)


def _resume(experiment: str, spec: ExperimentSpec, layout: RootLayout, address: Optional[str],
            num_cpus: Optional[int]):
    from ray import tune

    t0 = time.perf_counter()
    storage_uri = layout.ray
    path, storage_filesystem = _tune_state(experiment, layout)
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
    raise_if_interrupted(experiment)  # the GracefulStop callback was restored with the Tuner
    reconcile(spec, setup, _trial_ids(grid))
    return sweep_outcome(spec, setup, grid, t0)


def _tune_state(experiment: str, layout: RootLayout) -> tuple[str, Any]:
    """Where Tune keeps ``experiment``'s state, and the filesystem to read it with."""
    from gensweep.platform.storage.tune_storage import storage_for

    storage_path, storage_filesystem = storage_for(layout.ray)
    # a pyarrow filesystem takes the scheme-less path; a local path is used as it is
    path = (posixpath.join if storage_filesystem is not None else os.path.join)(storage_path, experiment)
    return path, storage_filesystem


def resumable(experiment: str, root: str) -> bool:
    """``experiment`` is in the store with a spec and Tune state to resume from (``gensweep run --or-resume``)."""
    from ray import tune

    layout = RootLayout.of(root)
    try:
        load_resume_spec(experiment, layout)
    except ResumeError:
        return False
    path, storage_filesystem = _tune_state(experiment, layout)
    return tune.Tuner.can_restore(path, storage_filesystem=storage_filesystem)


def _trial_ids(grid: Any) -> set[str]:
    analysis = getattr(grid, "_experiment_analysis", None)
    trials = getattr(analysis, "trials", None)
    if trials is not None:
        return {t.trial_id for t in trials}
    return {r.metrics.get("trial_id") for r in grid if r.metrics and r.metrics.get("trial_id")}


def reconcile(spec: ExperimentSpec, setup: Any, tune_trials: set[str]) -> list[str]:
    """Give every trial the dead driver left behind a final status; returns the trial ids fixed."""
    from gensweep.platform.results import ResultsStore, TrialStatus
    from gensweep.platform.results.schema import ROW_KEY, WRITTEN_AT

    store = ResultsStore.open(setup.root)
    trials = store.read("trials", setup.experiment)
    fixed: list[str] = []
    if not trials.empty:
        lost = trials[(trials["status"] == TrialStatus.RUNNING) & ~trials["trial_id"].isin(tune_trials)]
        rows = []
        now = _dt.datetime.now(_dt.timezone.utc)
        for _, row in lost.iterrows():
            new = {k: v for k, v in row.items() if k not in (ROW_KEY, WRITTEN_AT) and not _is_missing(v)}
            new.update(status=TrialStatus.FAILED.value, reason=LOST_REASON, ended_at=now)
            rows.append(new)
            fixed.append(str(row["trial_id"]))
        if rows:
            store.write("trials", rows)
    url = optuna_storage_url(spec, setup.root)
    if url and spec.search.algorithm in ("optuna-tpe", "random"):
        import optuna

        try:
            study = optuna.load_study(study_name=setup.experiment, storage=with_password(url))
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
