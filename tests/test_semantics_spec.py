"""What the data section and the spec's seed imply for the trainable: every such field reaches the
resolved trial config of every family, sampled values override fixed ones, and the eval section's
settings (its own batch size, seeds, sample counts) never leak into the trainable."""
from __future__ import annotations

import pytest

from gensweep.platform.spec.experiment import ExperimentSpec
from gensweep.trainables.families import FAMILIES

IMPLIED = {"resolution": ("data", 16), "channels": ("data", 3), "seed": (None, 7)}


def spec(family: str, **extra) -> ExperimentSpec:
    return ExperimentSpec.model_validate({
        "name": "semantics", "family": family, "seed": 7,
        "data": {"resolution": 16, "channels": 3, "resize": "resize"},
        "eval": {"batch_size": 3, "num_samples": 8, "latent_seed": 99},
        "search": {"algorithm": "random"},
        **extra,
    })


@pytest.mark.parametrize("family", FAMILIES.names())
def test_every_field_the_data_section_implies_reaches_the_trial(family):
    s = spec(family)
    cfg = s.resolve_trial({})
    fields = FAMILIES.get(family).config.model_fields
    implied = {k: v for k, (_section, v) in IMPLIED.items() if k in fields}
    assert set(implied) == {"resolution", "channels", "seed"}  # both families take all three
    for key, value in implied.items():
        assert cfg[key] == value, key
    # the eval section is the evaluator's: its batch size is not the training batch size
    assert cfg["batch_size"] == fields["batch_size"].default != s.eval.batch_size
    assert s.trial_config({}).model_dump() == cfg


@pytest.mark.parametrize("family", FAMILIES.names())
def test_sampled_values_override_fixed_and_implied_ones(family):
    s = spec(family, trainable={"batch_size": 4})
    assert s.resolve_trial({})["batch_size"] == 4
    assert s.resolve_trial({"batch_size": 6})["batch_size"] == 6
    assert s.resolve_trial({"seed": 11})["seed"] == 11  # a grid's replicate seed beats the spec's
    assert s.resolve_trial({})["seed"] == 7


def test_a_trial_changes_only_what_it_samples():
    s = spec("gan")
    base, other = s.resolve_trial({}), s.resolve_trial({"batch_size": 6})
    assert {k for k in base if base[k] != other[k]} == {"batch_size"}
