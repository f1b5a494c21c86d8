"""The evaluation ladder: how many fake samples an evaluation at a given training step uses.

Early evaluations of a sweep mostly serve the early-stopping scheduler (ASHA's first rungs
compare trials at the same step), so they can be cheap; later ones use the full N. The
reference statistics never change along the ladder, only the fake-sample count does, and
every metric value is stored with the N it was made with (``eval_n``). Note that FID is
biased upward at small N (Chong & Forsyth 2020, arXiv:1911.07023): compare values at equal N.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SampleLadder"]


@dataclass(frozen=True)
class SampleLadder:
    """``rungs``: ``(until_step, num_samples)`` pairs in ascending order; an evaluation at step
    ``s`` uses the first rung with ``s <= until_step``, and ``full`` after the last rung."""

    full: int
    rungs: tuple[tuple[int, int], ...] = ()

    @classmethod
    def from_rungs(cls, full: int, rungs: Iterable[Mapping[str, Any]]) -> "SampleLadder":
        """From spec-style rungs ``[{"until_step": 300, "num_samples": 250}, ...]``."""
        return cls(int(full), tuple((int(r["until_step"]), int(r["num_samples"])) for r in rungs))

    def to_rungs(self) -> list[dict[str, int]]:
        """The spec-style rungs again (the inverse of :meth:`from_rungs`)."""
        return [{"until_step": until_step, "num_samples": n} for until_step, n in self.rungs]

    def num_samples(self, step: int) -> int:
        for until_step, n in self.rungs:
            if step <= until_step:
                return n
        return self.full
