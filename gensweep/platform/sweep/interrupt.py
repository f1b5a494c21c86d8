"""Graceful stop of a sweep's driver: SIGUSR1 (SLURM's ``--signal=B:USR1@LEAD``), SIGTERM (a Ray
job stopped, a scheduler's notice) or the first Ctrl-C.

The first signal:

1. asks every running trial to checkpoint now, through a key in Ray's GCS key-value store that
   each trial's context reads (:mod:`gensweep.platform.trial.stop`; the trial evaluates and reports a checkpoint
   at the step it is at, see :meth:`PlatformContext.checkpoint_due`);
2. once every trial that was running has registered that checkpoint (or after
   ``GENSWEEP_STOP_GRACE_S`` seconds, default 120), ends Tune's loop the way Tune's own SIGINT
   handler does: Tune saves its experiment state, stops the trial actors and calls the callbacks'
   ``on_experiment_end`` (the results store's final flush);
3. the driver then raises :class:`SweepInterrupted`, which the CLI turns into exit status
   :data:`EXIT_RESUMABLE` (75, ``EX_TEMPFAIL``: "interrupted, resumable").

A second signal stops at once (:class:`StopNow`, exit status 130): what Tune saved last and the
results callback's journal are what ``gensweep resume`` continues from, as after a driver crash.

The callback is pickled with the Tuner (``gensweep resume`` restores it with the experiment), so it
keeps no signal state across pickling; its ``setup`` runs inside ``Tuner.fit`` after Tune installed
its own handlers, and takes them over.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any, Optional

from ray.tune import Callback

from gensweep.platform.trial.stop import STOP_FIELD, clear_stop, request_stop

logger = logging.getLogger(__name__)

EXIT_RESUMABLE = 75  # sysexits EX_TEMPFAIL: interrupted, resumable (the sbatch script requeues on it)
EXIT_STOPPED_AT_ONCE = 130
SIGNALS = ("SIGUSR1", "SIGTERM", "SIGINT")
DEFAULT_GRACE_S = 120.0


class SweepInterrupted(Exception):
    """The sweep stopped on a signal after checkpointing: ``gensweep resume`` continues it."""

    def __init__(self, experiment: str, signal_name: str):
        super().__init__(f"experiment {experiment} interrupted by {signal_name}; its trials checkpointed and"
                         f" the results store is flushed: resume it with `gensweep resume {experiment}`")
        self.experiment = experiment
        self.signal_name = signal_name


class StopNow(KeyboardInterrupt):
    """A second stop signal: the driver stops at once, without waiting for checkpoints."""


class GracefulStop(Callback):
    """Tune callback that turns a stop signal into checkpoint-then-stop (see the module doc)."""

    def __init__(self, experiment: str, grace_s: Optional[float] = None):
        self.experiment = experiment
        self.grace_s = grace_s
        self._reset()

    def _reset(self) -> None:
        self.signal_name: Optional[str] = None
        self._requested_at: Optional[float] = None
        self._waiting_for: Optional[set[str]] = None
        self._answered: set[str] = set()  # reported for our request ...
        self._saved: set[str] = set()  # ... and Tune registered that checkpoint
        self._tune_handler: Any = None
        self._previous: dict[int, Any] = {}
        self.triggered = False

    def __getstate__(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "grace_s": self.grace_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    # -- signals ---------------------------------------------------------------------------
    def setup(self, **info: Any) -> None:
        global _ACTIVE
        _ACTIVE = self
        self._reset()
        _clear(self.experiment)
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        self._tune_handler = signal.getsignal(signal.SIGUSR1)  # Tune's: ends its loop after a save
        for name in SIGNALS:
            signum = getattr(signal, name)
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.signal_name is not None:
            self._restore()
            raise StopNow(f"second stop signal ({name}): stopping at once")
        self.signal_name = name
        self._requested_at = time.time()
        print(f"[gensweep] {name}: no new trials; running trials checkpoint now, then the driver stops"
              f" (send it again to stop at once)", flush=True)
        try:
            request_stop(self.experiment, str(self._requested_at))
        except Exception:  # noqa: BLE001 - the trials cannot be asked: stop on the latest checkpoints
            logger.warning("could not ask the trials to checkpoint", exc_info=True)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    # -- waiting for the checkpoints -------------------------------------------------------
    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if self._requested_at is not None and result.get(STOP_FIELD) == str(self._requested_at):
            self._answered.add(trial.trial_id)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        if trial.trial_id in self._answered:
            self._saved.add(trial.trial_id)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self._requested_at is None or self.triggered:
            return
        running = {t.trial_id for t in trials if t.status == "RUNNING"}
        if self._waiting_for is None:  # trials started after the request have nothing to save
            self._waiting_for = running
        left = (self._waiting_for & running) - self._saved
        grace = self.grace_s if self.grace_s is not None else float(
            os.environ.get("GENSWEEP_STOP_GRACE_S", DEFAULT_GRACE_S))
        overdue = time.time() - self._requested_at > grace
        if left and not overdue:
            return
        if left:
            logger.warning("stopping without the checkpoints of %s (none within %.0f s)", sorted(left), grace)
        self.triggered = True
        print(f"[gensweep] {len(self._waiting_for) - len(left)} running trial(s) checkpointed; stopping",
              flush=True)
        if callable(self._tune_handler):
            self._tune_handler(signal.SIGUSR1, None)
            if signal.SIGINT in self._previous:  # Tune's handler gave Ctrl-C back to Python: keep ours
                signal.signal(signal.SIGINT, self._on_signal)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._restore()
        _clear(self.experiment)


_ACTIVE: Optional[GracefulStop] = None


def _clear(experiment: str) -> None:
    try:
        clear_stop(experiment)
    except Exception:  # noqa: BLE001 - a stale key only makes a resumed trial checkpoint once more
        logger.debug("could not clear the stop key", exc_info=True)


def raise_if_interrupted(experiment: str) -> None:
    """After ``Tuner.fit``: raise :class:`SweepInterrupted` when a signal ended the sweep."""
    global _ACTIVE
    active, _ACTIVE = _ACTIVE, None
    if active is not None and active.experiment == experiment and active.triggered:
        raise SweepInterrupted(experiment, active.signal_name or "a signal")
