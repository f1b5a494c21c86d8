"""The experiment spec: the typed, validated YAML document of a sweep, and its search space.

* :mod:`.experiment` -- ``ExperimentSpec`` and its sections; ``load_spec``/``parse_spec``/``default_spec``
* :mod:`.space`      -- search-space parameters with conditions, as Optuna define-by-run or a grid
* :mod:`.scheduler`  -- the ``scheduler`` section (asha, hyperband, pbt, none) and its checks
* ``default_spec.yaml`` -- the embedded default sweep (``gensweep run`` with no SPEC)
"""
from gensweep.platform.spec.experiment import (
    DataConfig,
    EvalConfig,
    ExperimentSpec,
    InfeasibleConfig,
    LadderRung,
    ResourcesConfig,
    ResultsConfig,
    SchedulerConfig,
    SearchConfig,
    SpecError,
    StorageConfig,
    default_spec,
    format_errors,
    load_spec,
    parse_spec,
)

__all__ = [
    "DataConfig", "EvalConfig", "ExperimentSpec", "InfeasibleConfig", "LadderRung", "ResourcesConfig",
    "ResultsConfig", "SchedulerConfig", "SearchConfig", "SpecError", "StorageConfig", "default_spec",
    "format_errors", "load_spec", "parse_spec",
]
