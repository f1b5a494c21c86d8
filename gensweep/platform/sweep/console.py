"""What a sweep prints: gensweep's own lines and its progress view on the console, everything
else (Ray's and Tune's log records, trial workers' output forwarded by Ray, Optuna's
messages) in a log file beside the experiment (:meth:`RootLayout.console_log`).

While :func:`sweep_console` is open, ``sys.stdout``/``sys.stderr`` are :class:`LineRouter`
streams: a line that starts with ``[gensweep]`` goes to the console, any other line to the
log file (escape codes stripped), and the ``ray`` and ``optuna`` loggers write to the log
file instead of the terminal.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import IO, Any, Iterator

from gensweep.platform.spec import ExperimentSpec

OWN_PREFIX = "[gensweep]"
ROUTED_LOGGERS = ("ray", "optuna")
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


class LineRouter:
    """A text stream that sends each complete line to ``console`` when it starts with
    ``[gensweep]``, else to ``log`` without escape codes."""

    def __init__(self, console: IO[str], log: IO[str], lock: threading.Lock):
        self.console, self.log, self.lock = console, log, lock
        self.pending = ""

    def write(self, text: str) -> int:
        with self.lock:
            self.pending += text
            *lines, self.pending = self.pending.split("\n")
            for line in lines:
                self._route(line)
        return len(text)

    def _route(self, line: str) -> None:
        if line.startswith(OWN_PREFIX):
            self.console.write(line + "\n")
            self.console.flush()
        else:
            self.log.write(strip_ansi(line) + "\n")

    def flush(self) -> None:
        with self.lock:
            self.log.flush()
            self.console.flush()

    def close_line(self) -> None:
        if self.pending:
            self.write("\n")

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:  # for libraries that ask (faulthandler, subprocess): the console's
        return self.console.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.console, "encoding", None) or "utf-8"


@dataclass
class SweepConsole:
    """What :func:`sweep_console` yields to the runner: Tune's ``verbose`` and extra callbacks."""

    log_path: str | None
    tune_verbose: int
    callbacks: list[Any] = field(default_factory=list)


def console_log_path(spec: ExperimentSpec, experiment: str) -> str:
    from gensweep.platform.storage.layout import RootLayout

    return RootLayout.of(spec.results.root).console_log(experiment)


@contextlib.contextmanager
def _routed_loggers(stream: LineRouter) -> Iterator[None]:
    """The ``ray`` and ``optuna`` loggers write to ``stream`` instead of the terminal (one handler
    each: ``ray.init`` sets its own format on every handler of the ``ray`` logger)."""
    import optuna  # noqa: F401 - optuna adds its terminal handler on import: before we swap it

    saved = {}
    for name in ROUTED_LOGGERS:
        log = logging.getLogger(name)
        saved[name] = (list(log.handlers), log.propagate)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.handlers = [h for h in log.handlers if not isinstance(h, logging.StreamHandler)
                        or isinstance(h, logging.FileHandler)] + [handler]
        log.propagate = False
    try:
        yield
    finally:
        for name, (handlers, propagate) in saved.items():
            log = logging.getLogger(name)
            log.handlers, log.propagate = handlers, propagate


@contextlib.contextmanager
def sweep_console(spec: ExperimentSpec, experiment: str, verbose: int = 1) -> Iterator[SweepConsole]:
    """``verbose`` 0: nothing of the progress view; 1: the progress view, chatter to the log
    file; 2 or more: Tune's own status output as it comes, nothing routed."""
    if verbose >= 2:
        yield SweepConsole(None, verbose)
        return
    from gensweep.platform.sweep.progress import SweepProgress, writing_to

    path = console_log_path(spec, experiment)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    console = sys.stdout
    color = bool(getattr(console, "isatty", lambda: False)())
    lock = threading.Lock()
    with open(path, "a", encoding="utf-8", errors="replace") as log:
        out, err = LineRouter(console, log, lock), LineRouter(console, log, lock)
        if verbose >= 1:
            print(f"{OWN_PREFIX} Ray, Tune and trial worker messages go to {path}", file=console, flush=True)

        def write(text: str) -> None:
            with lock:
                console.write(text + "\n")
                console.flush()

        callbacks = [SweepProgress(spec, write, color=color)] if verbose >= 1 else []
        shown = writing_to(write) if verbose >= 1 else contextlib.nullcontext()
        with shown, _routed_loggers(err), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                yield SweepConsole(path, 0, callbacks)
            finally:
                out.close_line()
                err.close_line()
