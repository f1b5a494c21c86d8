"""prepare() record by record: unreadable images skipped or named, a chunk with no readable image,
the permutation's values, the lock beside the shards, the messages of its checks and logs (no Ray)."""
from __future__ import annotations

import logging

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from gensweep.platform.data import DatasetExistsError, SourceError, prepare, read_arrays
from gensweep.platform.data.prepare import LOCK_NAME, record_permutation


def _folder(tmp_path, bad=("a/2.png", "a/3.png")):
    """Class folders a (indices 0-3) and b (4-5) of 4x4 grey PNGs of value 10 * index; ``bad`` empty files."""
    root = tmp_path / "src"
    for i, rel in enumerate(["a/0.png", "a/1.png", "a/2.png", "a/3.png", "b/4.png", "b/5.png"]):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if rel in bad:
            (root / rel).write_bytes(b"")
        else:
            Image.fromarray(np.full((4, 4), 10 * i, dtype=np.uint8)).save(root / rel)
    return str(root)


def test_record_permutation_values_are_fixed_per_seed():
    # the layout of every prepared dataset: these orders must not change between versions
    assert record_permutation(12, 0).tolist() == [3, 6, 5, 8, 2, 0, 7, 11, 4, 9, 1, 10]
    assert record_permutation(12, 5).tolist() == [3, 0, 7, 11, 8, 10, 5, 6, 2, 9, 1, 4]


def test_skip_leaves_out_a_whole_unreadable_chunk_and_keeps_the_rest(tmp_path, caplog):
    dest = str(tmp_path / "out")
    with caplog.at_level(logging.WARNING, logger="gensweep.platform.data.prepare"):
        m = prepare(_folder(tmp_path), dest, shard_rows=2, bad_records="skip")  # chunk [2, 3]: both unreadable
    assert (m.count, m.skipped_records, m.labels, m.shard_counts) == (4, 2, [0, 1], [2, 2])
    assert [name.rsplit("/", 2)[-2:] for name in m.skipped_examples] == [["a", "2.png"], ["a", "3.png"]]
    x, y = read_arrays(dest)
    assert x[:, 0, 0, 0].tolist() == [0, 10, 40, 50] and y.tolist() == [0, 0, 1, 1]
    assert caplog.messages == [f"{m.source}: skipped 2 unreadable images (data.bad_records: skip), e.g. "
                               f"{m.skipped_examples[0]}, {m.skipped_examples[1]}"]


def test_skip_tells_the_readable_images_of_a_chunk_from_the_others(tmp_path):
    m = prepare(_folder(tmp_path, bad=("b/4.png",)), str(tmp_path / "out"), shard_rows=2, bad_records="skip")
    assert (m.count, m.skipped_records) == (5, 1)  # chunk [4, 5]: 5 is read on its own
    x, y = read_arrays(str(tmp_path / "out"))
    assert x[:, 0, 0, 0].tolist() == [0, 10, 20, 30, 50] and y.tolist() == [0, 0, 0, 0, 1]


def test_files_that_are_not_images_are_counted_in_a_warning(tmp_path, caplog):
    source = _folder(tmp_path, bad=())
    (tmp_path / "src" / "notes.txt").write_text("not an image")
    (tmp_path / "src" / "labels.csv").write_text("a,b")
    with caplog.at_level(logging.WARNING, logger="gensweep.platform.data.prepare"):
        m = prepare(source, str(tmp_path / "out"))
    assert (m.count, m.ignored_files, m.ignored_examples) == (6, 2, ["labels.csv", "notes.txt"])
    assert caplog.messages == [f"{m.source}: 2 files are not images and were not read (e.g. labels.csv, notes.txt)"]


def test_a_selection_of_only_unreadable_records_is_refused_naming_them(tmp_path):
    import io

    import pyarrow as pa

    png = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(png, format="PNG")
    rows = [{"bytes": None, "path": f"images/missing{i}.png"} for i in range(3)] + [{"bytes": png.getvalue(), "path": "ok.png"}]
    (tmp_path / "ds").mkdir()
    image = pa.array(rows, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    pq.write_table(pa.table({"image": image, "label": [0, 0, 0, 1]}), tmp_path / "ds" / "train.parquet")
    with pytest.raises(SourceError) as info:  # half of each class: two of the unreadable label-0 rows
        prepare(str(tmp_path / "ds"), str(tmp_path / "out"), fraction=0.5, bad_records="skip")
    assert str(info.value).endswith(": none of the 2 selected images can be read"
                                    " (e.g. ['train.parquet[1]', 'train.parquet[2]'])")


def test_a_source_without_images_is_refused(tmp_path):
    np.save(tmp_path / "empty.npy", np.zeros((0, 4, 4), dtype=np.uint8))
    with pytest.raises(SourceError) as info:
        prepare(str(tmp_path / "empty.npy"), str(tmp_path / "out"))
    assert str(info.value).endswith(": no images")


def test_a_source_in_a_bucket_is_read_with_the_storage_options(s3_bucket, s3_server, monkeypatch, tmp_path):
    import boto3

    from gensweep.platform.data import StorageOptions

    np.save(tmp_path / "x.npy", np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4))
    boto3.client("s3").upload_file(str(tmp_path / "x.npy"), s3_bucket, "raw/x.npy")
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # reachable only through the options
    m = prepare(f"s3://{s3_bucket}/raw/x.npy", str(tmp_path / "out"),
                storage=StorageOptions(endpoint_url=s3_server.endpoint, region="us-east-1"))
    assert m.count == 2 and read_arrays(str(tmp_path / "out"))[0][:, 1, 0, 0].tolist() == [4, 20]


def test_fail_names_the_first_unreadable_image_and_the_option(tmp_path):
    with pytest.raises(SourceError) as info:
        prepare(_folder(tmp_path), str(tmp_path / "out"), shard_rows=2)
    assert "2.png" in str(info.value)
    assert str(info.value).endswith(" (data.bad_records: skip leaves unreadable images out and counts them)")


def test_argument_checks_name_the_argument_and_one_row_shards_are_allowed(tmp_path):
    x = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(ValueError) as info:
        prepare(str(tmp_path / "x.npy"), str(tmp_path / "a"), shard_rows=0)
    assert str(info.value) == "shard_rows must be >= 1, got 0"
    with pytest.raises(ValueError) as info:
        prepare(str(tmp_path / "x.npy"), str(tmp_path / "a"), bad_records="ignore")
    assert str(info.value) == "bad_records must be one of ('fail', 'skip'), got 'ignore'"
    m = prepare(str(tmp_path / "x.npy"), str(tmp_path / "a"), shard_rows=1)
    assert m.shard_counts == [1, 1, 1] and m.shards == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert (m.resize, m.fraction, m.seed, m.resize_filter) == ("pad", 1.0, 0, "bicubic")  # the defaults
    assert (tmp_path / "a" / LOCK_NAME).exists()  # the lock sits beside the shards
    meta = pq.ParquetFile(tmp_path / "a" / "part-00000.parquet").metadata
    assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {"ZSTD"}


def test_other_content_is_refused_by_default_naming_both(tmp_path, caplog):
    x = np.zeros((3, 4, 4), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", x + 1)
    with caplog.at_level(logging.INFO, logger="gensweep.platform.data.prepare"):
        first = prepare(str(tmp_path / "x.npy"), str(tmp_path / "d"))
    assert caplog.messages == [f"prepared 3 images ({first.short_fingerprint}) at {tmp_path / 'd'}"]
    assert first.created.endswith("+00:00")  # UTC, to the second
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gensweep.platform.data.prepare"):
        assert prepare(str(tmp_path / "x.npy"), str(tmp_path / "d")) == first
    assert caplog.messages == [f"dataset at {tmp_path / 'd'} is up to date ({first.short_fingerprint})"]
    with pytest.raises(DatasetExistsError) as info:
        prepare(str(tmp_path / "y.npy"), str(tmp_path / "d"))
    new = prepare(str(tmp_path / "y.npy"), str(tmp_path / "e"))
    text = str(info.value)
    assert f"already holds a different dataset ({first.short_fingerprint}, source {first.source!r})" in text
    assert f"new content would be {new.fingerprint[len('sha256:'):][:12]}. Pass overwrite=True" in text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gensweep.platform.data.prepare"):
        prepare(str(tmp_path / "x.npy"), str(tmp_path / "d"), seed=3)
    assert caplog.messages[0] == (f"dataset at {tmp_path / 'd'}: same content ({first.short_fingerprint}), laying it"
                                  " out again (permuted order -> permuted, seed 3)")
