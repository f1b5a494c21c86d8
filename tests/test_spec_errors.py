"""The exact text of spec errors: one line per problem under ``invalid spec:``, located by field,
long locations cut, and the checks the spec's validators delegate to (no Ray)."""
from __future__ import annotations

import pytest

from gensweep.platform.metrics.protocol import METRICS
from gensweep.platform.spec import SpecError, parse_spec
from gensweep.platform.spec.checks import check_family, check_reference_alone, stretch_alias, trial_launcher


def error(spec: dict) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "t", **spec})
    return str(info.value)


def test_each_problem_is_one_indented_line_after_the_heading():
    text = error({"resources": {"workers": 0}, "data": {"channels": 2}})
    assert text == ("invalid spec:\n  resources.workers: Input should be greater than or equal to 1\n"
                    "  data.channels: must be one of 1 or 3")


def test_a_model_level_error_carries_its_own_location():
    text = error({"trainable": {"widht": 32}})
    assert text.startswith("invalid spec:\n  trainable.widht: unknown setting for family 'gan'; allowed: ")


def test_an_unregistered_metric_lists_the_registry_in_order():
    names = [repr(n) for n in METRICS.names()]
    assert len(names) >= 3
    expected = "must be one of " + ", ".join(names[:-1]) + " or " + names[-1]
    assert error({"eval": {"metrics": ["fid", "lpips"]}}) == f"invalid spec:\n  eval.metrics.1: {expected}"


@pytest.mark.parametrize("key_len, shown", [(187, None), (188, 197)])
def test_a_location_over_200_characters_is_cut(key_len, shown):
    key = "k" * key_len  # space.params.<key>: 13 + key_len characters
    line = error({"space": {key: {"type": "normal"}}}).splitlines()[1].strip()
    loc = line.split(": ", 1)[0]
    if shown is None:
        assert loc == f"space.params.{key}"
    else:
        assert loc == f"space.params.{key}"[:shown] + "..."


def test_a_literal_lists_its_allowed_values():
    assert error({"data": {"resize": "bogus"}}) == \
        "invalid spec:\n  data.resize: must be one of 'pad', 'stretch' or 'center-crop'"


def test_checks_behind_the_validators():
    assert [trial_launcher(launcher, workers) for launcher, workers in
            [("auto", 1), ("auto", 2), ("train", 1), ("inline", 1)]] == ["inline", "train", "train", "inline"]
    assert [stretch_alias(v) for v in ("resize", "stretch", "pad", 3)] == ["stretch", "stretch", "pad", 3]
    assert check_reference_alone("inception-cifar10", None) == "inception-cifar10"
    assert check_reference_alone(None, 100) is None
    with pytest.raises(ValueError, match="leave eval.ref_samples unset with eval.reference"):
        check_reference_alone("inception-cifar10", 100)
    assert check_family("diffusion") == "diffusion"
    with pytest.raises(ValueError, match="unknown trainable family 'vae'"):
        check_family("vae")
    assert "eval.reference: imported statistics are a fixed reference set" in \
        error({"eval": {"ref_samples": 10, "reference": "inception-cifar10"}})


@pytest.mark.parametrize("names, expected", [(["fid"], "must be one of 'fid'"),
                                             (["fid", "kid"], "must be one of 'fid' or 'kid'"),
                                             (["fid", "kid", "is"], "must be one of 'fid', 'kid' or 'is'")])
def test_the_allowed_metrics_read_as_a_list_for_any_registry_size(names, expected, monkeypatch):
    from gensweep.platform.metrics.protocol import MetricRegistry
    from gensweep.platform.spec import experiment

    registry = MetricRegistry("metric")
    for name in names:
        registry.metric(name, ref="test", columns=(name,))(lambda fake, ref, protocol: {})
    monkeypatch.setattr(experiment, "METRICS", registry)
    assert experiment._registered_metric(names[-1]) == names[-1]
    with pytest.raises(ValueError) as info:
        experiment._registered_metric("lpips")
    assert str(info.value) == expected


def test_an_unknown_setting_lists_every_field_of_the_family():
    from pydantic import ValidationError

    from gensweep.platform.spec.experiment import ExperimentSpec
    from gensweep.trainables.families import FAMILIES

    allowed = ", ".join(sorted(FAMILIES.get("gan").config.model_fields))
    for section, what in (("trainable", "setting"), ("space", "parameter")):
        value = {"widht": 32} if section == "trainable" else {"widht": [32]}
        with pytest.raises(ValidationError) as info:
            ExperimentSpec.model_validate({"name": "t", section: value})
        assert info.value.errors()[0]["msg"] == \
            f"Value error, {section}.widht: unknown {what} for family 'gan'; allowed: {allowed}"


def test_grid_errors_name_the_family_and_the_scheduler():
    assert error({"search": {"algorithm": "grid"}, "scheduler": {"kind": "none"},
                  "space": {"loss": ["wgan"], "reg": ["none"]}}) == \
        "invalid spec:\n  space: every grid cell breaks a combination rule of family 'gan'"
    assert error({"search": {"algorithm": "grid"}, "space": {"loss": ["ns"]}}) == (
        "invalid spec:\n  scheduler.kind: 'asha' stops cells early, but a factorial grid gives every cell the same"
        " budget; use 'none'")


def test_fixed_settings_are_located_to_the_item_and_all_named():
    assert error({"family": "diffusion", "trainable": {"sampling_grid": [5]}}) == \
        "invalid spec:\n  trainable.sampling_grid.0: Input should be a valid dictionary"
    assert error({"trainable": {"steps": 0, "lr": -1}}) == ("invalid spec:\n  trainable.steps: Input should be greater"
                                                            " than or equal to 1; trainable.lr: Input should be greater than 0")


def test_a_spec_that_is_not_a_mapping_names_its_type():
    with pytest.raises(SpecError) as info:
        parse_spec(["not", "a", "mapping"])
    assert str(info.value) == "a spec must be a YAML mapping, got list"
