"""Publishing a file on local disk whole.

Every local write that readers may meet half-done goes through :func:`publish_file`: the data
goes to a hidden temporary file in the target's folder (``.NAME.HEX.tmp``), is flushed (and
fsynced unless told otherwise), and then appears under its name in one step, either replacing
what was there (``os.replace``) or only if the name is free (``os.link``, create-if-absent).
Readers see the old file, the new one or none, never a part. A writer killed before the publish
leaves only the hidden temporary file, which :func:`is_temp_name` recognises so that stores can
clean it up.
"""
from __future__ import annotations

import os
import uuid

TEMP_SUFFIX = ".tmp"


def temp_name(name: str) -> str:
    """The hidden, unique temporary name a file ``name`` is written under before it is published."""
    return f".{name}.{uuid.uuid4().hex}{TEMP_SUFFIX}"


def is_temp_name(name: str) -> bool:
    """Whether a base name is one of :func:`temp_name`'s (a writer's leftover when it is old)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def _fsync_folder(folder: str) -> None:
    """Make a rename or link in ``folder`` durable (where the platform lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish_file(path: str | os.PathLike, data: bytes, *, create: bool = False, fsync: bool = True) -> bool:
    """Write ``data`` to ``path`` whole; returns True when this call published it.

    ``create=False`` replaces any existing file (always True). ``create=True`` publishes only if
    no file has the name yet and returns False, leaving the existing file alone, when one has.
    ``fsync`` makes the content and the publish durable before returning.
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, temp_name(name))
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        if create:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
    finally:
        try:  # gone already after a replace; the spare name after a link or a failure
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    if fsync:
        _fsync_folder(folder)
    return True
