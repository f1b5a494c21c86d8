"""Conditional search spaces: Optuna define-by-run and factorial grids."""
from __future__ import annotations

import optuna

from gensweep.platform.spec.space import SearchSpace, with_replicates

SPACE = SearchSpace.model_validate(
    {
        "params": {
            "reg": ["none", "r1", "gp"],
            "reg_weight": {"type": "loguniform", "low": 0.1, "high": 10, "when": {"reg": ["r1", "gp"]}},
            "loss": ["ns", "hinge"],
            "n_dis": {"type": "int", "low": 1, "high": 2},
        }
    }
)


def test_define_by_run_only_suggests_active_children():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space = SPACE.define_by_run()
    for _ in range(40):
        trial = study.ask()
        space(trial)
        params = trial.params
        assert ("reg_weight" in params) == (params["reg"] in ("r1", "gp"))
        assert 0.1 <= params.get("reg_weight", 1.0) <= 10
        study.tell(trial, 0.0)
    seen = {t.params["reg"] for t in study.trials}
    assert seen == {"none", "r1", "gp"}


def test_grid_expands_conditionals_and_replicates():
    space = SearchSpace.model_validate(
        {"params": {"reg": ["none", "r1"], "reg_weight": {"type": "categorical", "choices": [1, 10], "when": {"reg": ["r1"]}},
                    "loss": ["ns", "hinge"]}}
    )
    cells = space.grid()
    # none x 2 losses + r1 x 2 weights x 2 losses
    assert len(cells) == 6
    assert all(("reg_weight" in c) == (c["reg"] == "r1") for c in cells)
    reps = with_replicates(cells, [0, 1, 2])
    assert len(reps) == 18 and {c["seed"] for c in reps} == {0, 1, 2}
    assert len({tuple(sorted(c.items())) for c in reps}) == 18
