"""The statuses a trial has in the ``trials`` table.

A member is a ``str``: it compares equal to (and hashes like) the lower-case string that is
stored, so stored values, pandas columns and plain strings can be compared with it directly.
"""
from __future__ import annotations

from enum import Enum


class TrialStatus(str, Enum):
    """Where a trial stands; ``terminal`` once it has ended (for any reason)."""

    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"  # ended early by a scheduler or stopping criterion
    DIVERGED = "diverged"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    @property
    def terminal(self) -> bool:
        """The trial has ended: a stored terminal row of a trial beats its ``running`` row."""
        return self is not TrialStatus.RUNNING

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """The stored strings, in declaration order."""
        return tuple(member.value for member in cls)

    @classmethod
    def terminals(cls) -> tuple["TrialStatus", ...]:
        return tuple(member for member in cls if member.terminal)
