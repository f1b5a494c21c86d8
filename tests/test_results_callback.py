"""ResultsCallback inside a real (tiny) Ray Tune run, plus its buffering on its own."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from gensweep.platform.results import ResultsStore
from gensweep.platform.results.callback import ResultsCallback
from tests.results_support import store_uri  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _trainable(config):
    from ray import tune

    mode = config["mode"]
    n_steps = 8 if mode == "long" else 3
    for i in range(n_steps):
        metrics = {"fid": config["base"] - i, "d_loss": 0.5 / (i + 1), "g_loss": 1.0 + i,
                   "backbone": "inception", "eval_n": 64, "step": (i + 1) * 10}
        if mode == "diverge" and i == 1:
            tune.report({**metrics, "diverged": True, "reason": "g_loss is NaN"})
            return
        if mode == "ok":
            metrics["artifact/sample_grid"] = f"s3://bucket/grids/{config['base']}-{i}.png"
        if mode == "ok" and i == n_steps - 1:
            import tempfile

            from ray.tune import Checkpoint

            with tempfile.TemporaryDirectory() as tmp:
                with open(os.path.join(tmp, "state.txt"), "w") as handle:
                    handle.write("weights")
                tune.report(metrics, checkpoint=Checkpoint.from_directory(tmp))
            continue
        tune.report(metrics)
        if mode == "raise" and i == 0:
            raise ValueError("generator exploded at step 10")


def _stop_long_trials():
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

    class StopLong(FIFOScheduler):
        """Stops the 'long' trial early, as ASHA/PBT would."""

        def on_trial_result(self, tune_controller, trial, result):
            if trial.config["mode"] == "long" and result["training_iteration"] >= 2:
                return TrialScheduler.STOP
            return TrialScheduler.CONTINUE

    return StopLong()


def test_tune_run_writes_metrics_and_trial_statuses(ray_cluster, tmp_path):
    """Local store only: the callback writes through the same ResultsStore whose S3
    backend the contract tests cover (and test_atexit_flush_writes_buffered_rows[s3])."""
    from ray import tune

    store_uri = str(tmp_path / "store")

    callback = ResultsCallback(
        store_uri, "tune-smoke", flush_every=4, flush_interval_s=60,
        spec={"model": "dcgan", "search": "grid"}, seed=7, git_commit_sha="deadbeef",
    )
    callback = pickle.loads(pickle.dumps(callback))  # it travels with the Tuner
    tuner = tune.Tuner(
        _trainable,
        param_space={"mode": tune.grid_search(["ok", "raise", "diverge", "long"]),
                     "base": 50.0, "opt": {"lr": 2e-4, "betas": [0.5, 0.999]}},
        tune_config=tune.TuneConfig(scheduler=_stop_long_trials(), max_concurrent_trials=2),
        run_config=tune.RunConfig(name="tune-smoke", storage_path=str(tmp_path / "ray"),
                                  callbacks=[callback], verbose=0),
    )
    grid = tuner.fit()
    assert len(grid) == 4

    store = ResultsStore.open(store_uri)
    assert store.experiments() == ["tune-smoke"]
    trials = store.read("trials", "tune-smoke")
    metrics = store.read("metrics", "tune-smoke")
    assert len(trials) == 4
    mode_of = dict(zip(trials["trial_id"], trials["config/mode"]))
    status = {mode_of[t]: s for t, s in zip(trials["trial_id"], trials["status"])}
    assert status == {"ok": "completed", "raise": "failed", "diverge": "diverged", "long": "stopped"}
    reason = {mode_of[t]: r for t, r in zip(trials["trial_id"], trials["reason"])}
    assert "ValueError" in reason["raise"] and "generator exploded at step 10" in reason["raise"]
    assert reason["diverge"] == "g_loss is NaN"
    assert (trials["wall_time_s"] > 0).all()
    assert (trials["cpu_hours"] > 0).all() and (trials["gpu_hours"] == 0).all()
    assert trials["config"].str.contains('"lr": 0.0002').all()
    assert (trials["config/opt/lr"] == 2e-4).all()

    steps = {m: sorted(metrics.loc[metrics["trial_id"] == t, "step"]) for t, m in mode_of.items()}
    assert steps == {"ok": [10, 20, 30], "raise": [10], "diverge": [10, 20], "long": [10, 20]}
    assert metrics["row_key"].is_unique
    assert {"fid", "d_loss", "g_loss", "backbone", "eval_n", "training_iteration", "time_total_s",
            "reported_at", "config/mode", "config/base", "config/opt/lr", "config/opt/betas"} <= set(metrics)
    assert (metrics["backbone"] == "inception").all()
    ok = metrics[metrics["trial_id"].map(mode_of) == "ok"].sort_values("step")
    assert ok["fid"].tolist() == [50.0, 49.0, 48.0]
    assert ok["config/opt/betas"].iloc[0] == "[0.5, 0.999]"

    assert not any(c.startswith("artifact/") for c in metrics.columns)
    arts = store.read("artifacts", "tune-smoke").sort_values(["kind", "step"])
    ok_id = next(t for t, m in mode_of.items() if m == "ok")
    assert (arts["trial_id"] == ok_id).all()
    grids = arts[arts["kind"] == "sample_grid"]
    assert grids["step"].tolist() == [10, 20, 30]
    assert grids["uri"].tolist() == [f"s3://bucket/grids/50.0-{i}.png" for i in range(3)]
    ckpts = arts[arts["kind"] == "checkpoint"]
    assert len(ckpts) == 1 and ckpts["step"].item() == 30
    assert os.path.exists(os.path.join(ckpts["uri"].item(), "state.txt"))

    exp = store.read("experiments")
    assert len(exp) == 1
    row = exp.iloc[0]
    assert row["status"] == "completed" and row["n_trials"] == 4 and row["n_errored"] == 1
    assert row["seed"] == 7 and row["git_commit"] == "deadbeef"
    assert '"model": "dcgan"' in row["spec"] and '"ray": "2.60' in row["versions"]
    assert row["started_at"] <= row["ended_at"]


def _fake_trial(trial_id, config):
    return SimpleNamespace(trial_id=trial_id, config=config, placement_group_factory=None,
                           path=None, status="RUNNING")


def test_buffering_flush_policy_and_retry_idempotence(tmp_path):
    uri = str(tmp_path / "store")
    cb = ResultsCallback(uri, "unit", flush_every=3, flush_interval_s=3600, record_experiment=False,
                         flatten_config={"lr": "opt/lr", "arch": lambda c: c["model"]["name"]})
    trial = _fake_trial("t0", {"opt": {"lr": 0.1}, "model": {"name": "dcgan"}})
    store = ResultsStore.open(uri)
    cb.on_trial_start(0, [trial], trial)
    cb.on_trial_result(0, [trial], trial, {"training_iteration": 1, "fid": 9.0, "nested": {"is": 2.0},
                                           "done": False, "trial_id": "t0", "config": {}})
    assert store.read("metrics").empty  # 2 rows buffered (< flush_every)
    cb.on_trial_result(0, [trial], trial, {"training_iteration": 2, "fid": 8.0, "experiment": "x"})
    df = store.read("metrics")
    assert len(df) == 2 and cb._n_buffered == 0
    assert df["config/lr"].tolist() == [0.1, 0.1] and df["config/arch"].tolist() == ["dcgan"] * 2
    assert df.loc[df["step"] == 1, "nested/is"].item() == 2.0
    assert "result/experiment" in df.columns  # a clashing metric name is kept, renamed
    assert cb.flush() == 0 and cb.flush() == 0  # repeated flushes are harmless

    # a failing store keeps rows buffered; the next flush re-sends them without duplicates
    cb.on_trial_result(0, [trial], trial, {"training_iteration": 3, "fid": 7.0})
    real_write = cb.store.write
    calls = []

    def failing_write(table, rows, **kw):
        calls.append(table)
        real_write(table, rows, **kw)  # the write lands, but the caller sees an error
        raise OSError("connection lost after upload")

    cb.store.write = failing_write
    with pytest.raises(OSError):
        cb.flush()
    assert cb._n_buffered == 1
    cb.store.write = real_write
    assert cb.flush() == 1
    df = store.read("metrics")
    assert sorted(df["step"]) == [1, 2, 3] and df["row_key"].is_unique

    cb.on_trial_complete(0, [trial], trial)
    # a trial's end forces no write (the row is buffered, and journaled when there is a journal)
    assert store.read("trials")["status"].tolist() == ["running"] and cb._n_buffered == 1
    cb.on_experiment_end([trial])
    trials = store.read("trials")
    assert trials["status"].tolist() == ["completed"] and trials["last_step"].tolist() == [3]
    assert all(len(store.part_files(t, "unit")) <= 1 for t in ("trials", "metrics"))  # compacted at the end


def test_time_based_flush_on_step_end(tmp_path):
    uri = str(tmp_path / "store")
    cb = ResultsCallback(uri, "unit", flush_every=1000, flush_interval_s=0.0, record_experiment=False)
    trial = _fake_trial("t1", {"a": 1})
    cb._buffer("metrics", cb._metrics_row(trial, {"training_iteration": 1, "fid": 1.0}))
    cb.on_step_end(1, [trial])
    assert len(ResultsStore.open(uri).read("metrics")) == 1


def test_atexit_flush_writes_buffered_rows(tmp_path, store_uri):
    script = textwrap.dedent(f"""
        from types import SimpleNamespace
        from gensweep.platform.results.callback import ResultsCallback
        cb = ResultsCallback({store_uri!r}, "atexit", flush_every=10**6, flush_interval_s=10**6,
                             record_experiment=False)
        trial = SimpleNamespace(trial_id="t", config={{"seed": 3}}, placement_group_factory=None, path=None)
        for i in range(5):
            cb.on_trial_result(i, [trial], trial, {{"training_iteration": i + 1, "fid": 10.0 - i}})
        print("buffered", cb._n_buffered)
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True,
                         timeout=120, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert "buffered 5" in out.stdout
    df = ResultsStore.open(store_uri).read("metrics", "atexit")
    assert sorted(df["step"]) == [1, 2, 3, 4, 5]
    assert (df["config/seed"] == 3).all()


@pytest.mark.parametrize("error,status,reason,last_step", [
    ("diverged", "diverged", "diverged at step 3: G loss is nan", 3),
    ("other", "failed", "ValueError: bad batch", 20),
])
def test_a_trial_that_raised_diverged_is_recorded_as_diverged(tmp_path, error, status, reason, last_step):
    """Divergence ends a trial as an error (so the searcher records a failure), yet the store
    says ``diverged``, with its step and reason, not ``failed``."""
    import cloudpickle

    from gensweep.trainables.errors import Diverged

    exc = Diverged(3, "G loss is nan") if error == "diverged" else ValueError("bad batch")
    pickled = tmp_path / "error.pkl"
    pickled.write_bytes(cloudpickle.dumps(exc))
    trial = SimpleNamespace(trial_id="t1", config={"lr": 1.0}, path=None, pickled_error_file=str(pickled))
    cb = ResultsCallback(str(tmp_path / "store"), "exp", record_experiment=False)
    cb.on_trial_start(0, [], trial)
    cb.on_trial_result(0, [], trial, {"step": 20, "fid": 50.0, "training_iteration": 1})
    cb.on_trial_error(0, [], trial)
    cb.flush()  # a trial's end is buffered (batched writes); the next flush writes it
    row = ResultsStore.open(str(tmp_path / "store")).read("trials", "exp").iloc[0]
    assert (row["status"], row["reason"], row["last_step"]) == (status, reason, last_step)
