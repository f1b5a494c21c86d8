"""Combinations of ingredients that cannot work together, declared once.

Each :class:`Rule` looks at a field-valid config (any object with the GanConfig fields as
attributes: the rules read plain field values, never the model) and returns a reason or None;
its message names the fields involved. Rules read what components declare about themselves
(``needs_labels``, ``needs_lipschitz``, ``lipschitz``, ``exclusive``, ``combinable``,
``default_weight``, ``needs_mapping`` / ``mapping_network``, a DiffAugment entry's ``policy``),
never their names, so a new component is covered without editing this file.

:class:`~gensweep.trainables.gan.config.GanConfig` enforces the rules through :func:`check_rules`
(a ValueError naming the fields); :func:`~gensweep.trainables.gan.config.violations` lists them
for a raw config dict, so the platform can drop invalid grid cells with a clear message instead
of failing a trial.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Optional

from gensweep.trainables.gan.architectures import ARCHITECTURES
from gensweep.trainables.gan.augment import AUGMENTATIONS
from gensweep.trainables.gan.conditioning import CONDITIONINGS
from gensweep.trainables.gan.losses import LOSSES
from gensweep.trainables.gan.regularizers import REGULARIZERS, reg_names


@dataclass(frozen=True)
class Rule:
    name: str
    fields: tuple[str, ...]
    check: Callable[[Any], Optional[str]]  # a field-valid config -> reason, or None when it holds

    def apply(self, cfg: Any) -> Optional[str]:
        reason = self.check(cfg)
        return None if reason is None else f"{reason} (fields: {', '.join(self.fields)})"


def _regs(cfg: Any) -> list[tuple[str, type]]:
    return [(n, REGULARIZERS.get(n)) for n in reg_names(cfg.reg)]


def _labels(cfg: Any) -> Optional[str]:
    if CONDITIONINGS.get(cfg.conditioning).needs_labels and cfg.num_classes == 0:
        return f"conditioning={cfg.conditioning!r} needs class labels, but num_classes=0; set num_classes > 0"
    return None


def _lipschitz(cfg: Any) -> Optional[str]:
    if not LOSSES.get(cfg.loss).needs_lipschitz or any(cls.lipschitz for _, cls in _regs(cfg)):
        return None
    options = [n for n in REGULARIZERS.names() if REGULARIZERS.get(n).lipschitz]
    return (
        f"loss={cfg.loss!r} is only defined for a Lipschitz-constrained critic, but reg={cfg.reg!r} constrains"
        f" nothing; add one of {', '.join(options)} to reg"
    )


def _redundant(cfg: Any) -> Optional[str]:
    groups: dict[str, list[str]] = {}
    for name, cls in _regs(cfg):
        if cls.exclusive:
            groups.setdefault(cls.exclusive, []).append(name)
    clash = {g: names for g, names in groups.items() if len(set(names)) > 1}
    if not clash:
        return None
    group, names = next(iter(clash.items()))
    return f"reg={cfg.reg!r} combines {' and '.join(names)}, redundant ({group}s); keep one"


def _duplicates(cfg: Any) -> Optional[str]:
    names = reg_names(cfg.reg)
    dup = sorted(n for n, c in Counter(names).items() if c > 1)
    if dup:
        return f"reg={cfg.reg!r} lists {', '.join(dup)} more than once"
    return None


def _standalone(cfg: Any) -> Optional[str]:
    regs = _regs(cfg)
    alone = [n for n, cls in regs if not cls.combinable]
    if len(regs) > 1 and alone:
        return f"reg={cfg.reg!r} combines {', '.join(alone)} with other regularizers; {alone[0]} stands alone"
    return None


def _ambiguous_weight(cfg: Any) -> Optional[str]:
    weighted = [n for n, cls in _regs(cfg) if cls.default_weight is not None]
    if cfg.reg_weight is not None and len(weighted) > 1:
        return (
            f"reg_weight={cfg.reg_weight} is ambiguous for reg={cfg.reg!r}, which has several weighted parts"
            f" ({', '.join(weighted)}); leave reg_weight unset to use their defaults"
        )
    return None


def _ada_needs_aug(cfg: Any) -> Optional[str]:
    if cfg.ada_target is not None and cfg.aug == "none":
        return f"ada_target={cfg.ada_target} adapts the augmentation probability, but aug='none' augments nothing"
    return None


def _policy_needs_diffaugment(cfg: Any) -> Optional[str]:
    if cfg.aug_policy is None or hasattr(AUGMENTATIONS.get(cfg.aug), "policy"):
        return None
    options = [n for n in AUGMENTATIONS.names() if hasattr(AUGMENTATIONS.get(n), "policy")]
    return f"aug_policy={cfg.aug_policy!r} is a DiffAugment policy, but aug={cfg.aug!r} takes none; use one of {', '.join(options)}"


def _mapping_network(cfg: Any) -> Optional[str]:
    needing = [n for n, cls in _regs(cfg) if cls.needs_mapping]
    if not needing or getattr(ARCHITECTURES.get(cfg.arch), "mapping_network", False):
        return None
    options = [n for n in ARCHITECTURES.names() if getattr(ARCHITECTURES.get(n), "mapping_network", False)]
    return (
        f"reg={cfg.reg!r} includes {', '.join(needing)}, which needs a generator with a mapping network,"
        f" but arch={cfg.arch!r} has none; use {', '.join(options)}"
    )


RULES: list[Rule] = [
    Rule("conditioning-needs-labels", ("conditioning", "num_classes"), _labels),
    Rule("critic-needs-lipschitz", ("loss", "reg"), _lipschitz),
    Rule("redundant-constraints", ("reg",), _redundant),
    Rule("duplicate-regularizer", ("reg",), _duplicates),
    Rule("standalone-regularizer", ("reg",), _standalone),
    Rule("ambiguous-reg-weight", ("reg", "reg_weight"), _ambiguous_weight),
    Rule("ada-needs-augmentation", ("ada_target", "aug"), _ada_needs_aug),
    Rule("policy-needs-diffaugment", ("aug", "aug_policy"), _policy_needs_diffaugment),
    Rule("regularizer-needs-mapping-network", ("reg", "arch"), _mapping_network),
]


def check_rules(cfg: Any) -> list[str]:
    """Messages of the rules a field-valid config (a GanConfig, or any object with its fields) breaks."""
    return [msg for rule in RULES if (msg := rule.apply(cfg)) is not None]
