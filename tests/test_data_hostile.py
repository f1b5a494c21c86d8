"""Malformed data inputs, careless and hostile: each is refused by ``gensweep data prepare`` with
exit 2, a message naming the file or field and no traceback, in under 5 s and 1 GiB; unreadable
images are skipped and counted under ``bad_records: skip``; files that are not images are counted."""
from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import resource
import struct
import tarfile
import time
import zlib

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from gensweep.cli import main as cli_main
from gensweep.platform.data import load_manifest
from tests.data_files import add_member, hf_table, png_bytes, rgb_images, write_parquet


def _png(path, value=0, side=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((side, side, 3), value, dtype=np.uint8)).save(path)


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _bomb_png(path):
    """A valid PNG header claiming 20000 x 20000 pixels, a few bytes long."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def _folder(tmp, *bad):
    """An image folder of two good images plus the bad files ``bad(folder)`` writes."""
    folder = tmp / "imgs"
    _png(folder / "good0.png", 10)
    _png(folder / "good1.png", 20)
    for write in bad:
        write(folder)
    return str(folder)


def _npz(tmp, **arrays):
    path = tmp / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def _file(tmp, name, data: bytes):
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _tar(tmp, name, members: dict[str, bytes], mode="w"):
    path = tmp / name
    with tarfile.open(path, mode) as tar:
        for member, data in members.items():
            add_member(tar, member, data)
    return str(path)


def _cifar_dir(tmp, obj):
    folder = tmp / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(pickle.dumps(obj, protocol=2))
    return str(folder)


class _Exec:
    def __reduce__(self):
        return (os.system, ("touch /tmp/gensweep-data-pwned",))


_GOOD_PNG = png_bytes(rgb_images(1)[0])
_X = rgb_images(4)

# (case id, builder(tmp_path) -> source, substrings the message must hold)
CORPUS = [
    ("truncated-png", lambda t: _folder(t, lambda f: (_png(f / "bad.png", 5, 32), _truncate(f / "bad.png"))),
     ["bad.png", "data.bad_records"]),
    ("zero-byte-png", lambda t: _folder(t, lambda f: (f / "empty.png").write_bytes(b"")), ["empty.png", "empty file"]),
    ("text-named-png", lambda t: _folder(t, lambda f: (f / "notes.png").write_text("hello")), ["notes.png"]),
    ("jpeg-header-only", lambda t: _folder(t, lambda f: (f / "cut.jpg").write_bytes(
        _jpeg_bytes()[:200])), ["cut.jpg"]),
    ("decompression-bomb-png", lambda t: _folder(t, lambda f: _bomb_png(f / "bomb.png")), ["bomb.png", "pixels"]),
    ("folder-without-images", lambda t: _file(t, "docs/readme.txt", b"x") and str(t / "docs"),
     ["holds no", "1 other files"]),
    ("folder-of-broken-images", lambda t: _file(t, "broken/a.png", b"") and _file(t, "broken/b.png", b"PNG")
     and str(t / "broken"), ["none of its 2 images can be read"]),
    ("zero-byte-npz", lambda t: _file(t, "empty.npz", b""), ["empty.npz", "not a readable NumPy file"]),
    ("zero-byte-npy", lambda t: _file(t, "empty.npy", b""), ["empty.npy", "not a readable NumPy file"]),
    ("text-named-npz", lambda t: _file(t, "fake.npz", b"just text, no zip"), ["fake.npz"]),
    ("npz-object-array", lambda t: _npz(t, x=np.array([{"a": 1}], dtype=object)), ["data.npz"]),
    ("npz-without-images", lambda t: _npz(t, pixels=_X), ["no image array under keys"]),
    ("npz-channels-first", lambda t: _npz(t, x=np.zeros((4, 3, 8, 8), np.uint8)), ["must be transposed to NHWC"]),
    ("npz-out-of-range-floats", lambda t: _npz(t, x=np.full((4, 8, 8), 300.0)), ["not integers in 0..255"]),
    ("npz-label-length", lambda t: _npz(t, x=_X, y=np.arange(3)), ["labels shaped (3,)"]),
    ("npz-negative-labels", lambda t: _npz(t, x=_X, y=np.array([0, 1, -7, 2])), ["found -7"]),
    ("cifar-pickle-runs-code", lambda t: _cifar_dir(t, {b"data": _Exec(), b"labels": [0]}), ["is not allowed"]),
    ("cifar-pickle-not-a-dict", lambda t: _cifar_dir(t, [1, 2, 3]), ["a CIFAR batch is a dict"]),
    ("cifar-archive-garbage", lambda t: _file(t, "cifar-10-python.tar.gz", gzip.compress(b"not a tar" * 10)),
     ["not a readable tar archive"]),
    ("cifar-archive-without-batches", lambda t: _tar(t, "cifar-100-python.tar.gz", {"x/readme": b"hi"}, "w:gz"),
     ["no CIFAR training batches"]),
    ("webdataset-label-not-int", lambda t: _tar(t, "s.tar", {"k.png": _GOOD_PNG, "k.cls": b"cat"}),
     ["must hold an integer"]),
    ("webdataset-gzipped-shard", lambda t: _file(t, "s.tar", gzip.compress(b"\0" * 1024)),
     ["not a readable uncompressed tar shard"]),
    ("webdataset-no-images", lambda t: _tar(t, "s.tar", {"k.cls": b"1", "k.json": b"{}"}), ["no samples with a"]),
    ("hf-no-image-column", lambda t: _hf(t, hf_table(_X, [0, 1, 0, 1], column="pixels")), ["no image column"]),
    ("hf-string-labels", lambda t: _hf(t, pa.table({"image": pa.array([_GOOD_PNG]), "label": pa.array(["cat"])})),
     ["must hold integers"]),
    ("hf-garbage-parquet", lambda t: _file(t, "d.parquet", b"PAR1 not really"), ["not a readable Parquet/Arrow"]),
    ("hf-arrow-garbage", lambda t: _file(t, "d.arrow", json.dumps({"a": 1}).encode()), ["not a readable Parquet/Arrow"]),
    ("missing-source", lambda t: str(t / "nowhere.npz"), ["nowhere.npz"]),
]


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb_images(1, side=32)[0]).save(buf, format="JPEG")
    return buf.getvalue()


def _hf(tmp, table):
    write_parquet(table, tmp / "d.parquet")
    return str(tmp / "d.parquet")


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 15 and len({c[0] for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case,build,expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_data_is_a_clean_error(case, build, expected, tmp_path, capsys):
    source = build(tmp_path)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    started = time.monotonic()
    rc = cli_main(["data", "prepare", source, str(tmp_path / "out"), "--resolution", "8"])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert rc == 2, f"{case}: exit {rc}, stderr: {err}"
    assert "Traceback" not in err and err.startswith("gensweep: ")
    for text in expected:
        assert text in err, f"{case}: {text!r} not in the message:\n{err}"
    assert elapsed < 5.0, f"{case}: took {elapsed:.1f} s"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 1024 ** 2, f"{case}: over 1 GiB"
    assert not os.path.exists("/tmp/gensweep-data-pwned")


def test_skip_counts_bad_records_and_ignored_files(tmp_path, capsys):
    def bad(f):
        (f / "empty.png").write_bytes(b"")
        _png(f / "cls" / "cut.png", 7, 32)
        _truncate(f / "cls" / "cut.png")
        (f / "notes.txt").write_text("not an image")
        (f / "labels.csv").write_text("a,b")
    source = _folder(tmp_path, bad)
    out = str(tmp_path / "out")
    assert cli_main(["data", "prepare", source, out, "--resolution", "8", "--bad-records", "skip"]) == 0
    printed = capsys.readouterr().out
    m = load_manifest(out)
    assert m.count == 2 and m.skipped_records == 2
    assert sorted(os.path.basename(p) for p in m.skipped_examples) == ["cut.png", "empty.png"]
    assert m.ignored_files == 2 and sorted(m.ignored_examples) == ["labels.csv", "notes.txt"]
    assert "skipped 2 unreadable images" in printed and "ignored 2 files that are not images" in printed
    # the same folder without skip names the first unreadable image and the option
    assert cli_main(["data", "prepare", source, str(tmp_path / "strict"), "--resolution", "8"]) == 2
    assert "data.bad_records" in capsys.readouterr().err
