"""The CIFAR python format, Hugging Face Parquet/Arrow and WebDataset shards, local and in a bucket,
prepare to the records the tests put in them; a CIFAR pickle naming any other global is refused."""
from __future__ import annotations

import os
import pickle
import tarfile

import boto3
import numpy as np
import pytest
from PIL import Image

from gensweep.platform.data import SourceError, load_manifest, open_source, prepare, read_arrays
from gensweep.platform.data.sources import source_kind
from tests.data_files import (
    Planted,
    add_member,
    cifar10_archive,
    cifar_batch,
    hf_table,
    rgb_images,
    webdataset_shard,
    write_arrow_stream,
    write_parquet,
)


def _records(uri: str) -> tuple[np.ndarray, np.ndarray]:
    """The prepared records in source order."""
    x, y, idx = read_arrays(uri, return_index=True)
    order = np.argsort(idx)
    return x[order], y[order]


def test_cifar10_archive_reads_the_training_batches(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    x, y = cifar10_archive(archive)
    assert source_kind(str(archive)) == ("cifar", str(archive))
    m = prepare(str(archive), str(tmp_path / "out"))
    assert (m.count, m.resolution, m.channels) == (5, 32, 3)  # the test batch is left out
    assert m.label_names == {1: "class1", 3: "class3", 4: "class4", 5: "class5"}
    got_x, got_y = _records(str(tmp_path / "out"))
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)


def test_cifar100_extracted_folder(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    x = rgb_images(4, side=32, seed=2)
    (folder / "train").write_bytes(cifar_batch(x, [0, 99, 50, 7], key="fine_labels"))
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}))
    assert source_kind(str(folder))[0] == "cifar"
    src = open_source(str(folder))
    np.testing.assert_array_equal(src.load(np.arange(4)), x)
    assert src.labels.tolist() == [0, 99, 50, 7] and src.label_names[99] == "c99"


@pytest.mark.parametrize("payload", ["reduce", "global"])
def test_cifar_pickle_with_another_global_is_refused(tmp_path, payload):
    marker = tmp_path / "pwned"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    if payload == "reduce":  # unpickling would call open(marker, "w")
        blob = pickle.dumps({b"data": Planted(str(marker)), b"labels": [0]}, protocol=2)
    else:  # a bare reference to os.system
        blob = pickle.dumps({b"data": os.system, b"labels": [0]}, protocol=2)
    (folder / "data_batch_1").write_bytes(blob)
    with pytest.raises(SourceError, match="is not allowed"):
        open_source(str(folder))
    assert not marker.exists()


def test_cifar_batch_of_the_wrong_shape_is_refused(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(SourceError, match=r"uint8 array of shape \(N, 3072\)"):
        open_source(f"cifar:{folder}")


def test_hugging_face_parquet_and_arrow(tmp_path):
    x = rgb_images(6, seed=3)
    snapshot = tmp_path / "hub"  # the Hub's layout: data/train-*.parquet beside data/test-*.parquet
    write_parquet(hf_table(x[:4], [0, 1, 0, 1], class_names=["cat", "dog"]), snapshot / "data" / "train-0.parquet")
    write_parquet(hf_table(x[4:], [1, None], struct=True), snapshot / "data" / "train-1.parquet")
    write_parquet(hf_table(x[:1], [0]), snapshot / "data" / "test-0.parquet")
    assert source_kind(str(snapshot))[0] == "hf"
    m = prepare(str(snapshot), str(tmp_path / "out"))
    assert m.count == 6 and m.label_names == {0: "cat", 1: "dog"} and m.labels == [-1, 0, 1]
    got_x, got_y = _records(str(tmp_path / "out"))
    np.testing.assert_array_equal(got_x, x)
    assert got_y.tolist() == [0, 1, 0, 1, 1, -1]

    saved = tmp_path / "saved"  # save_to_disk: an Arrow stream, the image column named img, no labels
    write_arrow_stream(hf_table(x, None, column="img"), saved / "data-00000-of-00001.arrow")
    src = open_source(str(saved))
    np.testing.assert_array_equal(np.stack(src.load(np.arange(6))), x)
    assert (src.labels == -1).all()

    write_parquet(hf_table(x, None, column="picture"), tmp_path / "other.parquet")
    with pytest.raises(SourceError, match="no image column"):
        open_source(str(tmp_path / "other.parquet"))


def test_webdataset_shards(tmp_path):
    x = rgb_images(5, seed=4)
    shards = tmp_path / "shards"
    shards.mkdir()
    webdataset_shard(shards / "train-000.tar", x[:3], [2, 0, 1], extra=True)
    webdataset_shard(shards / "train-001.tar", x[3:], [1, 2], start=3)
    with tarfile.open(shards / "train-001.tar", "a") as tar:
        add_member(tar, "orphan.cls", b"0")  # a sample without an image
    assert source_kind(str(shards))[0] == "webdataset"
    m = prepare(str(shards), str(tmp_path / "out"))
    assert m.count == 5 and m.labels == [0, 1, 2]
    assert m.ignored_files == 4 and "train-000.tar:sample0000.json" in m.ignored_examples
    got_x, got_y = _records(str(tmp_path / "out"))
    np.testing.assert_array_equal(got_x, x)
    assert got_y.tolist() == [2, 0, 1, 1, 2]
    one = open_source(str(shards / "train-001.tar"))  # a single shard by its suffix
    assert one.count == 2 and one.description.startswith("webdataset:")


def test_every_kind_from_a_bucket_matches_local(s3_bucket, tmp_path):
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    cifar10_archive(tmp_path / "cifar-10-python.tar.gz")
    x = rgb_images(4, seed=5)
    write_parquet(hf_table(x, [0, 1, 1, 0]), tmp_path / "hf" / "train.parquet")
    (tmp_path / "wds").mkdir()
    webdataset_shard(tmp_path / "wds" / "a.tar", x[:2], [0, 1])
    webdataset_shard(tmp_path / "wds" / "b.tar", x[2:], [1, 0], start=2)
    for rel in ("cifar-10-python.tar.gz", "hf/train.parquet", "wds/a.tar", "wds/b.tar"):
        client.upload_file(str(tmp_path / rel), s3_bucket, f"raw/{rel}")
    cases = {"cifar": (f"s3://{s3_bucket}/raw/cifar-10-python.tar.gz", str(tmp_path / "cifar-10-python.tar.gz")),
             "hf": (f"hf:s3://{s3_bucket}/raw/hf", str(tmp_path / "hf")),
             "wds": (f"webdataset:s3://{s3_bucket}/raw/wds", str(tmp_path / "wds"))}
    for name, (remote_src, local_src) in cases.items():
        remote = prepare(remote_src, f"s3://{s3_bucket}/prepared/{name}", resolution=8, resize="stretch")
        here = prepare(local_src, str(tmp_path / f"prepared-{name}"), resolution=8, resize="stretch")
        assert remote.fingerprint == here.fingerprint and remote.labels == here.labels, name
        assert remote.resize_filter == "bicubic" and "testing" not in remote.source
    assert load_manifest(f"s3://{s3_bucket}/prepared/wds").count == 4
    with pytest.raises(SourceError, match="does not exist"):
        open_source(f"hf:s3://{s3_bucket}/raw/missing.parquet")


def test_hugging_face_rows_with_a_path_instead_of_bytes(tmp_path):
    import pyarrow as pa

    x = rgb_images(2, seed=6)
    (tmp_path / "ds" / "images").mkdir(parents=True)
    Image.fromarray(x[0]).save(tmp_path / "ds" / "images" / "0.png")
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    col = pa.array([{"bytes": None, "path": "images/0.png"}, {"bytes": None, "path": "images/missing.png"}], type=struct)
    write_parquet(pa.table({"image": col, "label": [0, 1]}), tmp_path / "ds" / "train.parquet")
    m = prepare(str(tmp_path / "ds"), str(tmp_path / "out"), bad_records="skip")
    assert m.count == 1 and m.skipped_records == 1 and m.skipped_examples == ["train.parquet[1]"]
    got_x, got_y = _records(str(tmp_path / "out"))
    np.testing.assert_array_equal(got_x[0], x[0])
    assert got_y.tolist() == [0]
