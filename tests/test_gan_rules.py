"""Incompatible ingredient combinations are rejected naming the fields; ``violations`` lists them;
the shipped GAN search spaces only name GanConfig fields and valid levels."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from gensweep import search_spaces
from gensweep.platform.spec.space import Categorical, Integer, SearchSpace
from gensweep.trainables.gan.config import GanConfig, violations
from gensweep.trainables.gan.rules import RULES

# rule name -> (a config breaking only that rule, fields the message must name)
BROKEN = {
    "conditioning-needs-labels": ({"conditioning": "acgan", "num_classes": 0}, ["conditioning", "num_classes"]),
    "critic-needs-lipschitz": ({"loss": "wgan", "reg": "r1"}, ["loss", "reg"]),
    "redundant-constraints": ({"reg": "spectral-norm+weight-clip"}, ["reg"]),
    "duplicate-regularizer": ({"reg": "r1+r1"}, ["reg"]),
    "standalone-regularizer": ({"reg": "none+r1"}, ["reg"]),
    "ambiguous-reg-weight": ({"reg": "r1+lecam", "reg_weight": 5.0}, ["reg", "reg_weight"]),
    "ada-needs-augmentation": ({"ada_target": 0.6, "aug": "none"}, ["ada_target", "aug"]),
    "policy-needs-diffaugment": ({"aug_policy": "translation"}, ["aug", "aug_policy"]),
    "regularizer-needs-mapping-network": ({"reg": "path-length", "arch": "resnet"}, ["reg", "arch"]),
}


def test_every_rule_has_a_broken_example():
    assert {r.name for r in RULES} == set(BROKEN)


@pytest.mark.parametrize("rule", sorted(BROKEN))
def test_incompatible_config_is_rejected_naming_the_fields(rule):
    cfg, fields = BROKEN[rule]
    with pytest.raises(ValidationError) as info:
        GanConfig.model_validate(cfg)
    text = str(info.value)
    for f in fields:
        assert f in text
    found = violations(cfg)
    assert len(found) == 1, found
    assert found[0].endswith(f"(fields: {', '.join(fields)})")
    assert found[0] in text
    # field-level validation alone (one search-space level at a time) accepts it
    GanConfig.model_validate(cfg, context={"rules": False})


def test_messages_say_what_to_do():
    (msg,) = violations({"loss": "wgan"})
    assert "loss='wgan'" in msg and "gp" in msg and "spectral-norm" in msg and "weight-clip" in msg
    (msg,) = violations({"conditioning": "projection", "num_classes": 0})
    assert "num_classes > 0" in msg


VALID = [
    {},
    {"loss": "wgan", "reg": "gp"},
    {"loss": "wgan", "reg": "weight-clip"},
    {"loss": "wgan", "reg": "spectral-norm+lecam"},
    {"reg": "r1+spectral-norm", "reg_weight": 5.0},  # one weighted part: the weight is unambiguous
    {"reg": "spectral-norm-gd+ortho"},
    {"conditioning": "adcgan", "num_classes": 10},
    {"aug": "diffaug", "ada_target": 0.6},
    {"num_classes": 0, "conditioning": "none"},
]


@pytest.mark.parametrize("cfg", VALID, ids=[str(c) for c in VALID])
def test_compatible_configs_pass(cfg):
    assert violations(cfg) == []
    GanConfig.model_validate(cfg)


def test_violations_reports_field_errors_first():
    found = violations({"reg": "r1+nope", "lr": -1})
    assert any(m.startswith("reg:") and "unknown regularizer 'nope'" in m for m in found)
    assert any(m.startswith("lr:") for m in found)
    assert violations({"bogus": 1}) == ["bogus: Extra inputs are not permitted"]


def test_several_rules_are_all_listed():
    found = violations({"loss": "wgan", "reg": "r1+r1", "conditioning": "acgan", "num_classes": 0})
    assert len(found) == 3


GAN_SPACES = [n for n in search_spaces.available() if n.startswith("gan-")]


def _space(name: str) -> SearchSpace:
    return SearchSpace.model_validate({"params": search_spaces.load(name)["params"]})


def test_spaces_are_shipped():
    assert {"gan-quick", "gan-losses-regs", "gan-full", "gan-limited-data", "gan-conditioning"} <= set(GAN_SPACES)


@pytest.mark.parametrize("name", GAN_SPACES)
def test_space_levels_are_valid_config_fields(name):
    space = _space(name)
    base = {"num_classes": 10}
    for key, p in space.params.items():
        assert key in GanConfig.model_fields, f"{name}: {key} is not a GanConfig field"
        levels = p.grid() if isinstance(p, (Categorical, Integer)) else [p.low, p.high]
        for level in levels:
            GanConfig.model_validate({**base, key: level}, context={"rules": False})


GRID_SPACES = [n for n in GAN_SPACES if all(isinstance(p, (Categorical, Integer)) for p in _space(n).params.values())]


def test_factorial_spaces_are_grids():
    assert {"gan-losses-regs", "gan-limited-data", "gan-conditioning"} <= set(GRID_SPACES)


@pytest.mark.parametrize("name", GRID_SPACES)
def test_grid_spaces_drop_only_rule_breaking_cells(name):
    cells = _space(name).grid()
    base = {"num_classes": 10}
    valid = [c for c in cells if not violations({**base, **c})]
    dropped = [c for c in cells if violations({**base, **c})]
    assert valid, name
    for c in valid:
        GanConfig.model_validate({**base, **c})
    for c in dropped:  # only the Lipschitz rule can bite in the shipped grids
        assert c["loss"] == "wgan" and all(m.endswith("(fields: loss, reg)") for m in violations({**base, **c}))
    if name == "gan-losses-regs":
        assert (len(cells), len(valid)) == (78, 70)
