"""The rows a sweep writes into the ``trials``, ``metrics`` and ``artifacts`` tables.

:func:`metrics_row` is the one place a metrics row is made: by the results callback for each
reported result, by a resumed trial that backfills the report saved with its checkpoint, and
by a re-evaluation of a checkpoint. Rows are plain dicts; the store normalises their values.
"""
from __future__ import annotations

import datetime as _dt
import math
import numbers
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .schema import CONFIG_PREFIX, SAMPLING, SAMPLING_ROW, flatten, is_scalar, make_row_key, normalize_value, to_json
from .schema import flatten_config as _flatten_config
from .status import TrialStatus

if TYPE_CHECKING:  # pragma: no cover
    from ray.tune.experiment import Trial

ConfigFlattener = Callable[[Mapping[str, Any]], Mapping[str, Any]]

# The column the replicates (seeds) of one sampled config share; a flattener's name, not a config/ one.
CONFIG_ID = "config_id"

# Columns every metrics row has; a reported value of the same name is kept as ``result/<name>``.
# (``wall_time_s`` was the report's timestamp in stores written before ``reported_at``.)
RESERVED = frozenset({"experiment", "trial_id", "step", "row_key", "written_at", "reported_at", "wall_time_s"})

# A reported ``artifact/<kind>: <uri>`` (e.g. ``artifact/sample_grid``) becomes an artifacts row.
ARTIFACT_PREFIX = "artifact/"

# Tune bookkeeping in a result that is not worth a metrics column (or is stored elsewhere).
TUNE_BOOKKEEPING = frozenset(
    {
        "config",
        "date",
        "hostname",
        "node_ip",
        "pid",
        "experiment_tag",
        "experiment_id",
        "checkpoint_dir_name",
        "should_checkpoint",
        "done",
        "timestamp",
        "trial_id",
        "time_since_restore",
        "iterations_since_restore",
        "timesteps_since_restore",
    }
)


def metrics_row(
    experiment: str,
    trial_id: str,
    step: Any,
    metrics: Mapping[str, Any],
    *,
    reported_at: float,
    columns: Mapping[str, Any] | None = None,
    **flags: Any,
) -> dict[str, Any]:
    """One ``metrics`` row: the key columns and ``reported_at`` (when reported; given in epoch seconds),
    the scalar ``metrics`` (nested mappings flattened with ``/``), then ``flags`` (e.g.
    ``backfilled=True``) and the trial's ``columns`` (its ``config/...`` values).

    ``artifact/...`` values (artifacts rows) and non-scalar values are left out, ``metrics``'
    own ``step`` is ignored, and a metric named like a key column is kept as ``result/<name>``.
    """
    row: dict[str, Any] = {
        "experiment": experiment,
        "trial_id": trial_id,
        "step": step,
        "reported_at": utc(float(reported_at)),
    }
    for key, value in flatten(metrics).items():
        if key == "step" or key.startswith(ARTIFACT_PREFIX) or not is_scalar(value):
            continue
        if key in RESERVED:
            key = f"result/{key}"
        row[key] = value.item() if hasattr(value, "item") else value
    row.update(flags)
    row.update(columns or {})
    return row


def setting_rows(
    experiment: str,
    trial_id: str,
    step: Any,
    metrics: Mapping[str, Any],
    settings: Mapping[str, Mapping[str, Any]],
    *,
    reported_at: float,
    columns: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One ``metrics`` row per sampling-time setting a report scored (``settings``: tag -> setting):
    its ``<name>/<tag>`` values under their plain names, tagged with ``sampling`` (the tag),
    ``sampling/<field>`` (the setting) and ``sampling_row`` (leaderboards and curves leave such rows
    out: the report's own row holds the setting the trial chose). Its row key adds the tag."""
    rows = []
    for tag, setting in settings.items():
        suffix = f"/{tag}"
        scores = {k[: -len(suffix)]: v for k, v in metrics.items() if k.endswith(suffix)}
        if not scores:
            continue
        tagged = {SAMPLING: tag, SAMPLING_ROW: True, **{f"{SAMPLING}/{k}": v for k, v in setting.items()}}
        row = metrics_row(experiment, trial_id, step, scores, reported_at=reported_at,
                          columns={**(columns or {}), **tagged})
        row["row_key"] = make_row_key(experiment, trial_id, step, tag)
        rows.append(row)
    return rows


def headline_metrics(metrics: Mapping[str, Any], tags: Any) -> dict[str, Any]:
    """A report without its ``<name>/<tag>`` values of the sampling settings ``tags`` (rows of their own)."""
    suffixes = tuple(f"/{tag}" for tag in tags)
    return {k: v for k, v in metrics.items() if not (suffixes and str(k).endswith(suffixes))}


def result_step(result: Mapping[str, Any]) -> Any:
    """The step of a Tune result: its reported ``step``, else Tune's ``training_iteration``."""
    step = result.get("step")
    if not isinstance(step, numbers.Number) or isinstance(step, bool):
        step = result.get("training_iteration", 0)
    return step


def result_metrics(result: Mapping[str, Any]) -> dict[str, Any]:
    """A Tune result without Tune's bookkeeping (what :func:`metrics_row` takes as ``metrics``)."""
    return {k: v for k, v in result.items() if k not in TUNE_BOOKKEEPING}


def reported_artifacts(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(kind, uri)`` of every ``artifact/<kind>: <uri>`` value of a result."""
    reported = flatten({k: v for k, v in result.items() if str(k).startswith("artifact")})
    return [(key[len(ARTIFACT_PREFIX):], value) for key, value in reported.items()
            if key.startswith(ARTIFACT_PREFIX) and isinstance(value, str) and value]


def artifact_row(experiment: str, trial_id: str, kind: str, uri: str, step: Any) -> dict[str, Any]:
    return {"experiment": experiment, "trial_id": trial_id, "kind": kind, "uri": uri,
            "step": step, "created_at": utc(time.time())}


def config_columns(
    config: Mapping[str, Any], flatten_config: ConfigFlattener | Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``config/...`` columns of a trial config (see ``ResultsCallback(flatten_config=...)``)."""
    if flatten_config is None:
        return _flatten_config(config)
    fn = _mapping_flattener(flatten_config) if isinstance(flatten_config, Mapping) else flatten_config
    out = {}
    for name, value in dict(fn(config)).items():
        column = str(name) if str(name).startswith(CONFIG_PREFIX) or name == CONFIG_ID else CONFIG_PREFIX + str(name)
        out[column] = normalize_value(value)
    return out


def _mapping_flattener(mapping: Mapping[str, Any]) -> ConfigFlattener:
    """``{"lr": "optimizer/lr", "arch": lambda c: c["model"]["name"]}`` -> flattener."""

    def flatten_with(config: Mapping[str, Any]) -> dict[str, Any]:
        flat = flatten(config)
        out: dict[str, Any] = {}
        for column, source in mapping.items():
            if callable(source):
                try:
                    value = source(config)
                except (KeyError, IndexError, TypeError):
                    value = None
            else:
                value = flat.get(str(source))
            out[column] = value
        return out

    return flatten_with


def trial_row(
    experiment: str,
    trial: "Trial",
    status: TrialStatus,
    reason: str | None,
    *,
    started: float | None,
    last: Mapping[str, Any],
    columns: Mapping[str, Any],
    resources: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """A ``trials`` row: status and reason, config, resources and their CPU/GPU-hours, timing.

    ``started`` is when the trial started (epoch seconds), ``last`` what its last result said
    (``step``, ``time_total_s``), ``resources`` what one trial holds (default: Tune's reservation).
    """
    status = TrialStatus(status)
    now = time.time()
    wall = now - started if started is not None else None
    if last.get("time_total_s") is not None and (wall is None or wall < last["time_total_s"]):
        wall = float(last["time_total_s"])
    config = dict(getattr(trial, "config", None) or {})
    resources = resources or trial_resources(trial)
    hours = (wall or 0.0) / 3600.0
    seed = config.get("seed")
    if seed is None:
        seed = next((v for k, v in columns.items() if k.endswith("/seed")), None)
    return {
        "experiment": experiment,
        "trial_id": trial.trial_id,
        "status": status.value,
        "reason": reason,
        "config": to_json(config),
        **columns,
        "seed": seed,
        "resources": to_json(resources),
        "wall_time_s": wall,
        "gpu_hours": float(resources.get("GPU", 0.0)) * hours,
        "cpu_hours": float(resources.get("CPU", 0.0)) * hours,
        "last_step": last.get("step"),
        "started_at": utc(started) if started is not None else None,
        "ended_at": utc(now) if status.terminal else None,
        "trial_dir": getattr(trial, "path", None),
    }


def last_result(result: Mapping[str, Any], step: Any) -> dict[str, Any]:
    """What :func:`trial_row` and :func:`ended_outcome` need of a trial's latest result."""
    return {
        "step": step,
        "time_total_s": result.get("time_total_s"),
        "diverged": bool(result.get("diverged", False)),
        "reason": result.get("reason"),
        # Tune sets done=True on the result passed to the callback when it decided to stop
        # the trial (scheduler / stopper); a trainable that simply returns ends without a
        # further result.
        "stop_decided": bool(result.get("done", False)),
        "iteration": result.get("training_iteration"),
    }


def ended_outcome(last: Mapping[str, Any], budget_iterations: int | None) -> tuple[TrialStatus, str | None]:
    """``(status, reason)`` of a trial that ended without an error, from its :func:`last_result`.

    A trial that reported ``diverged`` is ``diverged``; one Tune stopped before it used its
    whole budget (``budget_iterations`` results) is ``stopped``: a stop decided on the last
    result of the budget (ASHA at ``max_t``) is a completion. Anything else is ``completed``.
    """
    if last.get("diverged"):
        return TrialStatus.DIVERGED, str(last.get("reason") or "diverged")
    it = last.get("iteration")
    used_budget = budget_iterations is not None and it is not None and it >= budget_iterations
    if last.get("stop_decided") and not used_budget:
        reason = last.get("reason")
        return TrialStatus.STOPPED, str(reason) if reason is not None else "stopped by scheduler or stopping criterion"
    return TrialStatus.COMPLETED, None


def trial_resources(trial: "Trial") -> dict[str, float]:
    """What Tune reserved for the trial (its placement group's resources)."""
    pgf = getattr(trial, "placement_group_factory", None)
    required = getattr(pgf, "required_resources", None)
    if isinstance(required, Mapping):
        return {str(k): float(v) for k, v in required.items() if not math.isnan(float(v))}
    return {}


def utc(ts: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc)
