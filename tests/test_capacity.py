"""What a trial holds, and how many trials fit a cluster (the sweep never admits more)."""
from __future__ import annotations

import pytest

from gensweep.cli import main as cli_main
from gensweep.platform.trial.resources import (DRIVER_MEMORY, concurrency, driver_resources, held_resources,
                                       max_concurrent_trials)
from gensweep.platform.spec import parse_spec


def spec(workers=1, cpus=1.0, gpus=0.0, launcher="train", max_concurrent=None):
    return parse_spec({"name": "r", "resources": {"workers": workers, "cpus_per_worker": cpus,
                                                  "gpus_per_worker": gpus, "launcher": launcher},
                       "search": {"max_concurrent": max_concurrent}})


def node(cpu, gpu=0.0):
    return {"CPU": cpu, "GPU": gpu, "memory": 1e10, "node:10.0.0.1": 1.0}


def test_the_driver_holds_no_cpu_so_n_one_cpu_trials_fit_n_cpus():
    assert held_resources(spec(workers=2, cpus=3, gpus=0.5)) == {"CPU": 6, "GPU": 1.0}
    assert driver_resources(spec()) == {"CPU": 0, "memory": DRIVER_MEMORY}
    assert max_concurrent_trials(spec(), [node(2)]) == 2


def test_the_inline_trial_actor_holds_its_worker():
    assert driver_resources(spec(launcher="inline", cpus=2, gpus=0.5)) == {"CPU": 2, "GPU": 0.5}
    assert max_concurrent_trials(spec(launcher="inline", cpus=2), [node(5)]) == 2


def test_auto_is_inline_for_one_worker_and_train_for_more():
    one, two = spec(launcher="auto", cpus=2), spec(launcher="auto", workers=2, cpus=2)
    assert driver_resources(one) == {"CPU": 2} and max_concurrent_trials(one, [node(5)]) == 2
    assert driver_resources(two) == {"CPU": 0, "memory": DRIVER_MEMORY}
    assert max_concurrent_trials(two, [node(8)]) == 2
    # only inline trials are restarted by Tune; a train trial's restarts are Train's
    assert parse_spec({"name": "r", "resources": {"max_failures": 3}}).resources.trial_restarts == 3
    assert parse_spec({"name": "r", "resources": {"max_failures": 3, "workers": 2}}).resources.trial_restarts == 0
    assert parse_spec({"name": "r", "resources": {"max_failures": 3, "launcher": "train"}}).resources.trial_restarts == 0


def test_concurrency_is_what_fits_unless_the_spec_asks_for_fewer():
    assert concurrency(spec(), [node(4)])[0] == 4
    assert concurrency(spec(max_concurrent=3), [node(4)])[0] == 3
    n, why = concurrency(spec(max_concurrent=8), [node(4)])
    assert n == 4 and "search.max_concurrent is 8" in why and "running 4" in why


@pytest.mark.parametrize("nodes, s, expected", [
    # 8 CPUs, 2 CPUs per trial (the driver holds memory only): 4 trials
    ([node(8)], spec(cpus=2), 4),
    ([node(9)], spec(cpus=2), 4),
    # the drivers' memory share counts too
    ([{"CPU": 8, "memory": DRIVER_MEMORY * 2}], spec(cpus=1), 2),
    # a worker cannot span nodes: two 3-CPU nodes hold one 2-CPU worker each, not three
    ([node(3), node(3)], spec(cpus=2), 2),
    # totals only (one mapping) treat the cluster as one node
    (node(6), spec(cpus=2), 3),
    # fractional GPUs: four 0.25-GPU trials share each GPU; CPUs are not the limit here
    ([node(16, 1), node(16, 1)], spec(cpus=1, gpus=0.25), 8),
    ([node(16, 4)], spec(cpus=1, gpus=0.5), 8),
    # GPU trials with several workers: 2 workers x 1 GPU on 4-GPU nodes
    ([node(32, 4), node(32, 4)], spec(workers=2, cpus=4, gpus=1), 4),
    # CPUs limit before GPUs: 4 CPUs per worker, 8 CPUs, 4 GPUs
    ([node(8, 4)], spec(cpus=4, gpus=0.5), 2),
    ([node(7, 4)], spec(cpus=4, gpus=0.5), 1),
    # CPU-only head plus GPU workers: GPU trials land on GPU nodes, drivers anywhere
    ([node(4), node(8, 1), node(8, 1)], spec(cpus=2, gpus=1), 2),
    # nothing fits (e.g. an autoscaling cluster with no GPU node yet): still 1
    ([node(4)], spec(gpus=1), 1),
    ([], spec(), 1),
])
def test_max_concurrent_trials(nodes, s, expected):
    assert max_concurrent_trials(s, nodes) == expected


def test_limit_caps_the_answer():
    assert max_concurrent_trials(spec(cpus=0.5), [node(10_000)], limit=50) == 50


def test_cluster_plan_command(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text("name: plan\nresources: {workers: 2, cpus_per_worker: 2, gpus_per_worker: 0.5}\n")
    assert cli_main(["cluster", "plan", str(path), "--node", "CPU=8", "--node", "CPU=16,GPU=2*3"]) == 0
    out = capsys.readouterr().out
    # per GPU node: 2 GPUs / 0.5 = 4 workers (CPUs would allow 8); 3 nodes = 12 workers = 6 trials
    assert "each trial holds CPU=4, GPU=1" in out and "6 fit at once" in out
    assert cli_main(["cluster", "plan", str(path), "--node", "CPU"]) == 2
