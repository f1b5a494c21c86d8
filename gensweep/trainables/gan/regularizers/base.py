"""Regularizers and constraints: the common interface, the registry, and ``reg`` strings.

A regularizer is an :class:`~gensweep.trainables.gan.terms.Ingredient` built as
``cls(weight, **settings)`` (``weight=None``: its default; ``settings``: the config fields it
names in ``settings``, e.g. LeCam's ``lecam_start``, each with a default). It contributes penalty terms to a phase
(D_reg / G_reg run lazily every ``reg_interval`` steps; D_main / G_main every step), and/or
acts through hooks: ``build(G, D)`` (e.g. spectral norm) and ``after_phase`` (e.g. clipping).

Declared properties the rules read (never the name):
- ``default_weight``: None when the component takes no weight;
- ``lipschitz``: it bounds D's Lipschitz constant (what a Wasserstein critic needs);
- ``exclusive``: components sharing a group are redundant together (at most one per ``reg``);
- ``combinable``: False for a component that only makes sense alone (``none``);
- ``needs_mapping``: it differentiates through G's mapping network (the architecture must have one).

``reg`` in the config is one name or several joined with ``+`` (e.g. ``r1+spectral-norm``).
"""
from __future__ import annotations

from typing import Any, Optional

from gensweep.trainables.gan.terms import Ingredient
from gensweep.trainables.registry import Registry

SEPARATOR = "+"

REGULARIZERS: Registry[type] = Registry("regularizer")


class Regularizer(Ingredient):
    default_weight: Optional[float] = 1.0
    lipschitz: bool = False
    exclusive: Optional[str] = None
    combinable: bool = True
    needs_mapping: bool = False
    settings: tuple[str, ...] = ()  # config fields passed to the constructor as keywords

    def __init__(self, weight: Optional[float] = None):
        self.weight = self.default_weight if weight is None else float(weight)
        self.state: dict[str, Any] = {}

    def state_dict(self) -> dict[str, Any]:
        return dict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state.update(state)


def reg_names(reg: str) -> list[str]:
    """The component names of a ``reg`` string (``"r1+spectral-norm"`` -> ``["r1", "spectral-norm"]``)."""
    return [part.strip() for part in reg.split(SEPARATOR)]


def build_regularizers(reg: str, reg_weight: Optional[float] = None, config: Any = None) -> list[Regularizer]:
    """Instances for a ``reg`` string; ``reg_weight`` overrides the weight of the weighted ones;
    each takes the ``settings`` it names from ``config`` (a GanConfig; None: their defaults)."""
    out = []
    for name in reg_names(reg):
        cls = REGULARIZERS.get(name)
        settings = {} if config is None else {k: getattr(config, k) for k in cls.settings}
        out.append(cls(reg_weight if cls.default_weight is not None else None, **settings))
    return out
