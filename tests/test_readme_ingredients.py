"""README's "Ingredients" table has a row for every registered component.

The registries are found by walking the trainables and metrics packages, so a new registry or
a new entry on any branch is checked without editing this test. Rows for names that this
checkout does not register are allowed (a branch may document components merged later).
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import gensweep.platform.metrics
import gensweep.trainables
from gensweep.trainables.registry import Registry

README = Path(__file__).resolve().parents[1] / "README.md"
PACKAGES = (gensweep.trainables, gensweep.platform.metrics)


def registries() -> dict[str, Registry]:
    """Every module-level registry of the packages, by its kind."""
    found: dict[str, Registry] = {}
    for package in PACKAGES:
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                if isinstance(value, Registry):
                    found[value.kind] = value
    return found


def table_rows(text: str) -> set[tuple[str, str]]:
    """``(kind, name)`` of every row of the Ingredients section's table."""
    section = text.split("\n## Ingredients\n", 1)[1].split("\n## ", 1)[0]
    rows = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 4 and not set(cells[0]) <= {"-"}:
            rows.update((cells[0], name) for name in re.findall(r"`([^`]+)`", cells[1]))
    return rows


def missing_rows(text: str, regs: dict[str, Registry]) -> list[str]:
    rows = table_rows(text)
    return [f"{kind} {name!r}" for kind, reg in sorted(regs.items()) for name in reg.names() if (kind, name) not in rows]


def test_every_registered_component_has_a_readme_row():
    regs = registries()
    assert {"adversarial loss", "regularizer", "augmentation", "architecture", "conditioning", "noise schedule",
            "parameterization", "sampler", "metric"} <= set(regs)
    missing = missing_rows(README.read_text(), regs)
    assert not missing, "README 'Ingredients' has no row for: " + ", ".join(missing)


def test_a_component_without_a_row_is_reported():
    text = README.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| regularizer | `r1` |"))
    assert missing_rows(text.replace(row + "\n", ""), registries()) == ["regularizer 'r1'"]
