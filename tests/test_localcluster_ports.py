"""The test cluster's head takes every port it names from one draw of free ports.

``free_ports`` closes its sockets before returning, so two separate draws can hand out the same
port; the head once drew its GCS port and its node ports separately, and ``ray start`` refused a
metrics-export port equal to the GCS port (a flaky cluster set-up)."""
from __future__ import annotations

import re

from gensweep.cluster import localcluster
from gensweep.cluster.localcluster import LocalCluster


def test_head_ports_are_all_distinct_even_when_the_os_reuses_released_ports(monkeypatch, tmp_path):
    def reusing(n):  # what the OS may do: every draw starts again from the same released ports
        return [41000 + i for i in range(n)]

    monkeypatch.setattr(localcluster, "free_ports", reusing)
    started = []

    def fake_run(self, args, env=None):
        started.append(args)
        (tmp_path / "ray_current_cluster").write_text("127.0.0.1:41000")

    monkeypatch.setattr(LocalCluster, "_run", fake_run)
    cluster = LocalCluster.__new__(LocalCluster)
    cluster.env, cluster.temp_dir, cluster.nodes = {}, str(tmp_path), []
    cluster.start_head(num_cpus=1)
    (args,) = started
    ports = [int(args[i + 1]) for i, a in enumerate(args)
             if re.fullmatch(r"--(port|.*-port)", a) and a not in ("--min-worker-port", "--max-worker-port")]
    assert len(ports) == 9
    assert len(set(ports)) == len(ports), ports
