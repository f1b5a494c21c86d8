"""Names that become parts of paths under a results root, and the default root.

Kept free of heavy imports: the command-line parser reads them while building ``--help``.
An experiment id becomes Tune's run name and a folder under ``<root>/ray``, ``<root>/files`` and
every table of the results store, so it is one path segment and nothing else: letters, digits,
``.``, ``_`` and ``-``, starting with a letter or digit (no separators, no ``..``, no hidden names).
"""
from __future__ import annotations

import re

DEFAULT_ROOT = "./gensweep_results"

EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
EXPERIMENT_RULE = "letters, digits, '.', '_' or '-', starting with a letter or digit, at most 128 characters"


def experiment_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be an experiment id, or None when it can."""
    if isinstance(name, str) and EXPERIMENT_NAME.fullmatch(name):
        return None
    shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
    return f"experiment {shown} must be {EXPERIMENT_RULE}"
