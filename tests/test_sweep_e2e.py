"""The spine end to end on real Ray: Tune + OptunaSearch -> trial (inline, or a TorchTrainer) -> Ray Data -> FID -> store."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from gensweep.cli import main as cli_main
from gensweep.platform.results import ResultsStore
from gensweep.platform.sweep.runner import run_sweep
from gensweep.platform.sweep.setup import setup_sweep
from gensweep.platform.spec import parse_spec
from gensweep.platform.storage.layout import RootLayout
from gensweep.platform.trial.launch import build_trainer
from gensweep.platform.trial.checkpoints import STATE_FILE, load_state_file
from tests.ray_support import ray_local  # noqa: F401

pytestmark = pytest.mark.slow

TINY = {
    "trainable": {"steps": 30, "eval_every": 15, "width": 8, "z_dim": 16, "batch_size": 32, "num_classes": 0},
    "space": {"loss": ["ns", "hinge"], "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3}},
    "search": {"algorithm": "optuna-tpe", "num_trials": 2, "max_concurrent": 2},
    "scheduler": {"kind": "asha", "grace_period": 2},
    "eval": {"num_samples": 200, "ref_samples": 1000, "metrics": ["fid", "kid"]},
}


def tiny_spec(root: Path, name: str, **overrides):
    return parse_spec({"name": name, **TINY, **overrides, "results": {"root": str(root)}})


def test_two_trial_sweep_writes_the_store(tmp_path, ray_local, capsys):
    # evaluation ladder: the first evaluation (step 15) scores 100 fake samples, later ones the full 200
    spec = tiny_spec(tmp_path, "e2e", eval={**TINY["eval"], "ladder": [{"until_step": 15, "num_samples": 100}]})
    outcome = run_sweep(spec, experiment="e2e-run")
    assert outcome.num_errors == 0

    # the console: gensweep's progress view only (no ANSI codes, output is not a terminal);
    # Ray's, Tune's and the workers' messages in the experiment's console.log
    console = capsys.readouterr()
    log_path = RootLayout.of(tmp_path).console_log("e2e-run")
    assert f"messages go to {log_path}" in console.out
    assert "trials 2/2 done, 0 running, 0 errored | best fid " in console.out
    assert "\x1b[" not in console.out + console.err
    for chatter in ("Checkpoint successfully created", "Trial status", "Token authentication", "(run_trial pid="):
        assert chatter not in console.out + console.err, chatter
    table = console.out.split("[gensweep] sweep finished\n")[1].splitlines()
    assert table[1].split() == ["trial", "status", "step", "fid", "kid", "best", "fid"]
    assert {row.split()[0] for row in table[2:4]} == set(outcome.leaderboard["trial_id"])
    log = Path(log_path).read_text()
    assert "Checkpoint successfully created" in log and "\x1b[" not in log

    store = ResultsStore.open(str(tmp_path))
    metrics = store.read("metrics", "e2e-run")
    assert set(metrics["trial_id"]) == set(outcome.leaderboard["trial_id"]) and metrics["trial_id"].nunique() == 2
    for _, rows in metrics.groupby("trial_id"):
        assert sorted(rows["step"]) == [15, 30]
        assert all(math.isfinite(v) and v > 0 for v in rows["fid"])
        assert set(rows["backbone"]) == {"mnist-lenet"}
        assert rows.sort_values("step")["eval_n"].tolist() == [100, 200] and rows["eval_protocol"].nunique() == 1
        assert rows["config/loss"].iloc[0] in ("ns", "hinge") and 1e-4 <= rows["config/lr"].iloc[0] <= 1e-3
        for grid in rows["sample_grid"]:
            assert Path(grid).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trials = store.read("trials", "e2e-run")
    assert sorted(trials["status"]) == ["completed", "completed"]
    assert trials["seed"].notna().all() and trials["config_id"].nunique() == 2  # TPE trials carry their seed

    # the resolved config is saved with each trial
    for trial_id in metrics["trial_id"].unique():
        saved = yaml.safe_load((Path(RootLayout.of(tmp_path).trial_artifacts("e2e-run", trial_id)) / "resolved_config.yaml").read_text())
        assert saved["config"]["steps"] == 30 and saved["eval"]["backbone"] == "mnist-lenet"
        assert saved["eval"]["ladder"] == [{"until_step": 15, "num_samples": 100}]
        # launcher auto, one worker: the loop ran in the Tune trial actor, its checkpoints are Tune's
        assert saved["resources"]["launcher"] == "auto" and saved["resources"]["trial_launcher"] == "inline"
        assert not (tmp_path / "ray" / f"e2e-run-{trial_id}").exists()
    assert list((tmp_path / "ray" / "e2e-run").glob("*/checkpoint_*/state.pt"))

    # the leaderboard again, from the store alone
    capsys.readouterr()
    assert cli_main(["results", "--root", str(tmp_path), "show", "e2e-run"]) == 0
    out = capsys.readouterr().out
    assert "mnist-lenet" in out and all(t in out for t in metrics["trial_id"].unique())

    # TensorBoard event files per trial (Tune's TBX logger)
    from gensweep.platform.sweep.dashboards import tensorboard_event_files, tensorboard_logdir

    assert tensorboard_event_files(tensorboard_logdir(str(tmp_path), "e2e-run"))

    # reference statistics were computed once, by the driver, and are reused by the next sweep
    setup = setup_sweep(spec, "e2e-again")
    assert setup.plan.eval_runtime.computed is False


def test_random_search_runs_one_config_once_per_seed(tmp_path, ray_local):
    import optuna

    spec = tiny_spec(tmp_path, "reps", search={"algorithm": "random", "num_trials": 1, "seeds": [0, 1],
                                               "max_concurrent": 2},
                     scheduler={"kind": "none"}, trainable={**TINY["trainable"], "steps": 15})
    outcome = run_sweep(spec, experiment="reps-run")
    assert outcome.num_errors == 0
    store = ResultsStore.open(str(tmp_path))
    trials = store.read("trials", "reps-run").drop_duplicates("trial_id", keep="last")
    assert sorted(trials["seed"]) == [0, 1] and trials["config_id"].nunique() == 1
    metrics = store.read("metrics", "reps-run")
    assert set(metrics["config_id"]) == set(trials["config_id"]) and metrics["config/lr"].nunique() == 1
    for _, trial in trials.iterrows():  # each replicate trained with its own seed
        saved = yaml.safe_load((Path(RootLayout.of(tmp_path).trial_artifacts("reps-run", trial["trial_id"])) / "resolved_config.yaml")
                               .read_text())
        assert saved["config"]["seed"] == trial["seed"]
    # the study holds one trial for the config, valued by the mean of its replicates' FID
    study = optuna.load_study(study_name="reps-run", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert len(study.trials) == 1 and study.trials[0].value == pytest.approx(metrics["fid"].mean())


def test_train_launcher_runs_the_same_loop_in_a_torch_trainer(tmp_path, ray_local):
    spec = tiny_spec(tmp_path, "train", resources={"launcher": "train"}, scheduler={"kind": "none"})
    outcome = run_sweep(spec, experiment="train-run")
    assert outcome.num_errors == 0
    metrics = ResultsStore.open(str(tmp_path)).read("metrics", "train-run")
    assert metrics["trial_id"].nunique() == 2
    for trial_id, rows in metrics.groupby("trial_id"):
        assert sorted(rows["step"]) == [15, 30] and all(math.isfinite(v) for v in rows["fid"])
        assert (rows["loop_time_s"] > 0).all()
        saved = yaml.safe_load((Path(RootLayout.of(tmp_path).trial_artifacts("train-run", trial_id)) / "resolved_config.yaml").read_text())
        assert saved["resources"]["trial_launcher"] == "train"
        # the trial's own Train run (named after it) holds its checkpoints
        assert list((tmp_path / "ray" / f"train-run-{trial_id}").glob("checkpoint_*/state.pt"))


def test_diffusion_sweep_end_to_end(tmp_path, ray_local):
    spec = parse_spec({
        "name": "diff", "family": "diffusion",
        "trainable": {"steps": 20, "eval_every": 10, "width": 8, "channel_mult": [1, 2], "attn_res": 0,
                      "batch_size": 32, "num_classes": 0, "eval_samplers": ["ddim:5", "euler:4"]},
        "space": {"schedule": ["linear", "flow"]},
        "search": {"algorithm": "grid", "seeds": [0]}, "scheduler": {"kind": "none"},
        "eval": {"num_samples": 200, "ref_samples": 1000}, "results": {"root": str(tmp_path)},
    })
    outcome = run_sweep(spec, experiment="diff-run")
    assert outcome.num_errors == 0
    metrics = ResultsStore.open(str(tmp_path)).read("metrics", "diff-run")
    assert set(metrics["config/schedule"]) == {"linear", "flow"}
    for _, rows in metrics.groupby("trial_id"):
        assert sorted(rows["step"]) == [10, 20]
        # one FID per (sampler, steps) setting, the first also as plain `fid`
        assert rows["fid"].equals(rows["fid/ddim-5"]) and rows["fid/euler-4"].notna().all()


def test_trial_resumes_from_its_checkpoint(tmp_path, ray_local):
    spec = tiny_spec(tmp_path, "resume", space={}, trainable={**TINY["trainable"], "steps": 15, "reg": "r1"})
    setup = setup_sweep(spec, "resume-run")
    first = build_trainer(spec, setup.plan, "t0", spec.resolve_trial({}), setup.dataset).fit()
    assert first.metrics["step"] == 15
    with first.checkpoint.as_directory() as d:
        saved = load_state_file(str(Path(d) / STATE_FILE))
    assert saved["step"] == 15

    # same trial (same run name), larger budget: it must continue from step 15
    longer = spec.resolve_trial({}) | {"steps": 30}
    second = build_trainer(spec, setup.plan, "t0", longer, setup.dataset).fit()
    assert second.metrics["step"] == 30
    with second.checkpoint.as_directory() as d:
        resumed = load_state_file(str(Path(d) / STATE_FILE))
    assert resumed["step"] == 30
    # Adam's per-parameter step counts continue (one per step each: non-lazy R1 joins D's main phase)
    assert resumed["opt_G"]["state"][0]["step"].item() == saved["opt_G"]["state"][0]["step"].item() + 15
    assert resumed["opt_D"]["state"][0]["step"].item() == saved["opt_D"]["state"][0]["step"].item() + 15
    first_key = next(iter(saved["G"]))
    assert not torch.equal(resumed["G"][first_key], saved["G"][first_key])

    # `gensweep eval` re-scores the Train checkpoint and appends a marked row to the sweep's store
    assert cli_main(["eval", second.checkpoint.path, "--num-samples", "100"]) == 0
    stored = ResultsStore.open(str(tmp_path)).read("metrics", "resume-run")
    # these trainers ran without Tune, so no results callback wrote their reports; the resumed run
    # backfilled the report saved with the checkpoint it started from (step 15), and only that
    training = stored[stored["reeval"].ne(True)]
    assert training["step"].tolist() == [15] and training["fid"].iloc[0] == pytest.approx(first.metrics["fid"])
    rows = stored[stored["reeval"].eq(True)]
    assert len(rows) == 1 and rows["trial_id"].tolist() == ["t0"]
    assert rows["step"].tolist() == [30] and rows["eval_n"].tolist() == [100] and rows["backbone"].tolist() == ["mnist-lenet"]
    assert rows["checkpoint"].tolist() == [second.checkpoint.path] and math.isfinite(rows["fid"].iloc[0])


def test_checkpoint_errors_are_clear(tmp_path):
    bad = tmp_path / STATE_FILE
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match="cannot be loaded"):
        load_state_file(str(bad))
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(Exception, match="not a gensweep trial state"):
        load_state_file(str(bad))
