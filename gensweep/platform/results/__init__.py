"""Results store: experiments, trials, metrics and artifacts as a Parquet dataset.

Local path or ``s3://bucket/prefix`` (one backend per URI scheme, see :mod:`.backends`);
append-only part files, idempotent row keys, atomic writes with retries.  See
:class:`ResultsStore`, :class:`ResultsCallback` (Ray Tune) and the query helpers.
"""
from gensweep.platform.storage.retry import RetryExhausted, RetryPolicy, is_transient

from .backends import (
    BACKENDS,
    Backend,
    LocalBackend,
    S3Backend,
    backend_for_uri,
    register_backend,
)
from .query import export, format_table, leaderboard, list_experiments, load_metrics
from .rows import metrics_row
from .schema import TABLES, SchemaError, flatten_config, make_row_key
from .status import TrialStatus
from .store import ResultsStore

__all__ = [
    "BACKENDS",
    "Backend",
    "LocalBackend",
    "S3Backend",
    "backend_for_uri",
    "register_backend",
    "ResultsStore",
    "ResultsCallback",
    "RetryPolicy",
    "RetryExhausted",
    "is_transient",
    "SchemaError",
    "TABLES",
    "TrialStatus",
    "flatten_config",
    "make_row_key",
    "metrics_row",
    "load_metrics",
    "leaderboard",
    "list_experiments",
    "export",
    "format_table",
]


def __getattr__(name: str):
    # The Tune callback imports ray; load it only when asked for.
    if name == "ResultsCallback":
        from .callback import ResultsCallback

        return ResultsCallback
    raise AttributeError(name)
