"""Retry with exponential backoff + jitter under a deadline; S3 outage and recovery."""
from __future__ import annotations

import errno
import random
import threading
import time

import pytest

from gensweep.platform.results import ResultsStore, RetryExhausted, RetryPolicy, is_transient
from tests.results_support import metric_rows
from tests.s3_server import S3Server, free_port


class _FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_backoff_schedule_is_exponential_capped_and_jittered():
    policy = RetryPolicy(initial_s=0.5, multiplier=2.0, max_backoff_s=4.0, jitter=0.0)
    schedule = policy.delays()
    assert [next(schedule) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    jittered = RetryPolicy(initial_s=1.0, multiplier=2.0, max_backoff_s=100, jitter=0.5)
    delays = jittered.delays(random.Random(0))
    values = [next(delays) for _ in range(5)]
    for n, value in enumerate(values):
        assert 0.5 * 2**n <= value <= 2**n
    assert len({v / 2**n for n, v in enumerate(values)}) == 5  # really random


def test_transient_errors_are_retried_until_success():
    fake = _FakeClock()
    failures = [ConnectionRefusedError(errno.ECONNREFUSED, "refused"), TimeoutError("slow"),
                OSError(errno.ECONNRESET, "reset")]
    calls = []

    def flaky():
        calls.append(fake.now)
        if failures:
            raise failures.pop(0)
        return "ok"

    policy = RetryPolicy(initial_s=1.0, multiplier=2.0, jitter=0.0, deadline_s=60)
    assert policy.call(flaky, sleep=fake.sleep, clock=fake.clock) == "ok"
    assert fake.sleeps == [1.0, 2.0, 4.0]
    assert calls == [0.0, 1.0, 3.0, 7.0]


def test_deadline_bounds_total_time_then_raises():
    fake = _FakeClock()
    seen = []

    def down():
        raise ConnectionRefusedError(errno.ECONNREFUSED, "refused")

    policy = RetryPolicy(initial_s=1.0, multiplier=2.0, max_backoff_s=8.0, jitter=0.0, deadline_s=20,
                         on_retry=lambda attempt, exc, delay: seen.append(delay))
    with pytest.raises(RetryExhausted) as info:
        policy.call(down, what="write x", sleep=fake.sleep, clock=fake.clock)
    assert fake.now == pytest.approx(20.0)  # the last sleep is cut to the deadline
    assert fake.sleeps == [1.0, 2.0, 4.0, 8.0, 5.0]
    assert seen == fake.sleeps
    assert info.value.attempts == 6
    assert isinstance(info.value.last, ConnectionRefusedError)
    assert "write x" in str(info.value)


def test_permanent_errors_are_not_retried():
    fake = _FakeClock()
    calls = []

    def missing():
        calls.append(1)
        raise FileNotFoundError("no such bucket")

    with pytest.raises(FileNotFoundError):
        RetryPolicy().call(missing, sleep=fake.sleep, clock=fake.clock)
    assert calls == [1] and fake.sleeps == []


class _ClientError(Exception):
    def __init__(self, status, code):
        super().__init__(code)
        self.response = {"ResponseMetadata": {"HTTPStatusCode": status}, "Error": {"Code": code}}


class EndpointConnectionError(Exception):
    """Stands in for botocore's class of the same name (matched by name)."""


def test_transient_classification():
    assert is_transient(ConnectionRefusedError(errno.ECONNREFUSED, "x"))
    assert is_transient(TimeoutError())
    assert is_transient(EndpointConnectionError("could not connect"))
    assert is_transient(_ClientError(503, "SlowDown"))
    assert is_transient(_ClientError(500, "InternalError"))
    assert not is_transient(_ClientError(403, "AccessDenied"))
    assert not is_transient(_ClientError(404, "NoSuchKey"))
    assert not is_transient(FileNotFoundError("x"))
    assert not is_transient(PermissionError("x"))
    assert not is_transient(ValueError("bad row"))
    wrapped = OSError(errno.EIO, "wrapped")
    wrapped.__cause__ = _ClientError(503, "ServiceUnavailable")
    assert is_transient(wrapped)


def test_local_write_retries_transient_failures(tmp_path, monkeypatch):
    store = ResultsStore.open(str(tmp_path / "r"),
                              retry=RetryPolicy(initial_s=0.01, jitter=0.0, deadline_s=5))
    real = store.backend.write_bytes
    attempts = []

    def flaky(path, data):
        attempts.append(path)
        if len(attempts) < 3:
            raise OSError(errno.EAGAIN, "resource temporarily unavailable")
        real(path, data)

    monkeypatch.setattr(store.backend, "write_bytes", flaky)
    store.write("metrics", metric_rows("e", "t", range(3)))
    assert len(attempts) == 3 and len(set(attempts)) == 1  # a retry re-sends the same object
    assert len(store.read("metrics", "e")) == 3


def test_s3_write_survives_server_outage(monkeypatch):
    """Stop our own moto server mid-run, restart it on the same port 3 s later:
    the write retries with backoff and lands."""
    server = S3Server(port=free_port()).start()
    for key, value in server.env().items():  # fake credentials; endpoint passed explicitly below
        monkeypatch.setenv(key, value)
    bucket = "gensweep-outage"
    errors: list[BaseException] = []
    restarted = threading.Event()

    missing_bucket = []

    def no_such_bucket(exc):
        # moto keeps state in memory: right after the restart the bucket may not be
        # re-created yet.  Count that (short) window as transient for this test only.
        if isinstance(exc, FileNotFoundError) and len(missing_bucket) < 5:
            missing_bucket.append(exc)
            return True
        return False

    def on_retry(attempt, exc, delay):
        errors.append(exc)

    policy = RetryPolicy(initial_s=0.2, multiplier=2.0, max_backoff_s=1.0, deadline_s=60,
                         retry_on=lambda e: is_transient(e) or no_such_bucket(e), on_retry=on_retry)
    try:
        server.make_bucket(bucket)
        store = ResultsStore.open(f"s3://{bucket}/results", retry=policy, endpoint_url=server.endpoint,
                                  region_name="us-east-1", connect_timeout=1.0, read_timeout=10.0)
        store.write("metrics", metric_rows("e", "t", range(3)))  # server up: fine

        def outage():
            server.stop()
            stopped.set()
            time.sleep(3.0)
            server.start()
            server.make_bucket(bucket)
            restarted.set()

        stopped = threading.Event()
        thread = threading.Thread(target=outage, daemon=True)
        thread.start()
        assert stopped.wait(30)
        t0 = time.monotonic()
        store.write("metrics", metric_rows("e", "t", range(3, 6)))
        elapsed = time.monotonic() - t0
        thread.join(60)
        assert restarted.is_set()
        assert elapsed >= 2.5, "the write cannot have landed while the server was down"
        assert any(is_transient(e) for e in errors), errors
        df = store.read("metrics", "e")
        assert sorted(df["step"]) == [3, 4, 5]  # the pre-outage rows died with moto's memory
    finally:
        server.stop()


def test_s3_write_gives_up_after_deadline(monkeypatch):
    port = free_port()  # nothing listens here
    for key, value in S3Server(port=port).env().items():
        monkeypatch.setenv(key, value)
    store = ResultsStore.open("s3://nowhere/results", endpoint_url=f"http://127.0.0.1:{port}",
                              region_name="us-east-1", connect_timeout=0.5,
                              retry=RetryPolicy(initial_s=0.1, max_backoff_s=0.3, deadline_s=1.5))
    t0 = time.monotonic()
    with pytest.raises(RetryExhausted):
        store.write("metrics", metric_rows("e", "t", [0]))
    assert 1.0 <= time.monotonic() - t0 < 10
