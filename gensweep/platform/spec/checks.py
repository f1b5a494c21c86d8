"""Plain checks and rules the spec's validators and properties delegate to (mutmut can mutate plain
functions, not decorated methods)."""
from __future__ import annotations

from typing import Any

from gensweep import search_spaces
from gensweep.platform.spec.yaml_load import read_yaml_file
from gensweep.trainables.families import FAMILIES


def check_inline_single_worker(resources: Any) -> Any:
    """The inline launcher runs one worker (validators delegate to plain functions, which mutmut can mutate)."""
    if resources.launcher == "inline" and resources.workers != 1:
        raise ValueError(f"launcher: 'inline' runs one worker; resources.workers is {resources.workers}")
    return resources


def trial_launcher(launcher: str, workers: int) -> str:
    """The launcher a trial runs with: ``auto`` is inline for one worker, train for more."""
    if launcher == "auto":
        return "inline" if workers == 1 else "train"
    return launcher


def trial_restarts(max_failures: int, inline: bool) -> int:
    """Tune's restarts of a whole trial: ``max_failures`` for an inline trial, 0 for a train trial
    (whose restarts are Train's, of its worker group)."""
    return max_failures if inline else 0


def stretch_alias(resize: Any) -> Any:
    """``data.resize``: 'resize' is the older name of 'stretch'."""
    return "stretch" if resize == "resize" else resize


def check_reference_alone(name: str | None, ref_samples: int | None) -> str | None:
    """Imported reference statistics (``eval.reference``) leave ``eval.ref_samples`` unset."""
    if name is not None and ref_samples is not None:
        raise ValueError("imported statistics are a fixed reference set: leave eval.ref_samples unset with"
                         " eval.reference")
    return name


def check_family(name: str) -> str:
    """A registered trainable family (the registry's error names the allowed ones)."""
    FAMILIES.entry(name)
    return name


def check_seed_axis(spec: Any, family_fields: Any) -> Any:
    """The seed is the replicate axis (``search.seeds``): never searched, not fixed beside a seed
    list, and only for a family whose config has a ``seed``."""
    if "seed" in spec.space.params:
        raise ValueError("space.seed: the seed is the replicate axis, not a searched parameter; list the seeds"
                         " in search.seeds")
    if spec.search.seeds is not None and "seed" in spec.trainable:
        raise ValueError("trainable.seed: fixed, but search.seeds lists the replicate seeds; set one of them")
    if "seed" not in family_fields:
        raise ValueError(f"family: {spec.family!r} has no 'seed' setting to replicate over")
    return spec


def load_space(v: Any) -> Any:
    """``space`` as a file name of :mod:`gensweep.search_spaces`, a bare ``{param: ...}`` or ``{"params": ...}``."""
    if isinstance(v, str) and v.endswith((".yaml", ".yml")):  # a file: read as strictly as the spec
        doc = read_yaml_file(v, "space file")
        if not isinstance(doc, dict) or "params" not in doc:
            raise ValueError(f"space file {v} must be a mapping with a 'params' key")
        return {"params": doc["params"]}
    if isinstance(v, str):
        return {"params": search_spaces.load(v)["params"]}
    if isinstance(v, dict) and "params" not in v:
        return {"params": v}
    return v
