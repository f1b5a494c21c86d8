"""The PBT lineage section: every exploit of a sweep, from the store's ``lineage`` table."""
from __future__ import annotations

import json

import pandas as pd

from . import html as H


def perturbation_text(perturbation: str) -> str:
    """``{"lr": {"from": 0.001, "to": 0.0012, "op": "* 1.2"}}`` -> ``lr 0.001 -> 0.0012 (* 1.2)``."""
    try:
        changes = json.loads(perturbation)
    except (TypeError, ValueError):
        return str(perturbation)
    parts = []
    for name, change in sorted(changes.items()):
        op = f" ({change.get('op')})" if change.get("op") else ""
        parts.append(f"{name} {H.fmt(change.get('from'))} -> {H.fmt(change.get('to'))}{op}")
    return "; ".join(parts)


def lineage(rows: pd.DataFrame) -> str:
    """A table of exploits in time order: which trial took whose state at which step, and what changed."""
    rows = rows.sort_values(["exploited_at", "trial_id"], kind="stable") if "exploited_at" in rows else rows
    body = H.table(
        ["trial", "continued from", "at step", "its own step then", "explore"],
        [(r.trial_id, r.donor_trial_id, r.step, getattr(r, "replaced_step", None), perturbation_text(r.perturbation))
         for r in rows.itertuples()],
        table_id="lineage-table", numeric=[False, False, True, True, False],
    )
    return H.method(
        "Population Based Training: a trial in the bottom quantile took the whole state of a top trial (networks,"
        " optimizers, EMA, augmentation state, step, RNG) at that trial's step, then perturbed the listed"
        " hyperparameters; the restored optimizers run at the new values.") + body
