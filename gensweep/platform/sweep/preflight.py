"""Checks of a valid spec against the world, before Ray starts: storage reachable and writable,
data source present, backbone known and installed, Optuna storage URL usable, resources that a
local Ray instance can hold. ``gensweep run --dry-run`` runs them too (creating nothing).

A spec can be well-formed and still unable to run here; these checks fail fast with a
:class:`PreflightError` (a :class:`~gensweep.platform.spec.SpecError`: the CLI exits 2) that
names the field, instead of failing minutes later inside a trial. Remote storage is probed
with short timeouts and no retries: an unreachable endpoint is reported in seconds.
"""
from __future__ import annotations

import os
import uuid
from typing import Optional

from gensweep.platform.spec import ExperimentSpec, SpecError

PROBE_TIMEOUT_S = 5.0


class PreflightError(SpecError):
    """A spec that is valid but cannot run with this storage, data or machine."""


def _s3_probe(field: str, uri: str, endpoint_url: Optional[str], region: Optional[str],
              profile: Optional[str]) -> Optional[str]:
    """None when the bucket of ``uri`` answers; else a message naming ``field``."""
    from urllib.parse import urlsplit

    import boto3
    import botocore.config
    import botocore.exceptions

    bucket = urlsplit(uri).netloc
    if not bucket:
        return f"{field}: {uri!r} names no bucket (expected s3://bucket/prefix)"
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    where = f" at {endpoint}" if endpoint else ""
    cfg = botocore.config.Config(connect_timeout=PROBE_TIMEOUT_S, read_timeout=PROBE_TIMEOUT_S,
                                 retries={"max_attempts": 1, "mode": "standard"})
    try:
        session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
        client = session.client("s3", endpoint_url=endpoint, region_name=region, config=cfg)
        client.head_bucket(Bucket=bucket)
    except botocore.exceptions.NoCredentialsError:
        return (f"{field}: no credentials for {uri} (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, an AWS profile, "
                "or data.storage.secrets_file)")
    except botocore.exceptions.ProfileNotFound as e:
        return f"{field}: {e}"
    except botocore.exceptions.ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            return f"{field}: bucket {bucket!r} does not exist{where}"
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return f"{field}: access to bucket {bucket!r} denied{where} ({code})"
        return f"{field}: bucket {bucket!r}{where} answered {code}"
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
            botocore.exceptions.ReadTimeoutError) as e:
        return f"{field}: cannot reach object storage{where or ' (AWS default endpoint)'} for {uri}: {type(e).__name__}"
    except Exception as e:  # noqa: BLE001 - anything else is also a clear "cannot use it"
        return f"{field}: cannot use {uri}{where}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


def _local_writable(field: str, path: str, create: bool = True) -> Optional[str]:
    if "\0" in path:  # the OS refuses it (os functions raise ValueError)
        return f"{field}: the path holds a NUL character"
    path = os.path.abspath(os.path.expanduser(path))
    if not create:  # a dry run: the nearest existing folder must let us create the rest
        existing = path
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
            return f"{field}: {path} is not a writable folder ({existing} is not a writable folder)"
        return None
    probe = os.path.join(path, f".gensweep-probe-{uuid.uuid4().hex}")
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"ok")
        os.unlink(probe)
    except OSError as e:
        return f"{field}: {path} is not a writable folder ({e.strerror})"
    return None


def _storage_check(field: str, uri: str, spec: ExperimentSpec, create: bool = True) -> Optional[str]:
    if "://" not in uri or uri.startswith("file://"):
        return _local_writable(field, uri[len("file://"):] if uri.startswith("file://") else uri, create)
    scheme = uri.split("://", 1)[0].lower()
    if scheme not in ("s3", "s3a"):
        return f"{field}: unsupported storage scheme {scheme!r} in {uri!r}; use a local path or s3://bucket/prefix"
    st = spec.data.storage
    # results and Tune storage use the AWS environment; data may name its own endpoint/profile
    if field.startswith("data."):
        return _s3_probe(field, uri, st.endpoint_url if st else None, st.region if st else None,
                         st.profile if st else None)
    return _s3_probe(field, uri, None, None, None)


def _remote_source_exists(uri: str, spec: ExperimentSpec) -> Optional[str]:
    """None when the object (a .npz/.npy file) or the prefix (an image folder) at ``uri`` holds
    something; asked only once its bucket answered."""
    from gensweep.platform.storage.uris import StorageOptions, fsspec_filesystem, redact_uri

    st = spec.data.storage
    storage = StorageOptions(endpoint_url=st.endpoint_url, region=st.region, profile=st.profile) if st else None
    try:
        fs, path = fsspec_filesystem(uri, storage)
        if fs.exists(path):
            return None
    except Exception as e:  # noqa: BLE001 - any failure means the source cannot be read
        return f"data.source: cannot read {redact_uri(uri)}: {type(e).__name__}: {str(e)[:200]}"
    return f"data.source: {redact_uri(uri)} does not exist"


def _optuna_storage_problem(url: str) -> Optional[str]:
    """None when SQLAlchemy can parse ``url`` and load its dialect and driver; the message never
    repeats the URL (it may hold a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    field = "search.optuna_storage"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return (f"{field}: cannot be parsed as an SQLAlchemy URL (expected dialect[+driver]://[user@]host[:port]/db,"
                " e.g. postgresql+psycopg2://db.example.org/optuna or sqlite:////abs/path/optuna.db)")
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        return f"{field}: unknown database dialect {parsed.drivername!r}"
    except ImportError as e:
        return f"{field}: the driver of {parsed.drivername!r} is not installed ({e.name or e})"
    return None


def _backbone_problem(name: str) -> Optional[str]:
    from gensweep.platform.metrics.backbones import BACKBONES

    if name not in BACKBONES:
        return f"eval.backbone: unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}"
    check = getattr(BACKBONES[name], "unavailable", None)  # a backbone class says; a plain factory cannot
    missing = check() if check else None
    return f"eval.backbone: {name!r} cannot be loaded here: {missing}" if missing else None


def preflight(spec: ExperimentSpec, *, address: Optional[str] = None, num_cpus: Optional[int] = None,
              create: bool = True) -> list[str]:
    """Raise :class:`PreflightError` listing every problem found; return warnings. ``create=False``
    (a dry run) checks that a local results root could be created without creating it."""
    from gensweep.platform.storage.secrets import (
        SecretsError,
        apply_secrets_file,
        check_permissions,
    )

    problems: list[str] = []
    warnings: list[str] = []
    secrets_file = spec.data.storage.secrets_file if spec.data.storage else None
    if secrets_file:
        try:
            apply_secrets_file(secrets_file)  # before any storage is touched (and before Ray starts)
        except SecretsError as e:
            problems.append(f"data.storage.secrets_file: {e}")
        else:
            warning = check_permissions(secrets_file)
            if warning:
                warnings.append(warning)

    for msg in (_backbone_problem(spec.eval.backbone),
                _optuna_storage_problem(spec.search.optuna_storage) if spec.search.optuna_storage else None):
        if msg:
            problems.append(msg)

    if not spec.data.uri:
        from gensweep.platform.data.sources import PATH_KINDS, SourceError, source_kind

        try:
            kind, arg = source_kind(spec.data.source)
        except SourceError as e:
            problems.append(f"data.source: {e}")
        else:
            if kind in PATH_KINDS and "://" not in arg and not os.path.exists(os.path.expanduser(arg)):
                problems.append(f"data.source: {arg} does not exist")
            elif kind in PATH_KINDS and "://" in arg and not arg.startswith("file://"):
                msg = _storage_check("data.source", arg, spec) or _remote_source_exists(arg, spec)
                if msg:
                    problems.append(msg)
    elif "://" in spec.data.uri:
        msg = _storage_check("data.uri", spec.data.uri, spec)
        if msg:
            problems.append(msg)

    if not problems:  # do not probe storage with credentials we already know are broken
        msg = _storage_check("results.root", spec.results.root, spec, create)
        if msg:
            problems.append(msg)

    if not (address or os.environ.get("RAY_ADDRESS")):  # a local Ray instance: this machine must hold a trial
        problems += _local_capacity(spec, num_cpus)
    if problems:
        raise PreflightError("cannot run this spec:\n  " + "\n  ".join(problems))
    return warnings


def _local_capacity(spec: ExperimentSpec, num_cpus: Optional[int]) -> list[str]:
    """A trial that a local Ray instance cannot place would wait forever: say which field."""
    import torch

    from gensweep.platform.trial.resources import held_resources, trial_fits

    r = spec.resources
    cpus = num_cpus or os.cpu_count() or 1
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if trial_fits(spec, {"CPU": cpus, "GPU": gpus}):
        return []
    need = held_resources(spec)
    if need["GPU"] > gpus:
        return [f"resources.gpus_per_worker: {r.gpus_per_worker:g} per worker x {r.workers} workers, but this"
                f" machine has {gpus} GPU(s); use 0, or --address of a cluster with GPUs"]
    return [f"resources: a trial needs {need['CPU']:g} CPUs (workers {r.workers} x cpus_per_worker"
            f" {r.cpus_per_worker:g}) but the local Ray instance has {cpus}; it would wait forever. Lower"
            " resources.workers or resources.cpus_per_worker, raise --num-cpus, or pass --address of a larger cluster"]
