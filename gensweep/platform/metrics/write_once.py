"""A folder of write-once objects on local disk or object storage, and an advisory lease.

Reference statistics are computed once and then only read, by drivers and by trial workers
on any node, so they live under the results root (``<root>/refstats/``), local or ``s3://``.
Two primitives make "computed once, never half-visible" hold on both:

* :meth:`WriteOnceFolder.create` publishes an object only if none exists under that name
  (local disk: a complete temporary file hard-linked into place, which fails if the name is
  taken; S3: a PUT with ``If-None-Match: *``). Of two writers racing, exactly one wins and
  the other learns it lost; a writer that crashes never leaves a partial object under the
  name, because the name appears only with its whole content.
* :class:`Lease` is an advisory lock object created the same way, holding its owner and an
  expiry that the holder pushes forward from a heartbeat thread. Other processes wait while
  it is fresh; a lease whose holder died (no heartbeat) expires and is taken over. The lease
  only saves duplicate work: correctness rests on :meth:`create`.
"""
from __future__ import annotations

import json
import os
import posixpath
import threading
import time
import uuid
from typing import Optional

from gensweep.platform.storage.artifacts import STORAGE_RETRY
from gensweep.platform.storage.local_files import publish_file
from gensweep.platform.storage.uris import StorageOptions, fsspec_filesystem, is_local


class WriteOnceFolder:
    """Objects under ``uri`` (a local folder or an ``s3://`` prefix), read and written whole."""

    def __init__(self, uri: str, storage: Optional[StorageOptions] = None) -> None:
        self.uri = uri.rstrip("/") if "://" in uri else os.fspath(uri)
        self.storage = storage or StorageOptions()
        self.fs, self.path = fsspec_filesystem(self.uri, self.storage)
        self.local = is_local(self.uri)
        if self.local:
            os.makedirs(self.path, exist_ok=True)

    def _full(self, name: str) -> str:
        return os.path.join(self.path, name) if self.local else posixpath.join(self.path, name)

    def read(self, name: str) -> Optional[bytes]:
        """The object's bytes, or None when there is none."""
        def get() -> Optional[bytes]:
            try:
                return self.fs.cat_file(self._full(name))
            except FileNotFoundError:
                return None
        return STORAGE_RETRY.call(get, f"read {self.uri}/{name}")

    def exists(self, name: str) -> bool:
        return STORAGE_RETRY.call(lambda: self.fs.exists(self._full(name)), f"stat {self.uri}/{name}")

    def write(self, name: str, data: bytes) -> None:
        """Write (or replace) ``name`` whole; readers see the old or the new object, never a part."""
        if self.local:
            publish_file(self._full(name), data)
            return
        STORAGE_RETRY.call(lambda: self.fs.pipe_file(self._full(name), data), f"write {self.uri}/{name}")

    def create(self, name: str, data: bytes) -> bool:
        """Publish ``data`` as ``name`` unless an object of that name exists; True if this call did.

        A write retried after a lost reply may find its own object: the content then decides."""
        if self.local:
            return publish_file(self._full(name), data, create=True)

        def put() -> bool:
            try:
                self.fs.pipe_file(self._full(name), data, mode="create")
                return True
            except FileExistsError:
                return False

        return STORAGE_RETRY.call(put, f"create {self.uri}/{name}") or self.read(name) == data

    def delete(self, name: str) -> None:
        def rm() -> None:
            try:
                self.fs.rm_file(self._full(name))
            except FileNotFoundError:
                pass
        STORAGE_RETRY.call(rm, f"delete {self.uri}/{name}")

    def names(self, prefix: str = "") -> list[str]:
        """Base names of the objects directly under the folder (or under ``prefix/``)."""
        where = self._full(prefix) if prefix else self.path
        try:
            found = STORAGE_RETRY.call(lambda: self.fs.ls(where, detail=False), f"list {self.uri}")
        except FileNotFoundError:
            return []
        return sorted(posixpath.basename(str(p).rstrip("/")) for p in found)


class Lease:
    """An advisory lock object ``name`` in ``folder``: ``{"owner", "expires"}`` (epoch seconds).

    :meth:`acquire` returns True when this process holds it; the holder's heartbeat moves
    ``expires`` forward every ``ttl_s / 3`` until :meth:`release`."""

    def __init__(self, folder: WriteOnceFolder, name: str, ttl_s: float = 60.0) -> None:
        self.folder, self.name, self.ttl_s = folder, name, ttl_s
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._beat: Optional[threading.Thread] = None

    def _record(self) -> bytes:
        return json.dumps({"owner": self.owner, "expires": time.time() + self.ttl_s}).encode()

    def holder(self) -> Optional[dict]:
        """The current lease record, or None when there is no lease."""
        raw = self.folder.read(self.name)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:  # not ours to judge: treat as held until it expires by age
            return {"owner": "?", "expires": 0.0}

    def acquire(self) -> bool:
        """Take the lease if it is free or expired; False while another process holds it."""
        if self.folder.create(self.name, self._record()):
            return self._started()
        held = self.holder()
        if held is None or float(held.get("expires", 0.0)) >= time.time():
            return False  # just released (the caller looks again) or held and fresh
        # expired: its holder stopped beating. Overwrite, then see whose record survived (of
        # several processes taking over at once, the last writer wins; the rest keep waiting).
        self.folder.write(self.name, self._record())
        time.sleep(0.2)
        again = self.holder()
        return again is not None and again.get("owner") == self.owner and self._started()

    def _started(self) -> bool:
        self._beat = threading.Thread(target=self._heartbeat, name=f"lease-{self.name}", daemon=True)
        self._beat.start()
        return True

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                self.folder.write(self.name, self._record())
            except OSError:  # a missed beat only shortens the lease
                pass

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=10)
        held = self.holder()
        if held is not None and held.get("owner") == self.owner:
            self.folder.delete(self.name)
