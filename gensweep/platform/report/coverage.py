"""Which parts of the search space the trials sampled, from the spec saved with the experiment.

The experiments row holds the spec the sweep ran (``ReportData.spec``); its ``space``
is parsed with :mod:`gensweep.platform.spec`.  A level of a categorical or int
parameter that no trial ran is listed as never sampled; for continuous parameters
the sampled range is shown beside the space's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gensweep.platform.results.query import is_missing
from gensweep.platform.results.schema import CONFIG_PREFIX

from .labels import short_number

MAX_LISTED = 40  # int ranges with more values are summarised, not listed


@dataclass
class Coverage:
    params: dict[str, Any] = field(default_factory=dict)  # name -> the spec's parameter
    rows: list[list[Any]] = field(default_factory=list)  # parameter, space, sampled, never sampled
    note: str | None = None


def search_space(spec: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """``(parameters by name, note)`` of the spec's search space; the note says why
    there are none (no spec saved, no space, or a spec that no longer parses)."""
    if not spec:
        return {}, "The experiment's row holds no spec, so the search space is unknown."
    from gensweep.platform.spec import SpecError, parse_spec
    from gensweep.platform.spec.space import SearchSpace

    try:
        space = parse_spec(dict(spec)).space
    except (SpecError, ValueError, TypeError, KeyError) as exc:
        raw = spec.get("space")
        try:  # the space on its own (the rest of an older spec may no longer validate)
            space = SearchSpace.model_validate(raw if isinstance(raw, dict) and "params" in raw else {"params": raw})
        except (ValueError, TypeError):
            return {}, f"The saved spec's search space could not be read: {type(exc).__name__}: {exc}"
    if not space.params:
        return {}, "The saved spec has no search space."
    return dict(space.params), None


def _key(value: Any) -> Any:
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("num", float(value))
    return ("str", str(value))


def _sampled(board: pd.DataFrame, name: str) -> list[Any]:
    col = CONFIG_PREFIX + name
    if board.empty or col not in board.columns:
        return []
    return [v.item() if hasattr(v, "item") else v for v in board[col] if not is_missing(v)]


def coverage(spec: dict[str, Any], board: pd.DataFrame) -> Coverage:
    """One row per parameter of the spec's space: its levels (or range), what the trials
    in ``board`` (the leaderboard, one row per trial with ``config/`` columns) ran, and
    the levels no trial ran."""
    params, note = search_space(spec)
    out = Coverage(params, note=note)
    for name, p in params.items():
        seen = _sampled(board, name)
        if p.type in ("uniform", "loguniform"):
            nums = [float(v) for v in seen if isinstance(v, (int, float))]
            ran = f"{len(nums)} trials in [{short_number(min(nums))}, {short_number(max(nums))}]" if nums else "none"
            out.rows.append([name, f"{p.type} [{short_number(p.low)}, {short_number(p.high)}]", ran,
                             "" if nums else "all"])
            continue
        levels = list(range(p.low, p.high + 1, p.step)) if p.type == "int" else list(p.choices)
        seen_keys = {_key(v) for v in seen}
        missing = [lv for lv in levels if _key(lv) not in seen_keys]
        space = (f"int {p.low}..{p.high} step {p.step} ({len(levels)} values)" if p.type == "int"
                 else ", ".join(map(str, levels)))
        ran = f"{len(seen_keys & {_key(lv) for lv in levels})} of {len(levels)} levels ({len(seen)} trials)"
        listed = ", ".join(map(str, missing[:MAX_LISTED])) + (f", ... ({len(missing)} in all)"
                                                               if len(missing) > MAX_LISTED else "")
        out.rows.append([name, space, ran, listed])
    return out
