"""Cluster templates: a Ray cluster-launcher config and KubeRay manifests, filled from options.

Each template is a YAML file in ``gensweep/cluster/templates/`` with ``{placeholders}``;
only the names listed in :data:`PLACEHOLDERS` are replaced, so other braces (``resources:
{}``, JSONPath in comments) stay as they are. The rendered text is parsed before it is
returned: a value that breaks the YAML fails here, not in ``ray up`` or ``kubectl``.
"""
from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml

SPEC_MOUNT = "/gensweep/spec.yaml"


@dataclass(frozen=True)
class Kind:
    file: str
    description: str
    consumer: str


KINDS: dict[str, Kind] = {
    "aws-gpu": Kind("aws-gpu.yaml", "Ray cluster launcher config: AWS head + autoscaling GPU workers", "ray up"),
    "gcp-gpu": Kind("gcp-gpu.yaml", "Ray cluster launcher config: GCP on-demand head + preemptible (spot) GPU "
                                    "workers", "ray up"),
    "azure-gpu": Kind("azure-gpu.yaml", "Ray cluster launcher config: Azure on-demand head + spot GPU workers",
                      "ray up"),
    "kuberay-cluster": Kind("kuberay-cluster.yaml", "KubeRay RayCluster: head + autoscaling GPU worker group",
                            "kubectl apply"),
    "slurm": Kind("slurm.sbatch", "sbatch script: Ray across a SLURM allocation, runs or resumes one spec, "
                                  "requeues itself at the time limit", "sbatch"),
    "kuberay-job": Kind("kuberay-job.yaml", "KubeRay RayJob + ConfigMap: runs one gensweep spec on its own cluster",
                        "kubectl apply"),
}

PLACEHOLDERS = (
    "name", "namespace", "image", "region", "gpu_type", "gpu_node_selector", "gpus_per_node", "cpus_per_node",
    "head_instance_type", "min_workers", "max_workers", "results_root", "gensweep_pip", "ray_version",
    "spec_yaml", "entrypoint", "spot", "spot_label", "zone", "project_id", "resource_group",
    "spot_selector", "spot_toleration",
)
SLURM_OPTIONS = ("name", "nodes", "cpus_per_node", "gpus_per_node", "time_limit", "signal_lead", "partition",
                 "python", "results_root")
_PATTERN = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$")
_TOKEN = re.compile(r"^[^\s\"'{}\\]+$")


class TemplateError(ValueError):
    """Options that cannot make a valid template."""


def _ray_version() -> str:
    try:
        import importlib.metadata

        return importlib.metadata.version("ray")
    except Exception:  # noqa: BLE001 - ray missing: a sensible literal
        return "2.60.0"


def _gensweep_version() -> str:
    try:
        import importlib.metadata

        return importlib.metadata.version("gensweep")
    except Exception:  # noqa: BLE001
        return "0.1.0"


def defaults(kind: str) -> dict[str, Any]:
    """The option values a template gets when none are given."""
    ray_version = _ray_version()
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    base = {
        "name": "gensweep",
        "namespace": "default",
        "image": f"rayproject/ray:{ray_version}-{py}-gpu",
        "region": "us-west-2",
        "gpus_per_node": 1,
        "cpus_per_node": 4,
        "head_instance_type": "m5.2xlarge",
        "min_workers": 0,
        "max_workers": 4,
        "results_root": "s3://CHANGE-ME-bucket/gensweep",
        "gensweep_pip": f"gensweep=={_gensweep_version()}",
        "ray_version": ray_version,
        "gpu_node_selector": "nvidia.com/gpu.product",
        "spot": False,  # kuberay: GPU workers on spot / preemptible nodes
        "spot_label": "cloud.google.com/gke-spot=true",  # kuberay --spot: the label (and taint) of such nodes
        "zone": "us-central1-a",
        "project_id": "CHANGE-ME-project",
        "resource_group": "gensweep",
    }
    base["gpu_type"] = GPU_TYPES.get(kind, "NVIDIA-A10G")
    if kind == "gcp-gpu":
        base.update(region="us-central1", head_instance_type="n2-standard-8")
    elif kind == "azure-gpu":
        base.update(region="westus2", head_instance_type="Standard_D8s_v3")
    return base


GPU_TYPES = {"aws-gpu": "g5.xlarge", "gcp-gpu": "nvidia-tesla-t4", "azure-gpu": "Standard_NC4as_T4_v3"}


def _spot_lines(values: dict[str, Any]) -> None:
    """kuberay ``--spot``: a node selector and a toleration for the spot label (taint) ``KEY=VALUE``."""
    values["spot_selector"] = values["spot_toleration"] = ""
    if not values["spot"]:
        return
    key, sep, value = str(values["spot_label"]).partition("=")
    if not sep or not key or not _TOKEN.match(key) or not _TOKEN.match(value or "x"):
        raise TemplateError(f"--spot-label {values['spot_label']!r}: use KEY=VALUE, e.g. "
                            "cloud.google.com/gke-spot=true")
    values["spot_selector"] = f'{key}: "{value}"'
    values["spot_toleration"] = f'- key: {key}\n  operator: Equal\n  value: "{value}"\n  effect: NoSchedule'



def job_entrypoint(spec_path: str, *, results_root: Optional[str] = None, address: str = "auto",
                   experiment: Optional[str] = None) -> str:
    """The shell command a Ray job runs: the ``gensweep run`` command, via ``python -m``."""
    argv = ["python", "-m", "gensweep.cli", "run", spec_path, "--address", address]
    if experiment:
        argv += ["--experiment", experiment]
    if results_root:
        argv += ["--results-root", results_root]
    return shlex.join(argv)


def _check(values: dict[str, Any]) -> None:
    if not _NAME.match(str(values["name"])):
        raise TemplateError(f"--name {values['name']!r}: use lowercase letters, digits and '-' (a DNS label)")
    for key in ("min_workers", "max_workers", "gpus_per_node", "cpus_per_node"):
        v = values[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise TemplateError(f"{key}: must be a whole number >= 0, got {v!r}")
    if values["max_workers"] < values["min_workers"]:
        raise TemplateError(f"max_workers ({values['max_workers']}) < min_workers ({values['min_workers']})")
    if values["gpus_per_node"] < 1:
        raise TemplateError("gpus_per_node: a GPU template needs at least 1 GPU per worker node")
    if values["cpus_per_node"] < 1:
        raise TemplateError("cpus_per_node: must be at least 1")
    for key in ("image", "region", "gpu_type", "gpu_node_selector", "head_instance_type", "results_root",
                "namespace", "ray_version", "zone", "project_id", "resource_group"):
        if not _TOKEN.match(str(values[key])):
            raise TemplateError(f"{key}: {values[key]!r} must be one word without quotes, braces or spaces")
    if "://" not in values["results_root"]:
        raise TemplateError(
            f"results_root {values['results_root']!r}: a cluster needs storage every node reaches (s3://...)"
        )


def _substitute(text: str, values: dict[str, Any]) -> str:
    def repl(m: re.Match) -> str:
        value = str(values[m.group(1)])
        if "\n" in value:  # a block: indent continuation lines to the placeholder's column
            line_start = text.rfind("\n", 0, m.start()) + 1
            indent = " " * (m.start() - line_start)
            value = value.rstrip("\n").replace("\n", "\n" + indent)
        return value

    return _PATTERN.sub(repl, text)


def template_text(kind: str) -> str:
    if kind not in KINDS:
        raise TemplateError(f"unknown template {kind!r}; known: {', '.join(KINDS)}")
    return (resources.files("gensweep.cluster") / "templates" / KINDS[kind].file).read_text()


def render(kind: str, *, spec_path: Optional[str] = None, **options: Any) -> str:
    """The filled template text; ``options`` override :func:`defaults` (None values are ignored).

    ``spec_path`` (kuberay-job): the spec embedded in the ConfigMap; it is validated first.
    Without it the packaged default spec is embedded.
    """
    if kind == "slurm":
        return _render_slurm(spec_path, options)
    values = defaults(kind)
    unknown = set(options) - set(PLACEHOLDERS)
    if unknown:
        raise TemplateError(f"unknown template options: {', '.join(sorted(unknown))}")
    values.update({k: v for k, v in options.items() if v is not None})
    _check(values)
    _spot_lines(values)
    if kind == "kuberay-job":
        values["spec_yaml"] = _spec_text(spec_path)
        values["entrypoint"] = json.dumps(job_entrypoint(SPEC_MOUNT, results_root=values["results_root"]))
    text = _substitute(template_text(kind), values)
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:  # pragma: no cover - a template bug or an odd value
        raise TemplateError(f"the {kind} template did not render to valid YAML: {e}") from None
    if not docs:  # pragma: no cover
        raise TemplateError(f"the {kind} template rendered empty")
    return text


def _render_slurm(spec_path: Optional[str], options: dict[str, Any]) -> str:
    from gensweep.cluster.slurm import SlurmError, check_script, slurm_values

    try:
        values = slurm_values(spec_path=spec_path, **{k: v for k, v in options.items() if k in SLURM_OPTIONS})
        text = re.sub(r"\{(" + "|".join(values) + r")\}", lambda m: str(values[m.group(1)]), template_text("slurm"))
        check_script(text)
    except SlurmError as e:
        raise TemplateError(str(e)) from None
    return text


def _spec_text(spec_path: Optional[str]) -> str:
    from gensweep.platform.spec import SpecError, load_spec

    if not spec_path:
        return (resources.files("gensweep.platform.spec") / "default_spec.yaml").read_text()
    try:
        load_spec(spec_path)
    except SpecError as e:
        raise TemplateError(f"--spec {spec_path}: {e}") from None
    return Path(spec_path).read_text()


def write(kind: str, dest: str | Path, *, force: bool = False, **options: Any) -> Path:
    """Render ``kind`` into ``dest`` (a file, or a folder that gets ``<kind>.yaml``)."""
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / KINDS[kind].file if kind in KINDS else dest
    text = render(kind, **options)
    if dest.exists() and not force:
        raise TemplateError(f"{dest} exists; pass --force to overwrite it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    if kind == "slurm":
        dest.chmod(0o755)
    return dest
