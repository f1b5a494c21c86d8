"""The driver's graceful stop (:mod:`gensweep.platform.sweep.interrupt`) without Ray: which signal
does what. The whole path on a real sweep is tests/test_interrupt_sweep.py (and test_slurm.py)."""
from __future__ import annotations

import os
import pickle
import signal
from types import SimpleNamespace

import pytest

from gensweep.platform.trial.stop import STOP_FIELD
from gensweep.platform.sweep.interrupt import (
    GracefulStop,
    StopNow,
    SweepInterrupted,
    raise_if_interrupted,
)


@pytest.fixture
def stop():
    saved = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)}
    tune_calls = []
    def tune_handler(s, f):  # stands in for Tune's own: it hands SIGINT back to Python's handler
        tune_calls.append(s)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGUSR1, tune_handler)
    # a known SIGTERM handler to be handed back (an earlier ray.init in this process installs its own)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    cb = GracefulStop("exp-1", grace_s=60)
    cb.setup()
    yield cb, tune_calls
    for s, h in saved.items():
        signal.signal(s, h)


def _trial(tid, status="RUNNING"):
    return SimpleNamespace(trial_id=tid, status=status)


@pytest.mark.parametrize("signame", ["SIGUSR1", "SIGTERM", "SIGINT"])
def test_first_signal_waits_for_every_running_trial_to_checkpoint(stop, signame):
    cb, tune_calls = stop
    trials = [_trial("a"), _trial("b"), _trial("c", "PENDING")]
    cb.on_step_end(0, trials)
    assert not cb.triggered  # no signal yet
    os.kill(os.getpid(), getattr(signal, signame))
    assert cb.signal_name == signame and not cb.triggered
    cb.on_step_end(1, trials)
    cb.on_checkpoint(1, trials, trials[1], checkpoint=None)  # an evaluation's checkpoint, not the stop's
    cb.on_trial_result(1, trials, trials[0], {STOP_FIELD: str(cb._requested_at)})
    cb.on_checkpoint(1, trials, trials[0], checkpoint=None)
    trials[2].status = "RUNNING"  # started after the request: nothing to save, not waited for
    cb.on_step_end(2, trials)
    assert not cb.triggered and tune_calls == []  # b has not checkpointed yet
    cb.on_trial_result(3, trials, trials[1], {STOP_FIELD: "an older request"})
    cb.on_checkpoint(3, trials, trials[1], checkpoint=None)
    cb.on_step_end(3, trials)
    assert not cb.triggered
    cb.on_trial_result(4, trials, trials[1], {STOP_FIELD: str(cb._requested_at)})
    cb.on_checkpoint(4, trials, trials[1], checkpoint=None)
    cb.on_step_end(4, trials)
    assert cb.triggered and tune_calls == [signal.SIGUSR1]  # Tune's loop ends after its final save
    with pytest.raises(StopNow):  # while Tune saves and stops, a second signal (Ctrl-C too) stops at once
        os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(SweepInterrupted, match="gensweep resume exp-1"):
        raise_if_interrupted("exp-1")


def test_grace_period_bounds_the_wait(stop):
    cb, tune_calls = stop
    cb.grace_s = 0.0
    os.kill(os.getpid(), signal.SIGTERM)
    cb.on_step_end(1, [_trial("a")])  # never checkpoints
    assert cb.triggered and tune_calls


def test_second_signal_stops_at_once(stop):
    cb, _ = stop
    os.kill(os.getpid(), signal.SIGUSR1)
    with pytest.raises(StopNow):
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers handed back


def test_no_signal_no_interruption_and_the_callback_pickles_without_state(stop):
    cb, _ = stop
    cb.on_step_end(1, [_trial("a")])
    raise_if_interrupted("exp-1")  # nothing raised
    os.kill(os.getpid(), signal.SIGUSR1)
    clone = pickle.loads(pickle.dumps(cb))  # Tune pickles its callbacks with the experiment
    assert clone.experiment == "exp-1" and clone.signal_name is None and not clone.triggered
