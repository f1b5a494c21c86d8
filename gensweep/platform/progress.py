"""Live progress in the terminal: one line per trial with its config and latest FID."""
from __future__ import annotations

from ray.tune import CLIReporter

from gensweep.platform.spec import ExperimentSpec


def progress_reporter(spec: ExperimentSpec) -> CLIReporter:
    metric = spec.search.metric
    return CLIReporter(
        metric_columns={"step": "step", metric: metric, "images_per_s": "img/s", "time_total_s": "time (s)"},
        parameter_columns=spec.space.names() or None,
        max_report_frequency=10,
        metric=metric,
        mode=spec.search.mode,
        sort_by_metric=True,
    )
