"""The files of a trial checkpoint: the trainable's state and what the trial was.

A checkpoint directory (Ray Train or Tune stores it under ``<results root>/ray/...``) holds
``state.pt`` (the trainable's state dict: networks, optimizers, step, RNG, its config) and
``trial.json`` (experiment, trial id, family, prepared dataset, results root, storage options and
the evaluation settings with the reference-statistics key), so that a checkpoint can be
re-scored on its own (``gensweep eval``), and ``report.json`` (the metrics reported with the
checkpoint and when), so that a trial resumed from it can backfill a report its driver never
recorded.
"""
from __future__ import annotations

import io
import json
import math
import os
import posixpath
import time
from typing import Any, Mapping, Optional

import torch

from gensweep.platform.results.schema import is_scalar
from gensweep.platform.storage.uris import StorageOptions, exists, read_bytes, resolve
from gensweep.platform.trial.handoff import EvalRuntime

STATE_FILE = "state.pt"
INFO_FILE = "trial.json"
REPORT_FILE = "report.json"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be loaded (missing, truncated, corrupt, or not a gensweep state)."""


INFO_KEYS = ("experiment", "trial_id", "family", "dataset", "results_root", "storage", "eval", "reference")


def checkpoint_info(*, experiment: str, trial_id: str, family: str, dataset: str, results_root: str,
                    storage: Mapping[str, Any], eval_runtime: EvalRuntime) -> dict[str, Any]:
    """What ``trial.json`` holds (plain JSON; storage options carry no secrets)."""
    return {
        "experiment": experiment,
        "trial_id": trial_id,
        "family": family,
        "dataset": dataset,
        "results_root": results_root,
        "storage": dict(storage),
        "eval": dict(eval_runtime.settings),
        "reference": eval_runtime.key.to_dict(),
    }


def report_record(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """What ``report.json`` holds: the report's scalar metrics and the time it was made."""
    scalars = {}
    for k, v in metrics.items():
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):
            try:
                v = v.item()
            except (ValueError, RuntimeError):
                continue
        if is_scalar(v):
            scalars[str(k)] = v
    return {"reported_at": time.time(), "metrics": scalars}


def read_report(path: str) -> Optional[dict[str, Any]]:
    """A checkpoint's ``report.json``, or None when it is missing or malformed (nothing to backfill)."""
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None
    if not (isinstance(report, dict) and isinstance(report.get("metrics"), dict) and "step" in report["metrics"]):
        return None
    stamp = report.get("reported_at")
    return report if isinstance(stamp, (int, float)) and math.isfinite(stamp) else None


def write_checkpoint_dir(directory: str, state: Mapping[str, Any], info: Mapping[str, Any],
                         report: Optional[Mapping[str, Any]] = None) -> None:
    """Write a checkpoint's files into a local directory (which Ray then persists)."""
    torch.save(dict(state), os.path.join(directory, STATE_FILE))
    with open(os.path.join(directory, INFO_FILE), "w") as f:
        json.dump(dict(info), f, indent=2, sort_keys=True)
    if report is not None:
        with open(os.path.join(directory, REPORT_FILE), "w") as f:
            json.dump(dict(report), f)


def _load_state(source: Any, where: str, device: torch.device | str) -> dict[str, Any]:
    try:
        state = torch.load(source, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {where} has no {STATE_FILE}") from None
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"checkpoint {where} cannot be loaded ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"checkpoint {where} is not a gensweep trial state (no 'step')")
    return state


def load_state_file(path: str, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The state dict in a local ``state.pt``."""
    return _load_state(path, path, device)


def load_checkpoint(uri: str, device: torch.device | str = "cpu",
                    storage: StorageOptions | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state, info)`` of a checkpoint directory, or of the directory of a given ``state.pt``;
    a local path or a URI such as ``s3://bucket/.../checkpoint_...``."""
    try:
        fs, path = resolve(uri, storage)
    except ValueError as e:
        raise CheckpointError(f"checkpoint {uri}: {e}") from None
    if not exists(fs, path):
        raise CheckpointError(f"checkpoint {uri} does not exist")
    directory = posixpath.dirname(path) if posixpath.basename(path) == STATE_FILE else path
    state_path, info_path = posixpath.join(directory, STATE_FILE), posixpath.join(directory, INFO_FILE)
    if not exists(fs, state_path):
        raise CheckpointError(f"checkpoint {uri} has no {STATE_FILE}")
    state = _load_state(io.BytesIO(read_bytes(fs, state_path)), uri, device)
    if not exists(fs, info_path):
        raise CheckpointError(f"checkpoint {uri} has no {INFO_FILE} (which trial, dataset and evaluation it belongs to)")
    try:
        info = json.loads(read_bytes(fs, info_path))
    except ValueError as e:
        raise CheckpointError(f"checkpoint {uri}: {INFO_FILE} is not valid JSON ({e})") from None
    missing = [k for k in INFO_KEYS if k not in info]
    if missing:
        raise CheckpointError(f"checkpoint {uri}: {INFO_FILE} lacks {', '.join(missing)}")
    return state, info
