"""What a sweep pays before its first trial trains, two pieces side by side in one run.

1. The shared dataset: Ray Data ``open_dataset(...).materialize()`` against the driver's own
   read (``gensweep.platform.data.in_memory.materialized_dataset``), same prepared dataset.
2. A trial actor's start: seconds from asking for a 1-CPU actor to it answering after importing
   torch and the platform, on a fresh local Ray, with and without Ray's idle worker processes
   preloading those modules (``_system_config={"preload_python_modules": [...]}``), which
   gensweep does not set (see BENCHMARKS.md, "Sweep start without Ray Data").

    PYTHONPATH=. python benchmarks/bench_sweep_start.py --repeats 3
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

PRELOAD = ["torch", "gensweep.platform.trial.launch"]


def dataset_seconds(uri: str) -> tuple[float, float]:
    import ray.data

    from gensweep.platform.data import open_dataset
    from gensweep.platform.data.in_memory import materialized_dataset

    ray.data.DataContext.get_current().enable_progress_bars = False
    t0 = time.perf_counter()
    ray_data = open_dataset(uri).materialize()
    t1 = time.perf_counter()
    driver = materialized_dataset(uri)
    t2 = time.perf_counter()
    if ray_data.count() != driver.count():
        raise RuntimeError(f"row counts differ: {ray_data.count()} vs {driver.count()}")
    return t1 - t0, t2 - t1


def actor_start_seconds(preload: bool, settle_s: float) -> float:
    import ray

    kwargs = {"_system_config": {"preload_python_modules": PRELOAD}} if preload else {}
    ray.init(address="local", num_cpus=2, include_dashboard=False, **kwargs)
    try:
        time.sleep(settle_s)  # let Ray start (and preload) its idle worker processes

        @ray.remote(num_cpus=1)
        class Trial:
            def ready(self) -> None:
                import gensweep.platform.trial.launch  # noqa: F401 - what a trial actor imports
                import torch  # noqa: F401

        t0 = time.perf_counter()
        ray.get(Trial.remote().ready.remote())
        return time.perf_counter() - t0
    finally:
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--settle", type=float, default=3.0, help="seconds between Ray start and the actor request")
    args = ap.parse_args()
    import ray

    from benchmarks.sweep_support import machine
    from gensweep.platform.data import prepare

    with tempfile.TemporaryDirectory() as root:
        uri = f"{root}/mnist-32"
        prepare("mnist", uri, resolution=32)
        ray.init(address="local", num_cpus=2, include_dashboard=False)
        try:
            dataset_seconds(uri)  # warm-up: imports and the first Ray Data start
            data = [dataset_seconds(uri) for _ in range(args.repeats)]
        finally:
            ray.shutdown()
    starts = {p: [actor_start_seconds(p, args.settle) for _ in range(args.repeats)] for p in (False, True)}
    med = statistics.median
    print(f"\n{machine()}")
    print("| what | median of %d (s) | runs (s) |" % args.repeats)
    print("|---|---|---|")
    print(f"| shared dataset, Ray Data materialize | {med(d[0] for d in data):.2f} | {', '.join(f'{d[0]:.2f}' for d in data)} |")
    print(f"| shared dataset, driver read | {med(d[1] for d in data):.2f} | {', '.join(f'{d[1]:.2f}' for d in data)} |")
    for p, label in ((False, "no preload (gensweep)"), (True, "idle workers preload torch + platform")):
        print(f"| first trial actor ready, {label} | {med(starts[p]):.2f} | {', '.join(f'{s:.2f}' for s in starts[p])} |")


if __name__ == "__main__":
    main()
