"""Conformance suite of results-store backends: the :class:`~gensweep.platform.results.Backend`
contract and the :class:`~gensweep.platform.results.ResultsStore` behaviour on top of it.

Subclass :class:`ResultsBackendSuite` and provide a ``backend_root`` fixture that returns
``(backend, root)``: a backend and a root path in it under which nothing exists yet::

    class TestMyBackend(ResultsBackendSuite):
        @pytest.fixture
        def backend_root(self, tmp_path):
            return MyBackend(), str(tmp_path / "results")

The backend's scheme must be registered (:func:`~gensweep.platform.results.register_backend`):
the platform re-opens stores from their URI (``test_uri_reopens_the_same_store``).
"""
from __future__ import annotations

import pickle
import threading
from typing import Any

import pytest

from gensweep.platform.results import Backend, ResultsStore
from gensweep.testing.results_store import StoreBehaviour

# option names that would carry a credential (the backends take credentials from the environment)
CREDENTIAL_WORDS = ("key", "secret", "token", "password", "credential")


class BackendContract:
    """The backend contract (see the docstring of ``gensweep/platform/results/backend.py``)."""

    @pytest.fixture
    def backend_root(self) -> tuple[Backend, str]:
        raise NotImplementedError(
            f"{type(self).__name__} must define a `backend_root` fixture returning (backend, fresh empty root)"
        )

    @pytest.fixture
    def backend(self, backend_root) -> Backend:
        return backend_root[0]

    @pytest.fixture
    def root(self, backend_root) -> str:
        return backend_root[1]

    def test_write_then_read_roundtrip_and_overwrite(self, backend, root):
        path = backend.join(root, "a", "x.bin")
        backend.write_bytes(path, b"first")
        assert backend.read_bytes(path) == b"first"
        backend.write_bytes(path, b"second, longer")
        assert backend.read_bytes(path) == b"second, longer"
        empty = backend.join(root, "a", "empty")
        backend.write_bytes(empty, b"")
        assert backend.read_bytes(empty) == b""

    def test_read_of_a_missing_file_raises_file_not_found(self, backend, root):
        with pytest.raises(FileNotFoundError):
            backend.read_bytes(backend.join(root, "missing.bin"))

    def test_exists_and_delete(self, backend, root):
        path = backend.join(root, "d", "x.bin")
        assert not backend.exists(path)
        backend.write_bytes(path, b"1")
        assert backend.exists(path)
        backend.delete(path)
        assert not backend.exists(path)
        with pytest.raises(FileNotFoundError):
            backend.read_bytes(path)
        backend.delete(path)  # absent files are fine

    def test_list_is_recursive_sorted_and_skips_hidden_names(self, backend, root):
        visible = ["b.bin", "a/x.bin", "a/b/y.bin", "ab/z.bin"]
        hidden = [".tmp", "_SUCCESS", "_temporary/z.bin", "a/.hidden/w.bin", "a/_x", "a/b/.y.bin.tmp"]
        written = {backend.join(root, *rel.split("/")): rel.encode() for rel in visible + hidden}
        for path, data in written.items():
            backend.write_bytes(path, data)
        listed = backend.list(root)
        assert listed == sorted(backend.join(root, *rel.split("/")) for rel in visible)
        assert all(backend.read_bytes(p) == written[p] for p in listed)  # listed paths are readable as they are
        # a folder, not a name prefix: "a" holds a/x.bin and a/b/y.bin, never ab/z.bin
        assert backend.list(backend.join(root, "a")) == sorted([backend.join(root, "a", "x.bin"),
                                                               backend.join(root, "a", "b", "y.bin")])
        assert backend.list(backend.join(root, "nothing-here")) == []

    def test_list_dirs_names_the_visible_subfolders(self, backend, root):
        for rel in ["f.bin", "one/x.bin", "two/deep/y.bin", "_hidden/z.bin", ".dot/z.bin"]:
            backend.write_bytes(backend.join(root, *rel.split("/")), b"1")
        assert backend.list_dirs(root) == ["one", "two"]
        assert backend.list_dirs(backend.join(root, "two")) == ["deep"]
        assert backend.list_dirs(backend.join(root, "one")) == []
        assert backend.list_dirs(backend.join(root, "nothing-here")) == []

    def test_join_is_associative(self, backend, root):
        assert backend.join(backend.join(root, "a"), "b") == backend.join(root, "a", "b")
        assert backend.join(root, "a", "b") != backend.join(root, "ab")

    def test_write_is_atomic_for_concurrent_readers(self, backend, root):
        path = backend.join(root, "atomic", "blob.bin")
        versions = [bytes([i]) * (1 << 20) for i in (1, 2)]  # 1 MiB each
        backend.write_bytes(path, versions[0])
        reads: list[bool] = []  # whether each read returned a whole version
        torn: list[str] = []
        stop = threading.Event()

        def read_until_stopped():
            while not stop.is_set():
                try:
                    data = backend.read_bytes(path)
                except Exception as exc:  # noqa: BLE001 - the object must never vanish while replaced
                    torn.append(repr(exc))
                    continue
                reads.append(data in versions)
                if not reads[-1]:
                    torn.append(f"{len(data)} bytes")

        reader = threading.Thread(target=read_until_stopped, daemon=True)
        reader.start()
        try:
            for i in range(6):
                backend.write_bytes(path, versions[(i + 1) % 2])
        finally:
            stop.set()
            reader.join(timeout=60)
        assert reads and not torn, f"{len(torn)} reads saw no whole object ({len(reads)} completed): {torn[:5]}"
        assert backend.list(backend.join(root, "atomic")) == [path]  # no temp file is visible

    def test_uri_reopens_the_same_store(self, backend, root):
        store = ResultsStore(backend, root)
        assert store.uri == backend.uri(root)
        path = backend.join(root, "u", "x.bin")
        backend.write_bytes(path, b"payload")
        reopened = ResultsStore.open(backend.uri(root), **backend.storage_options())
        assert type(reopened.backend) is type(backend) and reopened.root == root
        assert reopened.backend.read_bytes(reopened.backend.join(reopened.root, "u", "x.bin")) == b"payload"

    def test_pickled_backend_reads_the_same_files(self, backend, root):
        path = backend.join(root, "p", "x.bin")
        backend.write_bytes(path, b"shipped")
        store = ResultsStore(backend, root)
        clone = pickle.loads(pickle.dumps(store))  # stores travel to Ray workers
        assert clone.uri == store.uri
        assert clone.backend.read_bytes(path) == b"shipped"

    def test_storage_options_hold_no_credentials(self, backend):
        options: dict[str, Any] = backend.storage_options()
        assert not any(word in k.lower() for k in options for word in CREDENTIAL_WORDS), options
        assert pickle.loads(pickle.dumps(options)) == options


class ResultsBackendSuite(BackendContract, StoreBehaviour):
    """Everything a results-store backend must pass: the backend contract and the store on top."""
