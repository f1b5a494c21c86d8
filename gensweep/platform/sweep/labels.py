"""The prepared dataset's labels against the model's classes, checked before Ray starts.

A class-conditional model (``num_classes > 0``; for a GAN also a ``conditioning`` other than
``none``) indexes an embedding with each label: an unlabeled image (label -1) or a label
``>= num_classes`` would crash the first training step inside a trial (IndexError). Here it is
a :class:`~gensweep.platform.sweep.preflight.PreflightError` naming the field instead.
"""
from __future__ import annotations

from typing import Any

from gensweep.platform.spec import ExperimentSpec
from gensweep.platform.spec.space import Categorical, Integer
from gensweep.trainables.families import FAMILIES

LABEL_SETTINGS = ("num_classes", "conditioning")


def conditional_classes(values: dict[str, Any], defaults: dict[str, Any]) -> int:
    """The classes a trial config conditions on (0: an unconditional model)."""
    merged = {**defaults, **values}
    if "num_classes" not in merged or merged.get("conditioning", "label") == "none":
        return 0
    return int(merged["num_classes"] or 0)


def _candidates(spec: ExperimentSpec) -> list[tuple[str, dict[str, Any]]]:
    """(field that sets it, trial settings) for the fixed config and each searched level of a label setting."""
    base = spec.trial_defaults()
    where = "trainable.num_classes" if "num_classes" in base else "trainable.num_classes (default)"
    out = [(where, base)]
    for key, p in spec.space.params.items():
        if key in LABEL_SETTINGS and isinstance(p, (Categorical, Integer)):
            out += [(f"space.{key} (level {level!r})", {**base, key: level}) for level in p.grid()]
    return out


def label_problems(spec: ExperimentSpec, labels: list[int], source: str) -> list[str]:
    """Messages naming the field for every conditional config the dataset's ``labels`` cannot feed."""
    fields = FAMILIES.get(spec.family).config.model_fields
    defaults = {k: f.default for k, f in fields.items() if k in LABEL_SETTINGS}
    problems = []
    for where, values in _candidates(spec):
        k = conditional_classes(values, defaults)
        if not k:
            continue
        if any(v < 0 for v in labels):
            problems.append(
                f"{where}: {k} makes the model class-conditional, but data.source {source!r} has unlabeled images"
                " (label -1; e.g. images directly in the folder, not in class subfolders); set trainable.num_classes:"
                " 0 for an unconditional model, or give every image a class")
        elif labels and max(labels) >= k:
            problems.append(
                f"{where}: {k}, but data.source {source!r} has labels up to {max(labels)}; set num_classes to at"
                f" least {max(labels) + 1}")
    return list(dict.fromkeys(problems))
