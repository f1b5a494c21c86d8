"""P5 for a streamed dataset: loader wait / step time of a 2-worker trial reading from S3.

MNIST-32 (5,000 images) is prepared into a bucket on a loopback moto server (started here on
127.0.0.1, stopped by PID). A Ray Train ``TorchTrainer`` with ``--workers`` CPU workers (gloo)
streams it with Ray Data the way a trial does when the dataset is above
``data.max_shared_bytes``: ``open_dataset(..., shuffle_seed=...)`` handed to the trainer, each
worker's ``get_dataset_shard`` read by a ``ShardLoader`` in ``stream`` mode (every epoch a new
Ray Data pass: shards in a new order, a local shuffle buffer). Each step is the small DCGAN step
of ``bench_data.py`` with the gradients all-reduced across workers, as a data-parallel trial does.
Per worker (rank) and epoch: compute seconds, seconds blocked on the loader, and their ratio (P5 target:
below 5 %). One training run per ``--readahead`` value (``ShardLoader(readahead_batches=...)``: 0 reads
each epoch in the loop's thread; N reads up to N batches ahead across epoch boundaries), one after the
other on the same prepared data, so the settings compare side by side.

Usage: python benchmarks/bench_stream_workers.py [--workers 2] [--epochs 3] [--readahead 0 16] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_data import BATCH, GanStep, start_moto, stop_moto, write_results  # noqa: E402


def worker_loop(config: dict) -> None:
    import ray.train
    import torch
    import torch.distributed as dist

    from gensweep.platform.data import ShardLoader

    torch.set_num_threads(1)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    step = GanStep()
    loader = ShardLoader(ray.train.get_dataset_shard("train"), batch_size=BATCH, seed=0, rank=rank, mode="stream",
                         readahead_batches=config["readahead"])
    rows = []
    for epoch in range(config["epochs"]):
        compute, steps = 0.0, 0
        t_epoch = time.perf_counter()
        for batch in loader.epoch_batches(epoch):
            t0 = time.perf_counter()
            step(batch["image"])
            for net in (step.g, step.d):  # what a data-parallel trial adds per step
                flat = torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])
                dist.all_reduce(flat)
            compute += time.perf_counter() - t0
            steps += 1
        rows.append({"readahead": config["readahead"], "rank": rank, "epoch": epoch, "steps": steps, "wall_s": round(time.perf_counter() - t_epoch, 3),
                     "compute_s": round(compute, 3), "wait_s": round(loader.epoch_wait_s, 3),
                     "wait_over_compute": round(loader.epoch_wait_s / compute, 4)})
    loader.close()
    with open(os.path.join(config["out"], f"rank{rank}-of-{world}.json"), "w") as f:  # one machine: a shared folder
        json.dump(rows, f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--num-cpus", type=int, default=3, help="Ray CPUs: the workers' plus some for Ray Data reads")
    ap.add_argument("--readahead", type=int, nargs="+", default=[0, 16], help="read-ahead depths to compare")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()

    import boto3
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from gensweep.platform.data import open_dataset, prepare
    from gensweep.platform.data.stream import block_order_seed

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    proc, endpoint = start_moto()
    results: dict = {"workers": args.workers, "batch_size": BATCH, "cpus": os.cpu_count(),
                     "load_avg_start": os.getloadavg()}
    try:
        env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}
        os.environ.update(env)
        boto3.client("s3").create_bucket(Bucket="gensweep-bench")
        uri = "s3://gensweep-bench/mnist-32"
        results["fingerprint"] = prepare("mnist", uri, resolution=32).short_fingerprint
        here = os.path.dirname(os.path.abspath(__file__))
        # the dashboard serves the State API, through which Ray Train manages its worker placement group
        ray.init(num_cpus=args.num_cpus, include_dashboard=True, dashboard_host="127.0.0.1", logging_level="WARNING",
                 log_to_driver=False,
                 runtime_env={"env_vars": {**env, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}})
        ray.data.DataContext.get_current().enable_progress_bars = False
        rows, results["fit_s"] = [], {}
        try:
            for depth in args.readahead:
                out = tempfile.mkdtemp(prefix="gensweep-bench-stream-")
                trainer = TorchTrainer(
                    worker_loop, train_loop_config={"epochs": args.epochs, "out": out, "readahead": depth},
                    scaling_config=ScalingConfig(num_workers=args.workers, use_gpu=False),
                    torch_config=TorchConfig(backend="gloo"),
                    datasets={"train": open_dataset(uri, shuffle_seed=block_order_seed(0, 0))},
                    run_config=RunConfig(name=f"bench-stream-{depth}",
                                         storage_path=os.path.abspath("/tmp/gensweep-bench-stream")),
                )
                t0 = time.perf_counter()
                result = trainer.fit()
                results["fit_s"][depth] = round(time.perf_counter() - t0, 1)
                if result.error is not None:
                    raise RuntimeError("the benchmark's training run failed") from result.error
                rows += [row for name in sorted(os.listdir(out)) for row in json.load(open(os.path.join(out, name)))]
        finally:
            ray.shutdown()
    finally:
        stop_moto(proc)
    results["epochs"] = rows
    for depth in args.readahead:
        mine = [r for r in rows if r["readahead"] == depth]
        later = [r for r in mine if r["epoch"] > 0]
        summary = {"wait_over_compute_all": round(sum(r["wait_s"] for r in mine) / sum(r["compute_s"] for r in mine), 4)}
        if later:
            summary["wait_over_compute_later"] = round(sum(r["wait_s"] for r in later)
                                                       / sum(r["compute_s"] for r in later), 4)
        results[f"readahead_{depth}"] = summary
    write_results(results, args.json)


if __name__ == "__main__":
    main()
