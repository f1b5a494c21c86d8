"""Retries with exponential backoff and jitter, bounded by a total deadline."""
from __future__ import annotations

import errno
import logging
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EPIPE,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EAGAIN,
        errno.EBUSY,
    }
)

# Exception class names (anywhere in the MRO) that mean "try again": botocore,
# aiohttp, urllib3 and fsspec spell them like this; matching by name avoids
# importing optional libraries.
_TRANSIENT_NAMES = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ProxyConnectionError",
        "HTTPClientError",
        "ResponseStreamingError",
        "IncompleteReadError",
        "ClientConnectorError",
        "ClientConnectionError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "ClientPayloadError",
        "FSTimeoutError",
        "NewConnectionError",
        "ProtocolError",
        "IncompleteRead",
    }
)

_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
        "InternalError",
        "503",
        "500",
        "502",
        "504",
    }
)


class RetryExhausted(OSError):
    """An operation kept failing with transient errors until the deadline passed."""

    def __init__(self, what: str, attempts: int, elapsed_s: float, last: BaseException):
        super().__init__(
            f"{what or 'operation'} failed after {attempts} attempts in {elapsed_s:.1f}s; "
            f"last error: {type(last).__name__}: {last}"
        )
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        self.last = last


def _client_error_transient(exc: BaseException) -> bool | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(response.get("Error", {}).get("Code", ""))
    if isinstance(status, int) and (status >= 500 or status == 429):
        return True
    if code in _TRANSIENT_CODES:
        return True
    return False


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: refused/reset connections, timeouts, 5xx/throttling."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # walk __cause__/__context__
        seen.add(id(current))
        if isinstance(current, (FileNotFoundError, PermissionError, FileExistsError,
                                IsADirectoryError, NotADirectoryError)):
            return False
        names = {cls.__name__ for cls in type(current).__mro__}
        if names & _TRANSIENT_NAMES:
            return True
        verdict = _client_error_transient(current)
        if verdict is not None:
            return verdict
        if isinstance(current, (ConnectionError, TimeoutError, socket.timeout)):
            return True
        if isinstance(current, OSError) and current.errno in _TRANSIENT_ERRNOS:
            return True
        if isinstance(current, OSError) and current.errno == errno.EIO:
            # s3fs maps unrecognised S3 error codes (5xx among them) onto EIO.
            text = str(current)
            if any(code in text for code in _TRANSIENT_CODES):
                return True
        current = current.__cause__ or current.__context__
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter under a total deadline.

    Delay ``n`` (0-based) is ``min(max_backoff_s, initial_s * multiplier**n)``, scaled
    by a random factor in ``[1 - jitter, 1]``; the sleep is cut so that the
    deadline is never overshot, and once it has passed the last error is raised
    wrapped in :class:`RetryExhausted`.
    """

    deadline_s: float = 120.0
    initial_s: float = 0.2
    multiplier: float = 2.0
    max_backoff_s: float = 10.0
    jitter: float = 0.5
    retry_on: Callable[[BaseException], bool] = is_transient
    on_retry: Callable[[int, BaseException, float], None] | None = field(default=None, compare=False)

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The (infinite) backoff schedule, jitter included."""
        rng = rng or random.Random()
        n = 0
        while True:
            base = min(self.max_backoff_s, self.initial_s * (self.multiplier ** n))
            yield base * (1.0 - self.jitter * rng.random())
            n += 1

    def call(
        self,
        fn: Callable[[], T],
        what: str = "",
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> T:
        start = clock()
        delays = self.delays(rng)
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except BaseException as exc:  # noqa: BLE001 - classified below
                if isinstance(exc, (KeyboardInterrupt, SystemExit)) or not self.retry_on(exc):
                    raise
                elapsed = clock() - start
                remaining = self.deadline_s - elapsed
                if remaining <= 0:
                    raise RetryExhausted(what, attempt, elapsed, exc) from exc
                delay = min(next(delays), remaining)
                logger.warning(
                    "results store: %s failed (attempt %d, %s: %s); retrying in %.2fs",
                    what or "operation", attempt, type(exc).__name__, exc, delay,
                )
                if self.on_retry is not None:
                    self.on_retry(attempt, exc, delay)
                sleep(delay)
