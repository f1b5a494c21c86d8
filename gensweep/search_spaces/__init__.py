"""Shipped search spaces (YAML files in this folder), loadable by name."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml


def available() -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def load(name_or_path: str) -> dict[str, Any]:
    """The raw mapping of a shipped space (by name) or of a YAML file (by path)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        text = path.read_text()
    else:
        res = resources.files(__name__) / f"{name_or_path}.yaml"
        if not res.is_file():
            raise ValueError(f"unknown search space {name_or_path!r}; shipped: {', '.join(available())}, or give a .yaml path")
        text = res.read_text()
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or "params" not in data:
        raise ValueError(f"search space {name_or_path!r} must be a mapping with a 'params' key")
    return data
