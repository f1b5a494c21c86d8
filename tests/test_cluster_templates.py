"""`gensweep cluster init`: each template parses and carries what its consumer requires.

The consumers' own parsers are used where Ray ships them: the cluster launcher's config
preparation and JSON-schema validation (what `ray up` runs), and the KubeRay autoscaler's
translation of a RayCluster spec into node types.
"""
from __future__ import annotations

import shlex

import pytest
import yaml

from gensweep.cli import build_parser
from gensweep.cli import main as cli_main
from gensweep.cluster.templates import KINDS, SPEC_MOUNT, TemplateError, render


def _init(tmp_path, kind, *extra):
    dest = tmp_path / f"{kind}.yaml"
    assert cli_main(["cluster", "init", kind, str(dest), *extra]) == 0
    return dest


def test_every_kind_is_offered():
    assert set(KINDS) == {"aws-gpu", "gcp-gpu", "azure-gpu", "kuberay-cluster", "kuberay-job", "slurm"}


def test_aws_gpu_is_a_valid_cluster_launcher_config(tmp_path):
    from ray.autoscaler._private.util import prepare_config, validate_config

    dest = _init(tmp_path, "aws-gpu", "--name", "sweeps", "--gpu-type", "g5.2xlarge", "--gpus-per-node", "1",
                 "--cpus-per-node", "8", "--max-workers", "6", "--region", "eu-west-1",
                 "--image", "example.org/gensweep:1", "--results-root", "s3://bucket/gs")
    cfg = yaml.safe_load(dest.read_text())
    validate_config(prepare_config(cfg))  # what `ray up` does before touching AWS
    assert cfg["cluster_name"] == "sweeps" and cfg["provider"]["type"] == "aws"
    assert cfg["provider"]["region"] == "eu-west-1" and cfg["max_workers"] == 6
    assert cfg["head_node_type"] in cfg["available_node_types"]
    for node_type in cfg["available_node_types"].values():
        assert {"node_config", "resources"} <= set(node_type)
    gpu = cfg["available_node_types"]["gpu_worker"]
    assert gpu["min_workers"] == 0 and gpu["max_workers"] == 6
    assert gpu["resources"] == {"CPU": 8, "GPU": 1}
    assert gpu["node_config"]["InstanceType"] == "g5.2xlarge"
    assert cfg["docker"]["image"] == "example.org/gensweep:1"
    assert any("pip install" in c and "gensweep" in c for c in cfg["setup_commands"])
    head_start = " ".join(cfg["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head_start and "--dashboard-host=127.0.0.1" in head_start
    assert "s3://bucket/gs" in dest.read_text()  # the results root is named in the usage notes


def test_kuberay_cluster_is_a_valid_raycluster(tmp_path):
    from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

    dest = _init(tmp_path, "kuberay-cluster", "--name", "gs-cluster", "--image", "example.org/gensweep:1",
                 "--gpus-per-node", "2", "--min-workers", "1", "--max-workers", "3", "--gpu-type", "Tesla-T4")
    cr = yaml.safe_load(dest.read_text())
    assert cr["apiVersion"] == "ray.io/v1" and cr["kind"] == "RayCluster"
    assert cr["metadata"]["name"] == "gs-cluster"
    head = cr["spec"]["headGroupSpec"]
    assert head["template"]["spec"]["containers"][0]["image"] == "example.org/gensweep:1"
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    assert cr["spec"]["authOptions"]["mode"] == "token"
    group = cr["spec"]["workerGroupSpecs"][0]
    assert group["groupName"] == "gpu" and (group["replicas"], group["minReplicas"], group["maxReplicas"]) == (1, 1, 3)
    limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "2"
    assert group["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "Tesla-T4"}

    # The KubeRay autoscaler reads the CR into node types: GPUs come from the container limits.
    auto = _derive_autoscaling_config_from_ray_cr(cr)
    assert auto["available_node_types"]["gpu"]["resources"]["GPU"] == 2
    assert (auto["available_node_types"]["gpu"]["min_workers"], auto["available_node_types"]["gpu"]["max_workers"]) \
        == (1, 3)


def test_kuberay_job_runs_a_real_gensweep_command(tmp_path):
    from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

    spec = tmp_path / "myspec.yaml"
    spec.write_text("name: cluster-ablation\nsearch: {num_trials: 4}\nresources: {gpus_per_worker: 0.5}\n")
    dest = _init(tmp_path, "kuberay-job", "--name", "gs-job", "--spec", str(spec), "--results-root", "s3://b/gs")
    config_map, job = list(yaml.safe_load_all(dest.read_text()))
    assert config_map["kind"] == "ConfigMap" and job["kind"] == "RayJob" and job["apiVersion"] == "ray.io/v1"
    # the embedded spec is the file given, byte for byte
    assert config_map["data"]["spec.yaml"].rstrip("\n") == spec.read_text().rstrip("\n")
    # the entrypoint is a gensweep command that gensweep's own parser accepts
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:3] == ["python", "-m", "gensweep.cli"]
    args = build_parser().parse_args(argv[3:])
    assert args.command == "run" and args.spec == SPEC_MOUNT and args.address == "auto"
    assert args.results_root == "s3://b/gs"
    # the ConfigMap is mounted where the entrypoint reads the spec, on the head (the driver's node)
    cluster = job["spec"]["rayClusterSpec"]
    head_pod = cluster["headGroupSpec"]["template"]["spec"]
    mount = head_pod["containers"][0]["volumeMounts"][0]
    assert SPEC_MOUNT.startswith(mount["mountPath"] + "/")
    assert head_pod["volumes"][0]["configMap"]["name"] == config_map["metadata"]["name"]
    assert "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S" in yaml.safe_load(job["spec"]["runtimeEnvYAML"])["env_vars"]
    auto = _derive_autoscaling_config_from_ray_cr({"metadata": job["metadata"], "spec": cluster})
    assert auto["available_node_types"]["gpu"]["resources"]["GPU"] == 1


def test_kuberay_job_embeds_the_default_spec_without_one(tmp_path):
    from gensweep.platform.spec import parse_spec

    config_map, _ = list(yaml.safe_load_all(_init(tmp_path, "kuberay-job").read_text()))
    assert parse_spec(yaml.safe_load(config_map["data"]["spec.yaml"])).name == "mnist-gan-quick"


def test_bad_options_fail_clearly(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsearch: {algorithm: annealing}\n")
    assert cli_main(["cluster", "init", "kuberay-job", str(tmp_path / "j.yaml"), "--spec", str(bad)]) == 2
    assert "search.algorithm" in capsys.readouterr().err and not (tmp_path / "j.yaml").exists()
    with pytest.raises(TemplateError, match="max_workers"):
        render("aws-gpu", min_workers=3, max_workers=1)
    with pytest.raises(TemplateError, match="s3://"):
        render("kuberay-cluster", results_root="./local")
    with pytest.raises(TemplateError, match="one word"):
        render("kuberay-cluster", image='img" : x')
    with pytest.raises(TemplateError, match="DNS label"):
        render("kuberay-cluster", name="Bad_Name")
    dest = _init(tmp_path, "aws-gpu")
    assert cli_main(["cluster", "init", "aws-gpu", str(dest)]) == 2  # exists: needs --force
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize("kind, provider, gpu_type", [("gcp-gpu", "gcp", "nvidia-l4"),
                                                     ("azure-gpu", "azure", "Standard_NC24ads_A100_v4")])
def test_gcp_and_azure_are_valid_cluster_launcher_configs_with_preemptible_gpu_workers(tmp_path, kind, provider,
                                                                                        gpu_type):
    from ray.autoscaler._private.util import prepare_config, validate_config

    dest = _init(tmp_path, kind, "--name", "sweeps", "--gpu-type", gpu_type, "--gpus-per-node", "2",
                 "--cpus-per-node", "8", "--max-workers", "6", "--results-root", "s3://bucket/gs")
    cfg = yaml.safe_load(dest.read_text())
    validate_config(prepare_config(cfg))  # what `ray up` does before touching the cloud
    assert cfg["cluster_name"] == "sweeps" and cfg["provider"]["type"] == provider and cfg["max_workers"] == 6
    head = cfg["available_node_types"][cfg["head_node_type"]]["node_config"]
    gpu = cfg["available_node_types"]["gpu_worker"]
    assert gpu["resources"] == {"CPU": 8, "GPU": 2} and (gpu["min_workers"], gpu["max_workers"]) == (0, 6)
    if provider == "gcp":
        assert gpu["node_config"]["guestAccelerators"] == [{"acceleratorType": gpu_type, "acceleratorCount": 2}]
        assert gpu["node_config"]["scheduling"]["provisioningModel"] == "SPOT"  # preemptible workers
        assert "scheduling" not in head  # an on-demand head
    else:
        arm = gpu["node_config"]["azure_arm_parameters"]
        assert arm["vmSize"] == gpu_type and arm["priority"] == "Spot"
        assert "priority" not in head["azure_arm_parameters"]
    head_start = " ".join(cfg["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head_start and "--dashboard-host=127.0.0.1" in head_start
    assert any("pip install" in c and "gensweep" in c for c in cfg["setup_commands"])


@pytest.mark.parametrize("kind", ["kuberay-cluster", "kuberay-job"])
def test_kuberay_spot_option_selects_and_tolerates_spot_nodes(tmp_path, kind):
    from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

    label = "kubernetes.azure.com/scalesetpriority"
    docs = list(yaml.safe_load_all(_init(tmp_path, kind, "--spot", "--spot-label", f"{label}=spot").read_text()))
    cr = docs[-1]
    cluster = cr["spec"] if kind == "kuberay-cluster" else cr["spec"]["rayClusterSpec"]
    pod = cluster["workerGroupSpecs"][0]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A10G", label: "spot"}
    assert {"key": label, "operator": "Equal", "value": "spot", "effect": "NoSchedule"} in pod["tolerations"]
    assert "nodeSelector" not in cluster["headGroupSpec"]["template"]["spec"]  # the head stays on-demand
    _derive_autoscaling_config_from_ray_cr({"metadata": cr["metadata"], "spec": cluster})
    plain = list(yaml.safe_load_all(_init(tmp_path / "plain", kind).read_text()))[-1]
    plain_cluster = plain["spec"] if kind == "kuberay-cluster" else plain["spec"]["rayClusterSpec"]
    assert label not in str(plain_cluster)  # without --spot nothing changes
    with pytest.raises(TemplateError, match="KEY=VALUE"):
        render(kind, spot=True, spot_label="no-equals-sign")


def test_slurm_script_follows_rays_slurm_pattern(tmp_path):
    import subprocess

    spec = tmp_path / "s.yaml"
    spec.write_text("name: big-sweep\nresults: {root: /shared/gs}\n")
    dest = _init(tmp_path, "slurm", "--spec", str(spec), "--nodes", "4", "--gpus-per-node", "2",
                 "--cpus-per-node", "16", "--time", "1-00:00:00", "--signal-lead", "600", "--partition", "gpu")
    text = dest.read_text()
    assert subprocess.run(["bash", "-n", str(dest)]).returncode == 0 and dest.stat().st_mode & 0o111
    for line in ("#SBATCH --nodes=4", "#SBATCH --cpus-per-task=16", "#SBATCH --gpus-per-node=2",
                 "#SBATCH --time=1-00:00:00", "#SBATCH --signal=B:USR1@600", "#SBATCH --requeue",
                 "#SBATCH --partition=gpu", "RESULTS_ROOT=/shared/gs", f"SPEC={spec}"):
        assert line in text, line
    assert "ray\" start --head" in text.replace('"$RAY"', 'ray"') and "scontrol requeue" in text
    assert "--or-resume" in text and "big-sweep-slurm-${SLURM_JOB_ID}" in text
    # the driver's command line is one gensweep's own parser accepts
    args = build_parser().parse_args(["run", str(spec), "--experiment", "x", "--results-root", "/shared/gs",
                                      "--address", "h:6379", "--or-resume"])
    assert args.or_resume and args.address == "h:6379"


def test_slurm_refuses_what_cannot_work(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\nresults: {root: ./relative}\n")
    with pytest.raises(TemplateError, match="--spec"):
        render("slurm")
    with pytest.raises(TemplateError, match="every node must reach it"):
        render("slurm", spec_path=str(spec))  # a relative root is no shared storage
    assert "s3://b/x" in render("slurm", spec_path=str(spec), results_root="s3://b/x")
    with pytest.raises(TemplateError, match="--time"):
        render("slurm", spec_path=str(spec), results_root="/shared", time_limit="two hours")
    with pytest.raises(TemplateError, match="name"):
        render("slurm", spec_path=str(spec), results_root="/shared", name="a b")
