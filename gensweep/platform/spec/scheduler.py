"""The ``scheduler`` section: how Tune stops, or breeds, trials (ASHA, Hyperband, PBT, or none).

``grace_period`` and ``perturbation_interval`` count evaluations (``trainable.eval_every`` steps
each), like every budget in the spec; the builders in :mod:`gensweep.platform.sweep.schedulers`
turn them into Tune's units.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gensweep.platform.spec.space import Categorical, Integer, Uniform


class SchedulerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["asha", "hyperband", "pbt", "none"] = "asha"
    grace_period: int = Field(1, ge=1, description="evaluations before a trial can be stopped (asha)")
    reduction_factor: float = Field(2.0, gt=1.0, description="asha's and hyperband's eta")
    perturbation_interval: int = Field(
        2, ge=1, description="pbt: evaluations between two exploit/explore decisions of a trial")
    mutations: list[str] | None = Field(
        None, min_length=1, description="pbt: the space parameters explore perturbs; unset: every"
        " unconditional uniform, loguniform or int parameter")
    quantile_fraction: float = Field(
        0.25, gt=0.0, le=0.5, description="pbt: the bottom fraction that clones the top fraction")
    resample_probability: float = Field(
        0.25, ge=0.0, le=1.0, description="pbt: chance that explore draws a value anew instead of perturbing it")


def pbt_mutations(spec: Any) -> list[str]:
    """The parameters PBT's explore step perturbs (``scheduler.mutations``, or its default)."""
    if spec.scheduler.mutations is not None:
        return list(spec.scheduler.mutations)
    return [name for name, p in spec.space.params.items() if isinstance(p, (Uniform, Integer)) and not p.when]


def check_scheduler(spec: Any) -> Any:
    """Check ``spec`` (the :class:`~.experiment.ExperimentSpec` being validated): Hyperband and PBT
    run without a cap on live trials; PBT clones one trial's checkpoint into another: inline
    (single-process) trials only, a random first generation of at least two, and mutations that
    name unconditional space parameters."""
    sch = spec.scheduler
    if sch.kind in ("hyperband", "pbt") and spec.search.max_concurrent is not None:
        raise ValueError(f"search.max_concurrent: {sch.kind} needs its trials live together (Tune queues those the"
                         " cluster cannot run yet); leave it unset")
    if sch.kind != "pbt":
        if sch.mutations is not None:
            raise ValueError(f"scheduler.mutations: only pbt perturbs parameters; scheduler.kind is {sch.kind!r}")
        return spec
    if spec.search.algorithm != "random":
        raise ValueError(f"search.algorithm: pbt breeds its population from a random first generation; use 'random'"
                         f" (not {spec.search.algorithm!r})")
    if not spec.resources.inline:
        raise ValueError("scheduler.kind: pbt clones checkpoints between trials run inline; set resources.workers: 1"
                         " (resources.launcher: auto or inline)")
    if spec.search.num_trials * len(spec.replicate_seeds()) < 2:
        raise ValueError("search.num_trials: pbt needs a population of at least 2 trials")
    names = pbt_mutations(spec)
    if not names:
        raise ValueError("scheduler.mutations: the space has no uniform, loguniform or int parameter for pbt to"
                         " perturb; list the parameters to perturb")
    for name in names:
        p = spec.space.params.get(name)
        if p is None:
            raise ValueError(f"scheduler.mutations: {name!r} is not a space parameter; allowed:"
                             f" {', '.join(spec.space.params) or '(empty space)'}")
        if p.when:
            raise ValueError(f"scheduler.mutations: {name!r} is conditional (when: ...); pbt perturbs parameters"
                             " every trial has")
        if not isinstance(p, (Categorical, Uniform, Integer)):  # pragma: no cover - the Param union
            raise ValueError(f"scheduler.mutations: {name!r} has no perturbation")
    return spec
