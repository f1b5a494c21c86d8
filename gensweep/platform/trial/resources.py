"""What one trial holds on a Ray cluster, and how many trials of a spec fit at once.

With the ``train`` launcher a trial is a Tune function trainable (the driver: it launches the
trial's ``TorchTrainer`` and waits) plus ``resources.workers`` Ray Train workers of
``cpus_per_worker`` CPUs and ``gpus_per_worker`` GPUs each. The driver reserves no CPU, only
a small share of the ``memory`` resource every Ray node has: a CPU fraction would make N
one-CPU trials need N + 0.01 CPUs, so the last admitted trial's workers could never start.
With the ``inline`` launcher the trial actor is the one worker and holds its resources. Which
launcher a trial uses (``auto`` resolved) is ``spec.resources.inline``.

A worker lives on one node, so the count is made by packing whole workers onto nodes, not by
dividing cluster totals. Fractional GPUs are allowed: four trials of ``gpus_per_worker: 0.25``
share one GPU.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence, Union

# Held by each trial's Tune function trainable under the train launcher (bytes of Ray's
# ``memory`` resource; a Ray placement-group bundle needs one non-zero resource).
DRIVER_MEMORY = 64 * 2**20
# Ray accounts resources in units of 1e-4; compare with that tolerance.
_EPS = 1e-4

NodeResources = Mapping[str, float]
ClusterResources = Union[NodeResources, Sequence[NodeResources]]


def worker_resources(spec: Any) -> dict[str, float]:
    """One worker's CPU (and GPU, when it uses one)."""
    res = spec.resources
    return {"CPU": res.cpus_per_worker, **({"GPU": res.gpus_per_worker} if res.gpus_per_worker > 0 else {})}


def driver_resources(spec: Any) -> dict[str, float]:
    """What Tune reserves for the trial actor (``tune.with_resources``)."""
    if spec.resources.inline:
        return worker_resources(spec)
    return {"CPU": 0, "memory": DRIVER_MEMORY}


def held_resources(spec: Any) -> dict[str, float]:
    """Total CPU and GPU one trial's workers hold while it runs (the driver holds neither)."""
    res = spec.resources
    return {"CPU": res.workers * res.cpus_per_worker, "GPU": res.workers * res.gpus_per_worker}


def _nodes(cluster_resources: ClusterResources) -> list[dict[str, float]]:
    items: Iterable[NodeResources] = (
        [cluster_resources] if isinstance(cluster_resources, Mapping) else cluster_resources)
    return [{"CPU": float(n.get("CPU", 0.0)), "GPU": float(n.get("GPU", 0.0)),
             "memory": float(n.get("memory", float("inf")))} for n in items]  # not given: no limit


def _take(node: dict[str, float], need: Mapping[str, float]) -> bool:
    if all(node.get(k, 0.0) + _EPS >= v for k, v in need.items()):
        for k, v in need.items():
            node[k] -= v
        return True
    return False


def max_concurrent_trials(spec: Any, cluster_resources: ClusterResources, *, limit: int = 1024) -> int:
    """The number of trials of ``spec`` that can run at once on ``cluster_resources``.

    ``cluster_resources`` is either one mapping (cluster totals, as ``ray.cluster_resources()``
    returns: treated as a single node, so it can overestimate when workers cannot span nodes)
    or a list of per-node mappings (see :func:`node_resources`). Trials are placed one at a
    time: each worker on the first node with room, then the trial's driver. The answer is at
    least 1 (an autoscaling cluster may add the nodes later), at most ``limit``.
    """
    return max(1, _packed_trials(spec, cluster_resources, limit))


def trial_fits(spec: Any, cluster_resources: ClusterResources) -> bool:
    """Whether one trial of ``spec`` can be placed at all (for a fixed-size cluster, e.g. a local one)."""
    return _packed_trials(spec, cluster_resources, 1) == 1


def _packed_trials(spec: Any, cluster_resources: ClusterResources, limit: int) -> int:
    worker = worker_resources(spec)
    driver = {} if spec.resources.inline else {k: v for k, v in driver_resources(spec).items() if v}
    free = _nodes(cluster_resources)
    # Fill GPU nodes with GPU workers first and keep CPU-only nodes for CPU trials; big nodes first.
    free.sort(key=lambda n: (-n["GPU"], -n["CPU"]) if "GPU" in worker else (n["GPU"], -n["CPU"]))
    count = 0
    while count < limit:
        trial_ok = all(any(_take(n, worker) for n in free) for _ in range(spec.resources.workers))
        if not trial_ok or (driver and not any(_take(n, driver) for n in reversed(free))):
            break
        count += 1
    return count


def node_resources() -> list[dict[str, float]]:
    """Total resources of each alive node of the connected Ray cluster (needs ``ray.init``)."""
    import ray

    return [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]


def concurrency(spec: Any, cluster_resources: ClusterResources) -> tuple[int, str]:
    """Trials to run at once, and a line saying why: ``search.max_concurrent`` when it fits,
    else (not given, or more than fit) as many as fit. Admitting a trial whose workers cannot
    be placed would only leave it waiting on the others, then fail its worker-group start."""
    fits = max_concurrent_trials(spec, cluster_resources)
    given = spec.search.max_concurrent
    if given is None:
        return fits, f"{fits} trial(s) at once (what the cluster holds)"
    if given > fits:
        return fits, (f"search.max_concurrent is {given} but the cluster holds {fits} trial(s) of"
                      f" {_describe(held_resources(spec))} at once; running {fits}")
    return given, f"{given} trial(s) at once (search.max_concurrent)"


def describe(spec: Any, cluster_resources: ClusterResources) -> str:
    """One line for logs: per-trial resources and the derived concurrency."""
    return (f"each trial holds {_describe(held_resources(spec))};"
            f" {max_concurrent_trials(spec, cluster_resources)} fit at once")


def _describe(resources: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in resources.items() if v or k == "CPU")
