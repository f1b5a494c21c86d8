"""Fréchet distance at 2048-d: our eigenvalue routes vs the classic ``scipy.linalg.sqrtm`` route.

Same inputs for every route: two 2048-d feature sets (one with a covariance
spectrum spread over 1e-3..1), statistics from ``mean_cov``.  Routes:

* ``cholesky`` (default of :func:`frechet_distance`): S1 = F F^T by (pivoted)
  Cholesky, then ``eigvalsh(F^T S2 F)``;
* ``eigh``: F = V sqrt(Lambda) from ``eigh(S1)``, then ``eigvalsh(F^T S2 F)``;
* ``sqrtm``: ``tr sqrtm(S1 S2)`` as in the original FID code.

Prints best-of-``--repeats`` wall time (and CPU time) per route, the speed-up
over sqrtm and all values.

``--blas-threads N`` pins the BLAS/LAPACK thread count (set before numpy is
imported); single-threaded timings are far less distorted by other jobs on a
shared machine than multi-threaded ones.

Usage: python benchmarks/bench_frechet.py [--dim 2048] [--n 4096] [--repeats 3] [--blas-threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings


def timed(fn, repeats: int) -> tuple[float, float, float]:
    """(value, best wall seconds, CPU seconds of that run)."""
    best, best_cpu, value = float("inf"), 0.0, None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, best_cpu = wall, cpu
    return value, best, best_cpu


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sqrtm-repeats", type=int, default=1)
    p.add_argument("--blas-threads", type=int, default=None)
    p.add_argument("--json", type=str, default=None)
    args = p.parse_args(argv)
    if args.blas_threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.blas_threads)

    import numpy as np  # after the thread settings

    from gensweep.platform.metrics.distances import frechet_distance, frechet_distance_sqrtm
    from gensweep.platform.metrics.statistics import mean_cov

    rng = np.random.default_rng(0)
    d = args.dim
    a = rng.standard_normal((args.n, d)) * np.logspace(0, -3, d)
    b = rng.standard_normal((args.n, d)) @ (np.eye(d) + 0.01 * rng.standard_normal((d, d))) + 0.05
    mu1, s1 = mean_cov(a)
    mu2, s2 = mean_cov(b)

    rows = {}
    for method in ("cholesky", "eigh"):
        rows[method] = timed(lambda m=method: frechet_distance(mu1, s1, mu2, s2, method=m), args.repeats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows["sqrtm"] = timed(lambda: frechet_distance_sqrtm(mu1, s1, mu2, s2), args.sqrtm_repeats)

    ref_value, ref_time, _ = rows["sqrtm"]
    threads = args.blas_threads or "default"
    print(f"Fréchet distance, D={d}, N={args.n} per set, float64, {os.cpu_count()} CPUs, BLAS threads {threads}, "
          f"load avg {os.getloadavg()[0]:.1f}")
    print(f"{'route':10s} {'wall s':>9s} {'cpu s':>9s} {'speed-up':>9s} {'value':>22s} {'rel diff':>10s}")
    report = {"dim": d, "n": args.n, "blas_threads": threads, "loadavg": os.getloadavg()[0], "routes": {}}
    for name, (value, wall, cpu) in rows.items():
        rel = abs(value - ref_value) / abs(ref_value)
        print(f"{name:10s} {wall:9.3f} {cpu:9.3f} {ref_time / wall:8.1f}x {value:22.12f} {rel:10.2e}")
        report["routes"][name] = {"wall_s": wall, "cpu_s": cpu, "speedup_vs_sqrtm": ref_time / wall, "value": value, "rel_diff": rel}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
