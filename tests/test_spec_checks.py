"""The spec checks of :mod:`gensweep.platform.spec.checks` that the other spec tests leave loose:
a space given as a YAML file (read as strictly as the spec, under either extension) and the full
text of the seed-axis errors (no Ray)."""
from __future__ import annotations

import pytest

from gensweep.platform.spec import SpecError, parse_spec
from gensweep.platform.spec.checks import check_seed_axis


def error(spec: dict) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "t", **spec})
    return str(info.value)


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_a_space_file_gives_only_its_params(tmp_path, suffix):
    path = tmp_path / f"space{suffix}"
    path.write_text("params:\n  lr: [0.001, 0.002]\n  width: [8]\nnote: ignored beside params\n")
    space = parse_spec({"name": "t", "space": str(path)}).space
    assert list(space.params) == ["lr", "width"]
    assert space.params["lr"].choices == [0.001, 0.002] and space.params["width"].choices == [8]


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_a_space_file_is_read_as_strictly_as_the_spec(tmp_path, suffix):
    path = tmp_path / f"dup{suffix}"
    path.write_text("params:\n  lr: [0.1]\n  lr: [0.2]\n")
    assert error({"space": str(path)}) == (
        f"invalid spec:\n  space: space file {path}: params.lr: key given twice (lines 2 and 3); each key may appear once")


def test_a_missing_space_file_is_named_as_one():
    path = "/nonexistent/gensweep/space.yaml"
    assert error({"space": path}) == (
        f"invalid spec:\n  space: cannot read space file {path}: No such file or directory")


@pytest.mark.parametrize("text", ["lr: [0.1]\n", "- params\n", "params\n"])
def test_a_space_file_without_a_params_mapping_is_refused(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    assert error({"space": str(path)}) == (
        f"invalid spec:\n  space: space file {path} must be a mapping with a 'params' key")


def test_the_seed_axis_errors_in_full():
    assert error({"space": {"seed": [0, 1]}}) == (
        "invalid spec:\n  space.seed: the seed is the replicate axis, not a searched parameter; list the seeds"
        " in search.seeds")
    assert error({"trainable": {"seed": 3}, "search": {"seeds": [0, 1]}}) == (
        "invalid spec:\n  trainable.seed: fixed, but search.seeds lists the replicate seeds; set one of them")


def test_a_family_without_a_seed_setting_cannot_replicate():
    spec = parse_spec({"name": "t"})  # every registered family has a seed: the check is called with a config without one
    assert check_seed_axis(spec, {"width": None, "seed": None}) is spec
    with pytest.raises(ValueError) as info:
        check_seed_axis(spec, {"width": None, "steps": None})
    assert str(info.value) == "family: 'gan' has no 'seed' setting to replicate over"
