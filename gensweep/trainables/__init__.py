"""gensweep's trainables: plain PyTorch families (no Ray, no platform).

``load_exported(path)`` (from :mod:`.export`) rebuilds a model written by ``gensweep export``;
it is resolved on first use, so importing a submodule does not import it.
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("load_exported", "export_model", "ExportedModel"):
        from gensweep.trainables import export

        return getattr(export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
