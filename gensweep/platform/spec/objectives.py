"""Multi-objective search: ``search.metrics``, a list of objectives (name and direction).

``search.metric``/``search.mode`` name one objective; ``search.metrics`` several (at least two),
e.g. ``[{name: fid, mode: min}, {name: gpu_hours, mode: min}]``. They are exclusive: a spec that
sets both fails, unless ``metric``/``mode`` repeat the first objective (as a saved spec does). The
first objective is the primary one: schedulers that rank trials by one metric (ASHA), the
leaderboard's order and the choice of the best sampling-time setting use it. Every objective must
be a metric the trials report: an evaluation metric (``eval.metrics``), a cost the platform adds to
every report (:data:`PLATFORM_COSTS`) or one the family's loop reports (``Family.reports``).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from gensweep.platform.metrics.protocol import METRICS
from gensweep.trainables.families import FAMILIES

# cumulative compute of the trial up to each report, from what one trial holds (see trial/context.py)
PLATFORM_COSTS = ("gpu_hours", "cpu_hours")


class Objective(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    mode: Literal["min", "max"] = "min"


def primary_from_objectives(search: Any) -> Any:
    """``search.metric``/``mode`` become the first objective's (an error when the spec set them otherwise)."""
    if not search.metrics:
        return search
    first = search.metrics[0]
    for field, want in (("metric", first.name), ("mode", first.mode)):
        if field in search.model_fields_set and getattr(search, field) != want:
            raise ValueError(f"metrics is exclusive with {field}: {field} is {getattr(search, field)!r}, the first"
                             f" objective's {field} is {want!r}; set one of them")
        search.__dict__[field] = want  # not marked as set by the user
    names = [o.name for o in search.metrics]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"search.metrics: {', '.join(dupes)} listed twice")
    return search


def reported_metrics(spec: Any) -> list[str]:
    """Metrics every trial of ``spec`` reports at each evaluation, by name."""
    columns = [c for name in spec.eval.metrics for c in METRICS.get(name).columns]  # pr: precision, recall
    return list(dict.fromkeys([*spec.eval.metrics, *columns, *PLATFORM_COSTS, *FAMILIES.get(spec.family).reports]))


def check_objectives(spec: Any) -> Any:
    """Each of ``search.metrics`` is reported by the trials (the error names the objective)."""
    known = reported_metrics(spec)
    for i, objective in enumerate(spec.search.metrics or []):
        if objective.name not in known:
            raise ValueError(f"search.metrics.{i}.name: {objective.name!r} is not reported by {spec.family!r} trials"
                             f" with eval.metrics {list(spec.eval.metrics)}; reported: {', '.join(known)}")
    return spec
