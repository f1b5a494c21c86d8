"""How many trials of a spec fit a Ray cluster at once.

A trial holds a small driver share (the Tune function trainable that launches its
``TorchTrainer``) plus ``resources.workers`` Ray Train workers of ``cpus_per_worker`` CPUs
and ``gpus_per_worker`` GPUs each. A worker lives on one node, so the count is made by
packing whole workers onto nodes, not by dividing cluster totals. Fractional GPUs are
allowed: four trials of ``gpus_per_worker: 0.25`` share one GPU.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence, Union

# CPU held by each trial's Tune function trainable (the runner's ``tune.with_resources``).
TRIAL_DRIVER_CPU = 0.01
# Ray accounts resources in units of 1e-4; compare with that tolerance.
_EPS = 1e-4

NodeResources = Mapping[str, float]
ClusterResources = Union[NodeResources, Sequence[NodeResources]]


def trial_resources(spec: Any) -> dict[str, float]:
    """Total CPU and GPU one trial of ``spec`` holds while it runs."""
    res = spec.resources
    out = {"CPU": res.workers * res.cpus_per_worker + TRIAL_DRIVER_CPU}
    if res.gpus_per_worker > 0:
        out["GPU"] = res.workers * res.gpus_per_worker
    return out


def _nodes(cluster_resources: ClusterResources) -> list[dict[str, float]]:
    if isinstance(cluster_resources, Mapping):
        items: Iterable[NodeResources] = [cluster_resources]
    else:
        items = cluster_resources
    nodes = []
    for node in items:
        nodes.append({"CPU": float(node.get("CPU", 0.0)), "GPU": float(node.get("GPU", 0.0))})
    return nodes


def _take(node: dict[str, float], need: Mapping[str, float]) -> bool:
    if all(node[k] + _EPS >= v for k, v in need.items()):
        for k, v in need.items():
            node[k] -= v
        return True
    return False


def max_concurrent_trials(spec: Any, cluster_resources: ClusterResources, *, limit: int = 1024) -> int:
    """The number of trials of ``spec`` that can run at once on ``cluster_resources``.

    ``cluster_resources`` is either one mapping (cluster totals, as ``ray.cluster_resources()``
    returns: treated as a single node, so it can overestimate when workers cannot span nodes)
    or a list of per-node mappings (see :func:`node_resources`). Trials are placed one at a
    time: each worker on the first node with room, then the trial's driver share. The answer
    is at least 1 (an autoscaling cluster may add the nodes later), at most ``limit``.
    """
    res = spec.resources
    worker = {"CPU": res.cpus_per_worker}
    if res.gpus_per_worker > 0:
        worker["GPU"] = res.gpus_per_worker
    driver = {"CPU": TRIAL_DRIVER_CPU}
    free = _nodes(cluster_resources)
    # Fill GPU nodes with GPU workers first and keep CPU-only nodes for CPU trials; big nodes first.
    free.sort(key=lambda n: (-n["GPU"], -n["CPU"]) if "GPU" in worker else (n["GPU"], -n["CPU"]))
    count = 0
    while count < limit:
        trial_ok = all(any(_take(n, worker) for n in free) for _ in range(res.workers))
        if not trial_ok or not any(_take(n, driver) for n in reversed(free)):
            break
        count += 1
    return max(1, count)


def node_resources() -> list[dict[str, float]]:
    """Total resources of each alive node of the connected Ray cluster (needs ``ray.init``)."""
    import ray

    return [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]


def derive_max_concurrent(spec: Any) -> int:
    """``search.max_concurrent`` when given, else derived from the connected cluster's nodes."""
    given = getattr(spec.search, "max_concurrent", None)
    if given:
        return int(given)
    return max_concurrent_trials(spec, node_resources())


def describe(spec: Any, cluster_resources: ClusterResources) -> str:
    """One line for logs: per-trial resources and the derived concurrency."""
    need = trial_resources(spec)
    parts = ", ".join(f"{k}={_fmt(v)}" for k, v in need.items())
    return f"each trial holds {parts}; {max_concurrent_trials(spec, cluster_resources)} fit at once"


def _fmt(v: float) -> str:
    return str(int(v)) if math.isclose(v, round(v)) else f"{v:g}"
