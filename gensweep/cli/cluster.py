"""``gensweep submit``, ``gensweep jobs ...`` and ``gensweep cluster ...``."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gensweep.cli.options import add_experiment_option, add_root_override


def _err(msg: str) -> None:
    print(f"gensweep: {msg}", file=sys.stderr)


def _client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="Ray dashboard URL, e.g. http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS, "
                                     "else http://127.0.0.1:8265)")
    p.add_argument("--token-file", help="file holding the cluster's Ray auth token (default: $RAY_AUTH_TOKEN, "
                                        "$RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token for a local head)")


def register(subparsers: Any) -> None:
    sub = subparsers.add_parser("submit", help="submit a sweep to a Ray cluster as a Ray job")
    sub.add_argument("spec", help="experiment spec YAML (uploaded with its folder)")
    _client_args(sub)
    sub.add_argument("--working-dir", help="folder uploaded as the job's working directory (default: the spec's)")
    sub.add_argument("--pip", action="append", default=[], metavar="REQ",
                     help="pip requirement to install for the job (repeatable); default: none, the cluster "
                          "image provides gensweep and its dependencies")
    sub.add_argument("--with-gensweep", choices=["pip", "ship"],
                     help="pip: also pip-install gensweep==<this version>; ship: upload this gensweep source")
    sub.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                     help="environment variable for the job (repeatable; credentials are refused)")
    sub.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                     help="gitignore-style pattern left out of the upload (repeatable)")
    add_experiment_option(sub)
    add_root_override(sub, "override results.root (s3://... or an absolute shared path)")
    sub.add_argument("--submission-id", help="job id (default: gensweep-<experiment>-<random>)")
    sub.add_argument("--no-wait", action="store_true", help="return after submitting")
    sub.add_argument("--timeout", type=float, help="seconds to wait for the job (default: no limit)")
    sub.add_argument("--dry-run", action="store_true", help="print the job (entrypoint, runtime env) and exit")
    sub.set_defaults(func=cmd_submit)

    jobs = subparsers.add_parser("jobs", help="list, inspect, follow and stop Ray jobs")
    jsub = jobs.add_subparsers(dest="jobs_command", required=True)
    p = jsub.add_parser("list", help="jobs on the cluster, newest first")
    _client_args(p)
    p = jsub.add_parser("status", help="a job's status")
    p.add_argument("job_id")
    _client_args(p)
    p = jsub.add_parser("logs", help="a job's driver log")
    p.add_argument("job_id")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
    _client_args(p)
    p = jsub.add_parser("stop", help="stop a job")
    p.add_argument("job_id")
    p.add_argument("--no-wait", action="store_true", help="return without waiting for STOPPED")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the job to stop")
    _client_args(p)
    jobs.set_defaults(func=cmd_jobs)

    cluster = subparsers.add_parser("cluster", help="cluster templates and capacity planning")
    csub = cluster.add_subparsers(dest="cluster_command", required=True)
    from gensweep.cluster.templates import KINDS

    init = csub.add_parser("init", help="write a cluster template: " + "; ".join(
        f"{k} ({v.description})" for k, v in KINDS.items()))
    init.add_argument("kind", choices=list(KINDS))
    init.add_argument("dest", help="file to write (or a folder: <kind>.yaml inside it)")
    init.add_argument("--name", help="cluster / job name (default: gensweep)")
    init.add_argument("--namespace", help="Kubernetes namespace (default: default)")
    init.add_argument("--image", help="container image with gensweep installed (default: rayproject/ray GPU image)")
    init.add_argument("--gpu-type", help="AWS instance type (aws-gpu, default g5.xlarge), GCP accelerator "
                                         "(gcp-gpu, default nvidia-tesla-t4), Azure VM size (azure-gpu, default "
                                         "Standard_NC4as_T4_v3) or GPU product label (kuberay, default NVIDIA-A10G)")
    init.add_argument("--gpu-node-selector", help="kuberay: node label holding the GPU type "
                                                  "(default nvidia.com/gpu.product)")
    init.add_argument("--gpus-per-node", type=int, help="GPUs per worker node (default 1)")
    init.add_argument("--cpus-per-node", type=int, help="CPUs per worker node (default 4)")
    init.add_argument("--head-instance-type", help="*-gpu: head machine type (default m5.2xlarge, n2-standard-8, "
                                                   "Standard_D8s_v3)")
    init.add_argument("--min-workers", type=int, help="minimum GPU worker nodes (default 0)")
    init.add_argument("--max-workers", type=int, help="maximum GPU worker nodes (default 4)")
    init.add_argument("--region", help="aws-gpu: AWS region (default us-west-2); gcp-gpu: GCP region (default "
                                       "us-central1); azure-gpu: Azure location (default westus2)")
    init.add_argument("--zone", help="gcp-gpu: availability zone (default us-central1-a)")
    init.add_argument("--project-id", help="gcp-gpu: GCP project id")
    init.add_argument("--resource-group", help="azure-gpu: Azure resource group (default gensweep)")
    init.add_argument("--spot", action="store_true", default=None,
                      help="kuberay-*: run GPU workers on spot / preemptible nodes (node selector + toleration)")
    init.add_argument("--spot-label", help="kuberay-* --spot: the KEY=VALUE label and taint of those nodes (default "
                                           "cloud.google.com/gke-spot=true; AKS: kubernetes.azure.com/"
                                           "scalesetpriority=spot; EKS: eks.amazonaws.com/capacityType=SPOT)")
    add_root_override(init, "results root every node reaches (s3://...)")
    init.add_argument("--gensweep-pip", help="aws-gpu: pip requirement installing gensweep on the nodes")
    init.add_argument("--spec", help="kuberay-job: the spec to embed (default: the built-in default spec); "
                                     "slurm: the spec the job runs (required)")
    init.add_argument("--nodes", type=int, help="slurm: nodes of the allocation (default 1)")
    init.add_argument("--time", dest="time_limit", help="slurm: the allocation's time limit (sbatch --time, "
                                                         "default 4:00:00)")
    init.add_argument("--signal-lead", type=int, help="slurm: seconds before the time limit when the sweep "
                                                      "checkpoints and stops, resumable (default 300)")
    init.add_argument("--partition", help="slurm: partition to submit to")
    init.add_argument("--python", help="slurm: the Python with gensweep installed on every node "
                                       "(default: this one)")
    init.add_argument("--force", action="store_true", help="overwrite DEST")
    init.set_defaults(func=cmd_cluster_init)

    plan = csub.add_parser("plan", help="how many trials of a spec fit given nodes (max_concurrent)")
    plan.add_argument("spec")
    plan.add_argument("--node", action="append", required=True, metavar="CPU=8,GPU=1[*N]",
                      help="a node's resources, optionally times N (repeatable)")
    plan.set_defaults(func=cmd_cluster_plan)


def cmd_submit(args: argparse.Namespace) -> int:
    from gensweep.cluster import jobs
    from gensweep.platform.spec import SpecError

    try:
        submission = jobs.prepare_submission(
            args.spec, working_dir=args.working_dir, pip=args.pip, with_gensweep=args.with_gensweep,
            env=jobs.parse_env(args.env), excludes=args.exclude, experiment=args.experiment,
            results_root=args.results_root, submission_id=args.submission_id,
        )
    except (SpecError, jobs.SubmitError) as e:
        _err(f"{e}\nnothing was submitted")
        return 2
    for note in submission.notes:
        print(f"[gensweep] note: {note}", flush=True)
    if args.dry_run:
        print(json.dumps(submission.as_kwargs(), indent=2))
        return 0
    address = jobs.resolve_address(args.address)
    try:
        client = jobs.connect(address, args.token_file)
        job_id = jobs.submit(client, submission, address)
    except (jobs.ClusterError, ValueError) as e:
        _err(str(e))
        return 2
    print(f"[gensweep] submitted job {job_id} (experiment {submission.experiment})", flush=True)
    print(f"[gensweep] dashboard: {jobs.dashboard_job_url(address, job_id)}", flush=True)
    print(f"[gensweep] follow:    gensweep jobs logs {job_id} --follow --address {address}", flush=True)
    print(f"[gensweep] results:   gensweep results --root {submission.results_root} show {submission.experiment}",
          flush=True)
    if args.no_wait:
        return 0
    try:
        status = jobs.wait_for_job(client, job_id, timeout_s=args.timeout, follow=True, address=address)
    except TimeoutError as e:
        _err(f"{e}; the job keeps running (gensweep jobs stop {job_id} --address {address})")
        return 3
    except KeyboardInterrupt:
        _err(f"stopped following; the job keeps running (gensweep jobs stop {job_id} --address {address})")
        return 130
    except jobs.ClusterError as e:
        _err(str(e))
        return 2
    print(f"[gensweep] job {job_id}: {status}", flush=True)
    return 0 if status == "SUCCEEDED" else 1


def cmd_jobs(args: argparse.Namespace) -> int:
    from gensweep.cluster import jobs

    address = jobs.resolve_address(args.address)
    try:
        client = jobs.connect(address, args.token_file)
        if args.jobs_command == "list":
            print(jobs.format_rows(jobs.job_rows(client, address)))
        elif args.jobs_command == "status":
            info = jobs.call(client.get_job_info, args.job_id, address=address)
            print(f"{args.job_id}: {info.status}" + (f" ({info.message})" if info.message else ""))
        elif args.jobs_command == "logs":
            if args.follow:
                status = jobs.wait_for_job(client, args.job_id, follow=True, address=address)
                print(f"[gensweep] job {args.job_id}: {status}", file=sys.stderr)
            else:
                print(jobs.call(client.get_job_logs, args.job_id, address=address), end="")
        elif args.jobs_command == "stop":
            status = jobs.stop_job(client, args.job_id, wait=not args.no_wait, timeout_s=args.timeout,
                                   address=address)
            print(f"{args.job_id}: {status}")
    except jobs.ClusterError as e:
        _err(str(e))
        return 2
    except TimeoutError as e:
        _err(str(e))
        return 3
    return 0


def cmd_cluster_init(args: argparse.Namespace) -> int:
    from gensweep.cluster.templates import SLURM_OPTIONS, TemplateError, write

    options = {k: getattr(args, k) for k in (
        "name", "namespace", "image", "gpu_type", "gpu_node_selector", "gpus_per_node", "cpus_per_node",
        "head_instance_type", "min_workers", "max_workers", "region", "results_root", "gensweep_pip", "zone",
        "project_id", "resource_group", "spot", "spot_label")}
    if args.kind == "slurm":
        options = {k: getattr(args, k) for k in SLURM_OPTIONS}
    try:
        path = write(args.kind, args.dest, force=args.force, spec_path=args.spec, **options)
    except TemplateError as e:
        _err(str(e))
        return 2
    print(f"[gensweep] wrote {path} ({args.kind})")
    return 0


def parse_node(text: str) -> list[dict[str, float]]:
    body, _, times = text.partition("*")
    node: dict[str, float] = {}
    for part in body.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"--node {text!r}: expected KEY=NUMBER pairs, e.g. CPU=8,GPU=1")
        node[key.strip()] = float(value)
    return [dict(node) for _ in range(int(times) if times else 1)]


def cmd_cluster_plan(args: argparse.Namespace) -> int:
    from gensweep.platform.spec import SpecError, load_spec
    from gensweep.platform.trial.resources import describe

    try:
        spec = load_spec(args.spec)
        nodes = [n for text in args.node for n in parse_node(text)]
    except (SpecError, ValueError) as e:
        _err(str(e))
        return 2
    print(describe(spec, nodes))
    return 0
