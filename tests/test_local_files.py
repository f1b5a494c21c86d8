"""publish_file: the one way a local file is published whole (replace or create-if-absent)."""
from __future__ import annotations

import os
import threading

import pytest

from gensweep.platform.storage import local_files
from gensweep.platform.storage.local_files import is_temp_name, publish_file, temp_name


def test_replace_publishes_whole_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "obj.bin"
    assert publish_file(target, b"first") is True
    assert publish_file(target, b"second", fsync=False) is True
    assert target.read_bytes() == b"second"
    assert sorted(os.listdir(target.parent)) == ["obj.bin"]


def test_create_only_when_absent(tmp_path):
    target = tmp_path / "obj.bin"
    assert publish_file(target, b"mine", create=True) is True
    assert publish_file(target, b"theirs", create=True) is False
    assert target.read_bytes() == b"mine"
    assert sorted(os.listdir(tmp_path)) == ["obj.bin"]


def test_of_racing_creators_exactly_one_wins(tmp_path):
    target = tmp_path / "race.bin"
    won: list[int] = []
    barrier = threading.Barrier(8)

    def create(i: int) -> None:
        barrier.wait(timeout=10)
        if publish_file(target, str(i).encode() * 1000, create=True):
            won.append(i)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(won) == 1
    assert target.read_bytes() == str(won[0]).encode() * 1000
    assert sorted(os.listdir(tmp_path)) == ["race.bin"]


def test_a_failed_publish_keeps_the_old_file_and_removes_its_temp(tmp_path, monkeypatch):
    target = tmp_path / "obj.bin"
    publish_file(target, b"old")

    def broken_replace(src, dst):
        raise OSError("disk went away")

    monkeypatch.setattr(local_files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk went away"):
        publish_file(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["obj.bin"]


def test_temp_names_are_hidden_unique_and_recognised():
    a, b = temp_name("part-1.parquet"), temp_name("part-1.parquet")
    assert a != b and a.startswith(".part-1.parquet.") and is_temp_name(a)
    assert not is_temp_name("part-1.parquet") and not is_temp_name(".hidden")
