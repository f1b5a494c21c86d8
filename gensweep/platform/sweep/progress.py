"""The compact progress view of a sweep, printed instead of Tune's status table.

One summary line (trials done / running / errored of the total, the best value of
``search.metric`` so far with its trial, elapsed time and an estimate of the time left)
and a short table: one row per running trial and the best finished ones, with the latest
value of every metric column the spec asks for (``search.metric`` first, then the columns
of ``eval.metrics``).  :func:`format_progress` is pure (a :class:`Snapshot` in, text
out); :class:`SweepProgress` is the Tune callback that keeps the snapshot and prints it.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

from ray.tune import Callback

from gensweep.platform.spec import ExperimentSpec

BOLD, RESET = "\x1b[1m", "\x1b[0m"
MAX_ROWS = 8  # table rows: every running trial first, then the best finished ones
RUNNING, DONE, ERROR, PENDING = "running", "done", "error", "pending"
WRITERS: list[Callable[[str], None]] = []  # see writing_to


def metric_columns(spec: ExperimentSpec) -> list[str]:
    """``search.metric``, then the shown columns of ``eval.metrics`` (registry order), once each."""
    from gensweep.platform.metrics.protocol import METRICS

    columns = [spec.search.metric]
    for name in METRICS.names():
        if name in spec.eval.metrics:
            columns += [c for c in METRICS.get(name).shown if c not in columns]
    return columns


@dataclass
class TrialLine:
    trial_id: str
    status: str = PENDING
    step: Optional[int] = None
    values: dict[str, float] = field(default_factory=dict)  # latest value of each metric column
    best: Optional[float] = None  # best value of the search metric so far
    best_step: Optional[int] = None


@dataclass
class Snapshot:
    metric: str
    mode: str  # "min" | "max"
    columns: list[str]
    total: Optional[int]  # trials the search will run (None: not known)
    elapsed_s: float
    trials: list[TrialLine] = field(default_factory=list)


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def number(value: Optional[float]) -> str:
    if value is None or not isinstance(value, (int, float)):
        return "-"
    return format(float(value), ".4g") if math.isfinite(value) else str(float(value))


def better(a: float, b: Optional[float], mode: str) -> bool:
    return b is None or (a < b if mode == "min" else a > b)


def best_trial(snap: Snapshot) -> Optional[TrialLine]:
    best = None
    for t in snap.trials:
        if t.best is not None and (best is None or better(t.best, best.best, snap.mode)):
            best = t
    return best


def remaining_s(snap: Snapshot) -> Optional[float]:
    """Time left at the pace so far: elapsed per finished trial times the trials left
    (None before the first trial ends or when the total is not known)."""
    ended = sum(t.status in (DONE, ERROR) for t in snap.trials)
    if not ended or snap.total is None or snap.total <= 0:
        return None
    return snap.elapsed_s / ended * max(0, snap.total - ended)


def summary(snap: Snapshot) -> str:
    counts = {s: sum(t.status == s for t in snap.trials) for s in (DONE, RUNNING, ERROR)}
    total = "?" if snap.total is None or snap.total <= 0 else str(snap.total)
    parts = [f"trials {counts[DONE]}/{total} done, {counts[RUNNING]} running, {counts[ERROR]} errored"]
    best = best_trial(snap)
    parts.append(f"best {snap.metric} {number(best.best)} ({best.trial_id}, step {best.best_step})" if best
                 else f"best {snap.metric} -")
    left = remaining_s(snap)
    parts.append(f"elapsed {duration(snap.elapsed_s)}"
                 + (f", ~{duration(left)} left" if left else ""))
    return " | ".join(parts)


def table_rows(snap: Snapshot, max_rows: int = MAX_ROWS) -> list[TrialLine]:
    """Running trials first, then the others best first (unscored last), at most ``max_rows``."""
    sign = 1.0 if snap.mode == "min" else -1.0
    rest = sorted((t for t in snap.trials if t.status != RUNNING and t.status != PENDING),
                  key=lambda t: (t.best is None, sign * t.best if t.best is not None else 0.0))
    return ([t for t in snap.trials if t.status == RUNNING] + rest)[:max_rows]


def format_progress(snap: Snapshot, *, color: bool = False, table: bool = True,
                    max_rows: int = MAX_ROWS) -> str:
    """The progress view as text: the summary line and (``table``) the trials' table.
    ``color`` (a terminal) makes the summary bold; without it the text has no escape codes."""
    head = f"[gensweep] {summary(snap)}"
    lines = [f"{BOLD}{head}{RESET}" if color else head]
    rows = table_rows(snap, max_rows) if table else []
    if rows:
        header = ["trial", "status", "step", *snap.columns, f"best {snap.metric}"]
        cells = [[t.trial_id, t.status, "-" if t.step is None else str(t.step),
                  *(number(t.values.get(c)) for c in snap.columns), number(t.best)] for t in rows]
        widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]
        for r in [header, *cells]:
            lines.append("  " + "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                          for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        hidden = len([t for t in snap.trials if t.status != PENDING]) - len(rows)
        if hidden > 0:
            lines.append(f"  ... {hidden} more (gensweep results show)")
    return "\n".join(lines)


class SweepProgress(Callback):
    """Tune callback: keeps a :class:`Snapshot` of the sweep and writes the progress view
    when a trial starts, ends or fails, and every ``interval_s`` seconds in between."""

    def __init__(self, spec: ExperimentSpec, write: Optional[Callable[[str], None]], *, color: bool = False,
                 interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.write, self.color, self.interval_s, self.clock = write, color, interval_s, clock
        self.snap = Snapshot(spec.search.metric, spec.search.mode, metric_columns(spec), None, 0.0)
        self.lines: dict[str, TrialLine] = {}
        self.t0 = self.last = clock()

    def __getstate__(self) -> dict:
        # Tune pickles its run config (callbacks included) for `Tuner.restore`; a restored
        # callback writes to the console of the sweep_console open then (see `writing_to`)
        return {**self.__dict__, "write": None, "clock": time.monotonic}

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
        self.snap.total = total_num_samples if total_num_samples and total_num_samples > 0 else None
        self.t0 = self.last = self.clock()

    def line(self, trial) -> TrialLine:
        if trial.trial_id not in self.lines:
            self.lines[trial.trial_id] = TrialLine(str(trial.trial_id))
            self.snap.trials.append(self.lines[trial.trial_id])
        return self.lines[trial.trial_id]

    def show(self, event: str = "", table: bool = False) -> None:
        self.snap.elapsed_s = self.clock() - self.t0
        self.last = self.clock()
        text = format_progress(self.snap, color=self.color, table=table)
        write = self.write or (WRITERS[-1] if WRITERS else None)
        if write is not None:
            write(f"[gensweep] {event}\n{text}" if event else text)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.line(trial).status = RUNNING
        self.show(f"trial {trial.trial_id} started ({_config_text(trial.config)})")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        t = self.line(trial)
        t.status = RUNNING
        t.step = result.get("step", t.step)
        for c in self.snap.columns:
            v = result.get(c)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                t.values[c] = float(v)
        v = t.values.get(self.snap.metric)
        if v is not None and math.isfinite(v) and better(v, t.best, self.snap.mode):
            t.best, t.best_step = v, t.step

    def on_trial_complete(self, iteration, trials, trial, **info):
        t = self.line(trial)
        t.status = DONE
        best = f": best {self.snap.metric} {number(t.best)} at step {t.best_step}" if t.best is not None else ""
        self.show(f"trial {trial.trial_id} finished{best}")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.line(trial).status = ERROR
        error = trial.get_error()
        why = str(error).strip().splitlines()[-1][:200] if error is not None and str(error).strip() else "error"
        self.show(f"trial {trial.trial_id} failed: {why}")

    def on_step_end(self, iteration, trials, **info):
        if self.clock() - self.last >= self.interval_s:
            self.show(table=True)

    def on_experiment_end(self, trials, **info):
        self.show("sweep finished", table=True)


@contextlib.contextmanager
def writing_to(write: Callable[[str], None]) -> Iterator[None]:
    """Where callbacks restored by ``Tuner.restore`` (which have no writer) write meanwhile."""
    WRITERS.append(write)
    try:
        yield
    finally:
        WRITERS.remove(write)


def _config_text(config: dict) -> str:
    from gensweep.platform.report.labels import short_label

    return ", ".join(f"{k}={short_label(v)}" for k, v in config.items() if not isinstance(v, dict))[:160]
