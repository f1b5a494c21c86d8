"""Streaming prepared datasets through real Ray Data (local disk and loopback S3)."""
from __future__ import annotations


import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
import torch
from ray.train import DataConfig

from gensweep.platform.data import (
    BadRecordError,
    BadRecordTally,
    ShardLoader,
    count_bad_records,
    ingest_execution_options,
    load_manifest,
    open_dataset,
    prepare,
    read_arrays,
)
from gensweep.platform.data.blocks import SharedBlocks, read_block
from gensweep.platform.data.prepare import record_permutation

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster(s3_server):
    # Ray workers read S3 with the standard AWS environment; give them the test server's.
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": s3_server.env()})
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def mnist_small(tmp_path_factory):
    """1,000 MNIST digits at 32x32 in 4 shards, plus the reference arrays."""
    uri = str(tmp_path_factory.mktemp("data") / "mnist")
    manifest = prepare("mnist", uri, resolution=32, fraction=0.2, seed=1, shard_rows=256)
    images, labels, index = read_arrays(uri, return_index=True)
    return uri, manifest, images, labels, index


def _expected(images):
    return images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(127.5) - 1


def _rows_by_index(rows):
    order = np.argsort(rows["index"])
    return {k: np.asarray(v)[order] for k, v in rows.items()}


def test_s3_stream_equals_local(ray_cluster, mnist_small, s3_bucket):
    uri, manifest, images, labels, index = mnist_small
    s3_uri = f"s3://{s3_bucket}/mnist"
    remote = prepare("mnist", s3_uri, resolution=32, fraction=0.2, seed=1, shard_rows=300)
    assert remote.fingerprint == manifest.fingerprint
    got = {}
    for name, where in (("local", uri), ("s3", s3_uri)):
        rows = _rows_by_index(_take_columns(open_dataset(where)))
        assert rows["image"].shape == (1000, 1, 32, 32) and rows["image"].dtype == np.float32
        np.testing.assert_array_equal(rows["index"], index)
        np.testing.assert_array_equal(rows["label"], labels)
        got[name] = rows["image"]
    np.testing.assert_array_equal(got["s3"], got["local"])
    np.testing.assert_array_equal(got["local"], _expected(images))


def _take_columns(ds):
    cols = {"image": [], "label": [], "index": []}
    for b in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for k in cols:
            cols[k].append(b[k])
    return {k: np.concatenate(v) for k, v in cols.items()}


def test_loader_materialized_from_streaming_split(ray_cluster, mnist_small):
    uri, manifest, images, labels, index = mnist_small

    def epochs(seed, via_train=False):
        if via_train:  # the split Ray Train hands to a worker (get_dataset_shard)
            config = DataConfig(execution_options=ingest_execution_options())
            it = config.configure({"train": open_dataset(uri)}, world_size=1, worker_handles=None,
                                  worker_node_ids=None)[0]["train"]
        else:
            it = open_dataset(uri).streaming_split(1)[0]
        loader = ShardLoader(it, batch_size=64, seed=seed, expected_bytes=manifest.decoded_nbytes(1))
        out = [[(b["image"].clone(), b["label"].clone()) for b in loader.epoch_batches(e)] for e in (0, 1)]
        return loader, out

    loader, run1 = epochs(seed=7)
    assert loader.mode == "materialize" and loader.rows == 1000 and loader.materialize_s > 0
    assert len(run1[0]) == 1000 // 64
    x, y = run1[0][0]
    assert x.shape == (64, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1  # zero padding -> -1
    assert loader.wait_s > 0
    # same seed, new dataset and loader (through Ray Train's DataConfig): identical order and pixels
    _, run2 = epochs(seed=7, via_train=True)
    for (xa, ya), (xb, yb) in zip(run1[0], run2[0]):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # epochs differ (the 40 rows that drop_last leaves out differ too)
    x0 = torch.cat([b[0] for b in run1[0]])
    x1 = torch.cat([b[0] for b in run1[1]])
    assert x0.shape == x1.shape == (960, 1, 32, 32) and not torch.equal(x0, x1)
    # every delivered image is one of the prepared ones, decoded exactly
    reference = {bytes(r.tobytes()) for r in _expected(images)}
    assert all(bytes(r.numpy().tobytes()) in reference for r in x0[:100])


def test_loader_streaming_reproducible(ray_cluster, mnist_small):
    uri, manifest, images, labels, index = mnist_small

    def first_labels(epoch):
        loader = ShardLoader(open_dataset(uri).iterator(), batch_size=50, seed=3, mode="stream",
                             shuffle_buffer_size=300)
        batches = list(loader.epoch_batches(epoch))
        assert loader.mode == "stream" and loader.rows is None and loader.wait_s > 0
        assert all(b["image"].shape == (50, 1, 32, 32) for b in batches)
        return torch.cat([b["label"] for b in batches])

    a, b, c = first_labels(0), first_labels(0), first_labels(1)
    assert len(a) == 1000
    assert torch.equal(a, b)  # seeded local shuffle, order-preserving dataset
    assert not torch.equal(a, c)
    assert sorted(a.tolist()) == sorted(c.tolist()) == sorted(labels.tolist())


def test_loader_auto_falls_back_to_streaming(ray_cluster, mnist_small):
    uri, *_ = mnist_small
    loader = ShardLoader(open_dataset(uri).iterator(), batch_size=100, seed=0,
                         materialize_max_bytes=300 * 4096)  # ~300 decoded images
    n = sum(len(b["label"]) for b in loader.epoch_batches(0))
    assert n == 1000 and loader.mode == "stream" and not loader.materialized


def _shard_rows(shard, **kwargs):
    cols = {"image": [], "label": [], "index": []}
    for b in shard.iter_batches(batch_size=64, **kwargs):
        for k in cols:
            cols[k].append(b[k])
    return {k: np.concatenate(v) for k, v in cols.items()}


def test_shared_blocks_give_each_rank_an_equal_share_by_index(ray_cluster, mnist_small):
    uri, manifest, images, labels, index = mnist_small
    blocks = SharedBlocks.of(open_dataset(uri).repartition(5).materialize())
    assert len(blocks.refs) > 1  # the assignment has to cross block boundaries
    expected, order = _expected(images), np.argsort(index)
    for world in (1, 3):
        seen = []
        for rank in range(world):
            rows = _shard_rows(blocks.shard(rank, world))
            # rank r takes every world-th row in index order, each rank 1000 // world of them
            np.testing.assert_array_equal(rows["index"], np.sort(index)[rank::world][:1000 // world])
            pos = order[np.searchsorted(index[order], rows["index"])]
            np.testing.assert_array_equal(rows["image"], expected[pos])
            np.testing.assert_array_equal(rows["label"], labels[pos])
            seen.append(rows["index"])
        assert len(np.unique(np.concatenate(seen))) == world * (1000 // world)


def test_shared_shard_shuffles_by_seed_and_feeds_the_loader(ray_cluster, mnist_small):
    uri, manifest, images, labels, index = mnist_small
    blocks = SharedBlocks.of(open_dataset(uri).materialize())

    @ray.remote(num_cpus=0)
    def in_another_process(blocks, seed):  # the blocks travel by reference, as in a Train worker's config
        return _shard_rows(blocks.shard(1, 2), local_shuffle_seed=seed)["index"]

    a, b, c = ray.get([in_another_process.remote(blocks, s) for s in (5, 5, 6)])
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    np.testing.assert_array_equal(np.sort(a), np.sort(index)[1::2])

    loader = ShardLoader(blocks.shard(0, 2), batch_size=50, seed=3)
    got = torch.cat([batch["label"] for batch in loader.epoch_batches(0)])
    assert loader.mode == "materialize" and loader.rows == 500 and len(got) == 500
    assert sorted(got.tolist()) == sorted(labels[np.argsort(index)][0::2].tolist())


def test_shared_blocks_need_a_materialized_dataset(ray_cluster, mnist_small):
    with pytest.raises(TypeError, match="materialized"):
        SharedBlocks.of(open_dataset(mnist_small[0]))


def test_read_block_cuts_a_slice():
    table = pa.table({"image": np.arange(6) * 10, "label": np.arange(6), "index": np.arange(6) + 100})
    cols = read_block(table, (2, 5))
    assert cols["index"].tolist() == [102, 103, 104] and cols["image"].tolist() == [20, 30, 40]


@pytest.fixture(scope="module")
def corrupt_dataset(tmp_path_factory):
    """40 8x8 gray images in 2 shards; shard 1, row 3 (source index 23: the fixture picks the
    permutation seed that puts it there) truncated to 10 bytes."""
    root = tmp_path_factory.mktemp("corrupt")
    x = np.random.default_rng(0).integers(0, 256, size=(40, 8, 8), dtype=np.uint8)
    np.savez(root / "src.npz", x=x, y=np.arange(40) % 4)
    uri = str(root / "ds")
    seed = next(k for k in range(10_000) if record_permutation(40, k)[23] == 23)  # shard 1, row 3
    prepare(str(root / "src.npz"), uri, shard_rows=20, seed=seed)
    shard = root / "ds" / "part-00001.parquet"
    assert pq.read_table(shard).column("index")[3].as_py() == 23
    table = pq.read_table(shard)
    images = table.column("image").to_pylist()
    images[3] = images[3][:10]
    table = table.set_column(0, "image", pa.array(images, type=pa.binary()))
    pq.write_table(table, shard)
    return uri, root / "ds"


def test_bad_records_fail(ray_cluster, corrupt_dataset):
    uri, path = corrupt_dataset
    with pytest.raises(Exception, match=r"part-00001\.parquet, row 3, index 23: image has 10 bytes, expected 64"):
        open_dataset(uri).take_all()
    with pytest.raises(BadRecordError, match=r"part-00001\.parquet, row 3"):
        read_arrays(uri)


def test_bad_records_skip_counted(ray_cluster, corrupt_dataset):
    uri, path = corrupt_dataset
    tally = BadRecordTally()
    ds = open_dataset(uri, bad_records="skip", tally=tally)
    rows = _take_columns(ds)
    assert len(rows["index"]) == 39 and 23 not in rows["index"].tolist()
    assert tally.count() == 1 and tally.occurrences() == 1
    (rec,) = tally.records()
    assert rec.shard == str(path / "part-00001.parquet") and rec.row == 3 and rec.index == 23
    _take_columns(ds)  # a second pass drops it again: one distinct record, two drops
    assert tally.count() == 1 and tally.occurrences() == 2
    (scanned,) = count_bad_records(uri)
    assert (scanned.shard, scanned.row, scanned.index) == ("part-00001.parquet", 3, 23)
    assert load_manifest(uri).count == 40
    with pytest.raises(ValueError, match="only applies"):
        open_dataset(uri, tally=tally)
    with pytest.raises(ValueError, match="bad_records"):
        open_dataset(uri, bad_records="ignore")


def test_driver_materialized_dataset_equals_ray_data(ray_cluster, mnist_small, corrupt_dataset):
    from gensweep.platform.data.in_memory import materialized_dataset

    uri, manifest, images, labels, index = mnist_small
    ds = materialized_dataset(uri)
    assert type(ds).__name__ == "MaterializedDataset"
    fast, ray_data = _take_columns(ds), _rows_by_index(_take_columns(open_dataset(uri)))
    assert fast["index"].tolist() == sorted(fast["index"].tolist()) == ray_data["index"].tolist()
    for column in ("image", "label", "index"):
        assert fast[column].dtype == ray_data[column].dtype
        np.testing.assert_array_equal(fast[column], ray_data[column])
    np.testing.assert_array_equal(fast["image"], _expected(images))

    bad_uri, _ = corrupt_dataset
    with pytest.raises(BadRecordError, match=r"part-00001\.parquet, row 3"):
        materialized_dataset(bad_uri)
    skipped = _take_columns(materialized_dataset(bad_uri, bad_records="skip"))
    assert len(skipped["index"]) == 39 and 23 not in skipped["index"].tolist()


# --------------------------------------------------------------------------- shuffling while streaming


def _mean_distinct_labels(loader: ShardLoader, epoch: int) -> float:
    return float(np.mean([len(set(b["label"].tolist())) for b in loader.epoch_batches(epoch)]))


def test_streamed_batches_mix_classes_like_materialized_ones(ray_cluster, tmp_path):
    """MNIST's source is sorted by class. A 64-image batch streamed from the shards (the first pass
    served as it arrives, as when a shard does not fit in memory; later passes through a shuffle
    buffer much smaller than the data) holds as many classes as one from the materialized loader."""
    uri = str(tmp_path / "mnist-8")
    prepare("mnist", uri, resolution=8, shard_rows=500)
    images, labels = read_arrays(uri)
    materialized = ShardLoader.from_arrays(images, labels, batch_size=64, seed=0)
    want = np.mean([_mean_distinct_labels(materialized, e) for e in (0, 1)])
    streamed = ShardLoader(open_dataset(uri, shuffle_seed=0).iterator(), batch_size=64, seed=0,
                           materialize_max_bytes=64 * 256 * 4, shuffle_buffer_size=128)
    first = _mean_distinct_labels(streamed, 0)  # overflow pass: arrival order, shuffled within batches
    assert streamed.mode == "stream"
    later = _mean_distinct_labels(streamed, 1)
    assert want > 9.5
    assert abs(first - want) <= 0.1 * want and abs(later - want) <= 0.1 * want, (first, later, want)


def test_block_order_changes_every_pass_and_repeats_with_the_seed(ray_cluster, mnist_small):
    uri = mnist_small[0]  # 4 shards

    def passes(ds, n=3):
        return [_take_columns(ds)["index"].tolist() for _ in range(n)]

    seeded = passes(open_dataset(uri, shuffle_seed=7))
    assert all(sorted(p) == sorted(seeded[0]) for p in seeded)  # every record once per pass
    assert len({tuple(p[::256]) for p in seeded}) > 1  # the shards came in another order
    assert passes(open_dataset(uri, shuffle_seed=7)) == seeded  # seeded: the same sequence of orders
    fixed = passes(open_dataset(uri), n=2)
    assert fixed[0] == fixed[1]  # no seed: the manifest's shard order on every pass
