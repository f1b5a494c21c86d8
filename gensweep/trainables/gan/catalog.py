"""Every GAN ingredient registry in one place: what a name in a spec means, with its paper."""
from __future__ import annotations

from gensweep.trainables.gan.architectures import ARCHITECTURES
from gensweep.trainables.gan.augment import AUG_POLICIES, AUGMENTATIONS
from gensweep.trainables.gan.conditioning import CONDITIONINGS
from gensweep.trainables.gan.dynamic_d import DYNAMIC_D
from gensweep.trainables.gan.losses import LOSSES
from gensweep.trainables.gan.regularizers import REGULARIZERS
from gensweep.trainables.registry import Registry

# config field -> the registry its names come from
REGISTRIES: dict[str, Registry] = {
    "loss": LOSSES,
    "reg": REGULARIZERS,
    "arch": ARCHITECTURES,
    "conditioning": CONDITIONINGS,
    "aug": AUGMENTATIONS,
    "aug_policy": AUG_POLICIES,  # comma-separated names
    "dynamic_d": DYNAMIC_D,
}


def components() -> dict[str, dict[str, str]]:
    """``{config field: {name: paper reference}}`` for every registered GAN ingredient."""
    return {field: reg.describe() for field, reg in REGISTRIES.items()}


def markdown() -> str:
    """The catalog as a markdown table (field, registry kind, name, reference)."""
    lines = ["| field | kind | name | reference |", "|---|---|---|---|"]
    for field, reg in REGISTRIES.items():
        lines += [f"| `{field}` | {reg.kind} | `{name}` | {ref} |" for name, ref in reg.describe().items()]
    return "\n".join(lines)
