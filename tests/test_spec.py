"""The spec rejects bad input before Ray starts, naming the field."""
from __future__ import annotations

import pytest
import yaml

from gensweep.platform.spec import SpecError, default_spec, load_spec, parse_spec

BASE = {"name": "t"}

# (spec overrides, text that must appear in the error)
MALFORMED = [
    ({"bogus": 1}, "bogus: unknown field"),
    ({"family": "vae"}, "family: unknown trainable family 'vae'; allowed:"),
    ({"name": "has spaces"}, "name:"),
    ({"trainable": {"loss": "foo"}}, "trainable.loss: unknown adversarial loss 'foo'; allowed:"),
    ({"trainable": {"steps": 0}}, "trainable.steps:"),
    ({"trainable": {"widht": 32}}, "trainable.widht: unknown setting for family 'gan'"),
    ({"space": {"loss": ["ns", "nope"]}}, "space.loss: level 'nope': unknown adversarial loss"),
    ({"space": {"lr": {"type": "loguniform", "low": 0, "high": 1}}}, "loguniform needs low > 0"),
    ({"space": {"lr": {"type": "uniform", "low": 0.5, "high": 0.1}}}, "low (0.5) must be < high (0.1)"),
    ({"space": {"lr": {"type": "uniform", "low": 0.1, "high": 2.0}}}, "space.lr: level 2.0"),
    ({"space": {"lr": {"type": "normal", "low": 0.1, "high": 0.2}}}, "space.params.lr"),
    ({"space": {"reg_weight": {"type": "uniform", "low": 0.1, "high": 1, "when": {"reg": ["r1"]}}}},
     "names 'reg', which is not a parameter defined before it"),
    ({"space": {"reg": ["r1", "none"], "reg_weight": {"type": "uniform", "low": 0.1, "high": 1, "when": {"reg": ["gp"]}}}},
     "lists ['gp'], not among reg's choices"),
    ({"space": {"bogus_param": [1, 2]}}, "space.bogus_param: unknown parameter"),
    ({"trainable": {"lr": 0.1}, "space": {"lr": {"type": "uniform", "low": 0.1, "high": 0.2}}}, "space.lr: also fixed"),
    ({"search": {"algorithm": "bayes"}}, "search.algorithm: must be one of"),
    ({"search": {"num_trials": 0}}, "search.num_trials:"),
    ({"search": {"algorithm": "grid"}, "space": {"lr": {"type": "uniform", "low": 0.1, "high": 0.2}}},
     "search.algorithm: grid: a grid needs categorical parameters"),
    ({"search": {"algorithm": "grid"}, "space": {"loss": ["ns"]}}, "scheduler.kind: 'asha' stops cells early"),
    ({"scheduler": {"kind": "pbt2"}}, "scheduler.kind: must be one of"),
    ({"scheduler": {"reduction_factor": 1}}, "scheduler.reduction_factor:"),
    ({"resources": {"workers": 0}}, "resources.workers:"),
    ({"resources": {"workers": 2, "launcher": "inline"}}, "resources: launcher: 'inline' runs one worker"),
    ({"resources": {"cpus_per_worker": -1}}, "resources.cpus_per_worker:"),
    ({"data": {"channels": 2}}, "data.channels:"),
    ({"data": {"fraction": 1.5}}, "data.fraction:"),
    ({"eval": {"metrics": ["fid", "lpips"]}}, "eval.metrics.1:"),
    ({"eval": {"num_samples": 1}}, "eval.num_samples:"),
    ({"data": {"resolution": 32, "bogus": True}}, "data.bogus: unknown field"),
]


@pytest.mark.parametrize("override,expected", MALFORMED, ids=[e for _, e in MALFORMED])
def test_malformed_spec_names_the_field(override, expected):
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, **override})
    assert expected in str(info.value)


def test_spec_must_be_a_mapping():
    with pytest.raises(SpecError, match="must be a YAML mapping"):
        parse_spec(["not", "a", "mapping"])


def test_yaml_errors_and_missing_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
    with pytest.raises(SpecError, match="cannot read spec"):
        load_spec(tmp_path / "missing.yaml")


def test_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(evil)


def test_default_spec_resolves_and_roundtrips(tmp_path):
    spec = default_spec()
    assert spec.search.num_trials >= 6 and spec.search.max_concurrent is None  # what the cluster holds
    assert {"loss", "reg", "lr"} <= set(spec.space.names())
    path = tmp_path / "spec.yaml"
    path.write_text(spec.to_yaml())
    assert load_spec(path) == spec


@pytest.mark.parametrize("resources, launcher", [
    ({}, "inline"),  # the default is auto, and one worker
    ({"workers": 2}, "train"),
    ({"launcher": "train"}, "train"),
    ({"launcher": "inline"}, "inline"),
    ({"launcher": "train", "workers": 3}, "train"),
])
def test_launcher_auto_resolves_by_worker_count(resources, launcher, tmp_path, capsys):
    from gensweep.cli import main as cli_main

    spec = parse_spec({**BASE, "resources": resources})
    assert spec.resources.trial_launcher == launcher
    assert spec.resources.inline == (launcher == "inline")
    path = tmp_path / "s.yaml"
    path.write_text(spec.to_yaml())
    assert load_spec(path).resources.launcher == resources.get("launcher", "auto")  # saved as given, not resolved
    assert cli_main(["run", str(path), "--dry-run", "--num-cpus", "8"]) == 0  # the dry run's preflight: 3 workers fit
    out = capsys.readouterr().out
    assert f"# each trial runs with launcher {launcher} (resources.launcher: {resources.get('launcher', 'auto')}," in out
    assert yaml.safe_load(out) == yaml.safe_load(spec.to_yaml())  # still one YAML document


def test_resolve_trial_merges_fixed_implied_and_sampled():
    spec = parse_spec({"name": "t", "seed": 7, "data": {"resolution": 28}, "trainable": {"width": 16},
                       "space": {"loss": ["hinge"]}})
    cfg = spec.resolve_trial({"loss": "hinge"})
    assert cfg["resolution"] == 28 and cfg["seed"] == 7 and cfg["width"] == 16 and cfg["loss"] == "hinge"
    assert cfg["lr"] == 2e-4  # the family default fills the rest


def test_shipped_space_by_name_and_yaml_shorthand(tmp_path):
    spec = parse_spec({"name": "t", "space": "gan-quick"})
    assert "reg_weight" in spec.space.names()
    text = yaml.safe_dump({"name": "t", "space": {"loss": ["ns", "hinge"]}})
    (tmp_path / "s.yaml").write_text(text)
    assert load_spec(tmp_path / "s.yaml").space.params["loss"].choices == ["ns", "hinge"]


def test_grid_drops_cells_that_break_a_rule_and_says_why():
    spec = parse_spec({"name": "t", "search": {"algorithm": "grid"}, "scheduler": {"kind": "none"},
                       "space": {"loss": ["ns", "wgan"], "reg": ["none", "gp"]}})
    keep, dropped = spec.feasible_cells(spec.space.grid())
    assert {(c["loss"], c["reg"]) for c in keep} == {("ns", "none"), ("ns", "gp"), ("wgan", "gp")}
    assert len(dropped) == 1 and "wgan" in dropped[0] and "reg" in dropped[0]


def test_infeasible_sample_is_refused_with_the_rule():
    from gensweep.platform.spec import InfeasibleConfig

    spec = parse_spec({"name": "t", "space": {"loss": ["ns", "wgan"]}})
    with pytest.raises(InfeasibleConfig, match="wgan"):
        spec.resolve_trial({"loss": "wgan"})


def test_every_shipped_space_parses_into_a_spec():
    from gensweep import search_spaces

    for name in search_spaces.available():
        family = "diffusion" if name.startswith("diffusion") else "gan"
        extra = {"trainable": {"num_classes": 10}} if "conditioning" in name else {}
        spec = parse_spec({"name": "t", "family": family, "space": name, **extra})
        assert spec.space.names(), name
