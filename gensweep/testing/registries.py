"""The base of the registry suites: test arguments named after a registry are its names.

A test method of a :class:`RegistrySuite` subclass that takes an argument named like a key of
``registries`` (``loss``, ``sampler``, ...) runs once per registered name; with several such
arguments, once per combination. An argument named ``component`` runs once per ``(key, name)``
pair of every registry. The names are read when pytest collects the class,
so whatever was registered by then is checked.
"""
from __future__ import annotations

import itertools
from typing import Any, ClassVar, Mapping, Optional, Sequence

from gensweep.trainables.registry import Registry

COMPONENT = "component"


class RegistrySuite:
    """Parametrizes the tests of a suite over registries (see the module docstring).

    ``only`` narrows the suite: ``{key: [names]}`` checks just those names of those registries,
    and a test none of whose registry arguments is listed there is skipped (it would only
    re-check components that are not the subject). ``None`` checks every registered name.
    """

    registries: ClassVar[Mapping[str, Registry]] = {}
    only: ClassVar[Optional[Mapping[str, Sequence[str]]]] = None

    def names(self, key: str) -> list[str]:
        """The names of registry ``key`` this suite checks."""
        registered = self.registries[key].names()
        if self.only is None:
            return registered
        return list(self.only.get(key, registered))

    def _selected(self, keys: Sequence[str]) -> bool:
        return self.only is None or any(k in self.only for k in keys)

    def pytest_generate_tests(self, metafunc: Any) -> None:
        unknown = sorted(set(self.only or ()) - set(self.registries))
        if unknown:
            raise ValueError(f"{type(self).__name__}.only names no registry of this suite: {unknown}; "
                             f"known: {sorted(self.registries)}")
        keys = [a for a in metafunc.fixturenames if a in self.registries]
        if keys:
            combos = list(itertools.product(*(self.names(k) for k in keys))) if self._selected(keys) else []
            metafunc.parametrize(keys, combos, ids=["-".join(c) for c in combos])
        if COMPONENT in metafunc.fixturenames:
            pairs = [(k, n) for k in self.registries if self._selected([k]) for n in self.names(k)]
            metafunc.parametrize(COMPONENT, pairs, ids=[f"{k}={n}" for k, n in pairs])
