"""Why a trial ended in an error, as the ``trials`` table records it: the exception it raised,
a one-line reason with credential values redacted, and whether it was a divergence."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from gensweep.trainables.errors import Diverged

from .status import TrialStatus

if TYPE_CHECKING:  # pragma: no cover
    from ray.tune.experiment import Trial


def trial_exception(trial: "Trial") -> BaseException | None:
    """The exception a failed trial raised (unwrapped from Ray's RayTaskError), when Tune kept it."""
    pickled = getattr(trial, "pickled_error_file", None)
    if not pickled or not os.path.exists(pickled):
        return None
    try:
        import cloudpickle

        with open(pickled, "rb") as handle:
            exc = cloudpickle.load(handle)
    except Exception:  # noqa: BLE001 - unreadable: fall back to the text file
        return None
    cause = getattr(exc, "cause", None)  # RayTaskError wraps the user's exception
    return cause if isinstance(cause, BaseException) else exc


def error_message(trial: "Trial") -> str:
    """A one-line reason for a failed trial: the original exception's type and message."""
    exc = trial_exception(trial)
    if exc is not None:
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[-1] if text else ''}".strip().rstrip(":")
    path = getattr(trial, "error_file", None)
    if path and os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = [ln.strip() for ln in handle if ln.strip() and not ln.startswith("Failure #")]
        if lines:
            return lines[-1]
    return "trial failed (no error message recorded)"


def redact_reason(text: str) -> str:
    """Credential values from the environment never go into a stored reason."""
    from gensweep.platform.storage.secrets import redact, secret_values

    return redact(text, secret_values())


def error_outcome(trial: "Trial") -> tuple[TrialStatus, str, Any]:
    """``(status, reason, step)`` of a trial that ended in an error.

    A trial that raised :class:`Diverged` ended on a divergence (a result, not a failure):
    ``diverged`` with the divergence's reason and step. Anything else is ``failed`` with the
    redacted error message, and no step (None).
    """
    exc = trial_exception(trial)
    if isinstance(exc, Diverged):
        return TrialStatus.DIVERGED, str(exc), exc.step
    return TrialStatus.FAILED, redact_reason(error_message(trial)), None
