"""ResultsCallback's own logic, without Ray: its hooks called directly with stand-in trials and a
local store (options, lazy store, pickling, exit hook, flush deadlines and pauses, the running
summary row, compaction, and the rows each hook writes)."""
from __future__ import annotations

import datetime as dt
import logging
import pickle
import time
from types import SimpleNamespace

import pandas as pd
import pytest

from gensweep.platform.results import ResultsStore
from gensweep.platform.results import callback as callback_module
from gensweep.platform.results.callback import ResultsCallback
from tests.test_results_store_rules import tokyo_clock  # noqa: F401 - fixture

UTC = dt.timezone.utc


@pytest.fixture(autouse=True)
def exit_hooks(monkeypatch):
    """The exit hooks a callback registers, collected here instead of in the test process."""
    hooks = []
    monkeypatch.setattr(callback_module, "register_exit_hook", hooks.append)
    return hooks


@pytest.fixture
def uri(tmp_path):
    return str(tmp_path / "store")


def make_trial(trial_id="t0", config=None, **extra):
    fields = dict(trial_id=trial_id, config={"lr": 0.1} if config is None else config,
                  placement_group_factory=None, path=None, status="RUNNING")
    fields.update(extra)
    return SimpleNamespace(**fields)


def quiet(uri, experiment="exp", **options):
    """A callback that writes only when flushed by hand, with no experiments rows."""
    options = {"flush_every": 10**6, "flush_interval_s": 10**6, "record_experiment": False, **options}
    return ResultsCallback(uri, experiment, **options)


def record_deadlines(cb):
    """Every store write of ``cb`` records the retry deadline it ran under."""
    seen = []
    real_write = cb.store.write

    def write(table, rows, **kw):
        seen.append(cb.store.retry.deadline_s)
        return real_write(table, rows, **kw)

    cb.store.write = write
    return seen


def messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == callback_module.__name__]


def failing_writes(cb):
    def write(table, rows, **kw):
        raise OSError("store unreachable")

    cb.store.write = write


# ------------------------------------------------------------------ options
def test_options_defaults_and_coercions(tmp_path):
    with pytest.raises(ValueError, match="^ResultsCallback needs an experiment name$"):
        ResultsCallback(str(tmp_path), "")
    cb = ResultsCallback(tmp_path / "store", "exp")
    assert cb.uri == str(tmp_path / "store") and isinstance(cb.uri, str)
    assert (cb.flush_every, cb.flush_interval_s, cb.deadline_s, cb.in_loop_deadline_s) == (200, 15.0, 120.0, 10.0)
    assert cb.compact_over == 20 and cb.summary_metrics == ("fid",)
    assert cb.record_experiment is True and cb.budget_iterations is None
    assert (cb.flatten_config, cb.spec, cb.seed, cb.git_commit_sha) == (None, None, None, None)
    assert (cb.versions, cb.trial_resources, cb.journal) == (None, None, None)
    assert cb.sampling_settings == {} and cb.storage == {}
    assert cb._n_buffered == 0 and cb._pause_until == 0.0 and cb._atexit_registered is False

    versions = {"torch": "2.9"}
    cb = ResultsCallback(str(tmp_path), "exp", flush_every=0, compact_over=0, flush_interval_s=2,
                         deadline_s=3, in_loop_deadline_s=1, versions=versions, trial_resources={},
                         journal=tmp_path / "journal", summary_metrics=["fid", "kid"], storage={"fsync": False})
    assert cb.flush_every == 1 and cb.compact_over == 1  # at least one row / one part
    assert isinstance(cb.flush_interval_s, float) and isinstance(cb.deadline_s, float)
    assert isinstance(cb.in_loop_deadline_s, float)
    assert cb.versions == versions and cb.versions is not versions
    assert cb.trial_resources is None  # no resources given: Tune's reservation is used
    assert cb.journal == str(tmp_path / "journal") and cb.summary_metrics == ("fid", "kid")
    assert ResultsCallback(str(tmp_path), "exp", flush_every="7").flush_every == 7
    assert ResultsCallback(str(tmp_path), "exp", trial_resources={"GPU": 1}).trial_resources == {"GPU": 1.0}


def test_the_store_opens_once_with_the_callbacks_deadline_and_storage_options(uri):
    cb = ResultsCallback(uri, "exp", deadline_s=7.5, storage={"fsync": False})
    store = cb.store
    assert isinstance(store, ResultsStore) and store.uri == uri
    assert store.retry.deadline_s == 7.5 and store.backend.fsync is False
    assert cb.store is store


def test_pickling_keeps_the_rows_and_drops_the_store_and_the_exit_hook(uri, exit_hooks):
    cb = quiet(uri)
    trial = make_trial()
    cb.store  # opened
    cb.on_trial_start(0, [trial], trial)
    assert cb._atexit_registered and len(exit_hooks) == 1
    state = cb.__getstate__()
    assert "_store" not in state and cb._store is not None  # the live callback keeps its store
    clone = pickle.loads(pickle.dumps(cb))
    assert clone._store is None and clone._atexit_registered is False
    assert clone._n_buffered == 1
    clone.on_trial_result(0, [trial], trial, {"training_iteration": 1, "fid": 3.0})
    assert len(exit_hooks) == 2  # the clone registers its own hook
    assert clone.flush() == 2
    assert ResultsStore.open(uri).read("metrics", "exp")["fid"].tolist() == [3.0]


# ---------------------------------------------------------------- exit hook
def test_the_exit_hook_is_registered_once_and_writes_what_is_buffered(uri, exit_hooks):
    cb = quiet(uri)
    trial = make_trial()
    for i in range(3):
        cb.on_trial_result(0, [trial], trial, {"training_iteration": i + 1, "fid": 9.0 - i})
    assert len(exit_hooks) == 1
    exit_hooks[0]()
    assert sorted(ResultsStore.open(uri).read("metrics", "exp")["step"]) == [1, 2, 3]
    assert cb._n_buffered == 0


def test_a_failing_exit_flush_is_logged_not_raised(uri, exit_hooks, caplog):
    cb = quiet(uri)
    trial = make_trial()
    cb.on_trial_start(0, [trial], trial)
    failing_writes(cb)
    with caplog.at_level(logging.ERROR, logger=callback_module.__name__):
        exit_hooks[0]()
    assert messages(caplog) == [f"ResultsCallback: final flush to {uri} failed"]
    assert cb._n_buffered == 1


# ------------------------------------------------------------------ flushing
def test_in_loop_flushes_give_up_sooner_and_the_final_flush_uses_the_whole_deadline(uri):
    cb = quiet(uri, deadline_s=120.0, in_loop_deadline_s=10.0)
    seen = record_deadlines(cb)
    trial = make_trial()
    cb.on_trial_start(0, [trial], trial)
    cb._safe_flush()
    cb.on_trial_complete(0, [trial], trial)
    cb._safe_flush(final=True)
    assert seen == [10.0, 120.0]
    assert cb.store.retry.deadline_s == 120.0  # the store's own policy is restored

    cb = quiet(uri, deadline_s=4.0, in_loop_deadline_s=10.0)
    seen = record_deadlines(cb)
    cb.on_trial_start(0, [trial], trial)
    cb._safe_flush()
    assert seen == [4.0]  # never longer than the callback's deadline


@pytest.mark.parametrize("interval,pause", [(0.0, 1.0), (30.0, 30.0)])
def test_a_failed_in_loop_flush_keeps_the_rows_and_pauses_the_next_ones(uri, caplog, interval, pause):
    cb = quiet(uri, flush_every=1, flush_interval_s=interval)
    failing_writes(cb)
    trial = make_trial()
    before = time.monotonic()
    with caplog.at_level(logging.ERROR, logger=callback_module.__name__):
        cb.on_trial_start(0, [trial], trial)  # one row: due, fails, no exception
    after = time.monotonic()
    assert cb._n_buffered == 1
    assert before + pause <= cb._pause_until <= after + pause
    assert messages(caplog) == [f"ResultsCallback: writing to {uri} failed; 1 rows kept for the next flush"]
    del cb.store.write  # the store is back; the pause holds the next due flush back
    cb.on_step_end(0, [trial])
    assert cb._n_buffered == 1
    cb._pause_until = 0.0
    cb.on_step_end(0, [trial])
    assert cb._n_buffered == 0


def test_rows_are_written_once_flush_every_rows_wait(uri):
    cb = quiet(uri, flush_every=3)
    trial = make_trial()
    cb.on_trial_start(0, [trial], trial)
    cb.on_trial_result(0, [trial], trial, {"training_iteration": 1, "fid": 2.0})
    assert cb._n_buffered == 2
    cb.on_trial_result(0, [trial], trial, {"training_iteration": 2, "fid": 1.0})
    assert cb._n_buffered == 0
    assert len(ResultsStore.open(uri).read("metrics", "exp")) == 2


def test_rows_older_than_the_interval_are_written_on_the_next_hook(uri):
    cb = quiet(uri, flush_interval_s=0.0)
    trial = make_trial()
    cb._buffer("metrics", cb._metrics_row(trial, {"training_iteration": 1, "fid": 1.0}))
    assert cb._n_buffered == 1
    cb.on_step_end(1, [trial])
    assert cb._n_buffered == 0 and len(ResultsStore.open(uri).read("metrics", "exp")) == 1


def test_flushing_replayed_journal_rows_registers_the_exit_hook(uri, tmp_path, exit_hooks):
    journal = tmp_path / "journal"
    trial = make_trial()
    crashed = quiet(uri, journal=journal)
    crashed.on_trial_result(0, [trial], trial, {"training_iteration": 1, "fid": 4.0})
    exit_hooks.clear()  # the first driver died before its exit hook ran

    resumed = quiet(uri, journal=journal)
    failing_writes(resumed)
    with pytest.raises(OSError):
        resumed.flush()
    assert resumed._n_buffered == 1 and len(exit_hooks) == 1  # the replayed row goes out at exit at the latest
    del resumed.store.write
    exit_hooks[0]()
    assert ResultsStore.open(uri).read("metrics", "exp")["fid"].tolist() == [4.0]


def test_a_flush_adds_the_running_summary_only_after_setup_and_when_it_changed(uri):
    cb = quiet(uri, record_experiment=True, git_commit_sha="abc", versions={"torch": "2.9"},
               summary_metrics=("fid", "kid"))
    trial = make_trial()
    cb.on_trial_result(0, [trial], trial, {"training_iteration": 1, "fid": 5.0, "kid": 0.5})
    assert cb.flush() == 1  # not set up yet: no experiments row
    store = ResultsStore.open(uri)
    assert store.read("experiments").empty

    cb.setup()  # writes the "running" row at once, and the summary of what was seen before
    exp = store.read("experiments", dedupe_rows=False)
    assert exp["status"].tolist() == ["running", "running"]
    cb.on_trial_start(0, [trial], trial)
    cb.on_trial_result(0, [trial], trial, {"training_iteration": 2, "fid": 3.0, "kid": 0.7})
    assert cb.flush() == 3  # trial row, metrics row and the summary row
    exp = store.read("experiments", dedupe_rows=False).sort_values("written_at")
    assert len(exp) == 3
    last = exp.iloc[-1]
    assert (last["status"], last["n_trials"], last["n_reports"], last["n_finished"]) == ("running", 1, 2, 0)
    assert (last["best_fid"], last["best_kid"]) == (3.0, 0.5)
    assert (last["git_commit"], last["versions"]) == ("abc", '{"torch": "2.9"}')
    assert cb.flush() == 0  # nothing changed: no new summary row
    assert len(store.read("experiments", dedupe_rows=False)) == 3


def test_a_flush_compacts_the_tables_over_compact_over_parts(uri):
    cb = quiet(uri, flush_every=1, compact_over=2)
    store = ResultsStore.open(uri)
    trial = make_trial()
    for i in range(2):
        cb.on_trial_result(0, [trial], trial, {"training_iteration": i + 1, "fid": 1.0})
    assert len(store.part_files("metrics", "exp")) == 2  # not over 2
    cb.on_trial_result(0, [trial], trial, {"training_iteration": 3, "fid": 1.0})
    assert len(store.part_files("metrics", "exp")) == 1
    assert sorted(store.read("metrics", "exp")["step"]) == [1, 2, 3]

    for i in range(3):  # parts written by someone else
        store.write("metrics", [{"experiment": "exp", "trial_id": "t9", "step": i}])
    assert cb.flush() == 0 and len(store.part_files("metrics", "exp")) == 4  # nothing written: no compaction


def test_a_failed_compaction_is_logged_and_the_rows_stay_written(uri, caplog):
    cb = quiet(uri)
    trial = make_trial()
    cb.on_trial_start(0, [trial], trial)

    def broken(experiment, over):
        raise OSError("listing refused")

    cb.store.compact_experiment = broken
    with caplog.at_level(logging.ERROR, logger=callback_module.__name__):
        assert cb.flush() == 1
    assert messages(caplog) == [f"ResultsCallback: compacting exp in {uri} failed"]
    assert ResultsStore.open(uri).read("trials", "exp")["status"].tolist() == ["running"]


# --------------------------------------------------------------------- rows
def test_a_trials_config_columns_are_computed_once(uri):
    calls = []

    def flatten(config):
        calls.append(config)
        return {"lr": config["opt"]["lr"]}

    cb = quiet(uri, flatten_config=flatten)
    trial = make_trial(config={"opt": {"lr": 0.5}})
    cb.on_trial_start(0, [trial], trial)
    cb.on_trial_result(0, [trial], trial, {"training_iteration": 1, "fid": 1.0})
    cb.on_trial_complete(0, [trial], trial)
    assert len(calls) == 1
    cb.flush()
    store = ResultsStore.open(uri)
    assert store.read("metrics", "exp")["config/lr"].tolist() == [0.5]
    assert store.read("trials", "exp")["config/lr"].tolist() == [0.5]


def test_setup_records_the_experiment_with_its_provenance(uri, monkeypatch):
    monkeypatch.setattr(callback_module, "git_commit", lambda: "cafe")
    cb = quiet(uri, record_experiment=True, spec={"model": "dcgan"}, seed=7, versions={"numpy": "2"})
    before = dt.datetime.now(UTC)
    cb.setup()
    assert cb.git_commit_sha == "cafe"
    row = ResultsStore.open(uri).read("experiments").iloc[0]
    assert (row["experiment"], row["status"], row["git_commit"], row["seed"]) == ("exp", "running", "cafe", 7)
    assert row["spec"] == '{"model": "dcgan"}' and row["versions"] == '{"numpy": "2"}'
    assert before <= row["started_at"] <= dt.datetime.now(UTC) and row["started_at"] == cb._started_at

    cb = quiet(uri, experiment="other", git_commit_sha="given")
    cb.setup()  # record_experiment=False: nothing written, the given commit kept
    assert cb.git_commit_sha == "given" and cb._started_at is not None
    assert "other" not in ResultsStore.open(uri).experiments()


def test_a_result_makes_its_metrics_setting_and_artifact_rows(uri):
    cb = quiet(uri, sampling_settings={"ddim50": {"sampler": "ddim", "steps": 50}})
    trial = make_trial()
    result = {"step": 40, "training_iteration": 2, "fid": 12.0, "fid/ddim50": 10.0, "timestamp": 1_700_000_000,
              "time_total_s": 30.0, "artifact/sample_grid": "s3://b/grid.png"}
    cb.on_trial_result(0, [trial], trial, result)
    assert cb._trial_last["t0"]["step"] == 40 and cb._trial_last["t0"]["time_total_s"] == 30.0
    assert cb._trial_start["t0"] == pytest.approx(time.time(), abs=60)  # first seen by its result: started then
    cb.flush()
    store = ResultsStore.open(uri)
    metrics = store.read("metrics", "exp").sort_values("fid")
    assert metrics["step"].tolist() == [40, 40] and metrics["fid"].tolist() == [10.0, 12.0]
    setting, headline = metrics.iloc[0], metrics.iloc[1]
    assert setting["sampling"] == "ddim50" and setting["sampling/steps"] == 50
    assert "fid/ddim50" not in metrics.columns  # its own row, not a column of the headline
    reported = dt.datetime.fromtimestamp(1_700_000_000, UTC)
    assert headline["reported_at"] == reported and setting["reported_at"] == reported
    assert (headline["config/lr"], setting["config/lr"]) == (0.1, 0.1)
    art = store.read("artifacts", "exp").iloc[0]
    assert (art["kind"], art["uri"], art["step"], art["trial_id"]) == ("sample_grid", "s3://b/grid.png", 40, "t0")


def test_a_result_without_a_timestamp_is_reported_now(uri):
    cb = quiet(uri)
    trial = make_trial()
    before = dt.datetime.now(UTC)
    row = cb._metrics_row(trial, {"training_iteration": 3, "fid": 1.0})
    assert row["step"] == 3 and before <= row["reported_at"] <= dt.datetime.now(UTC)


def test_a_trials_start_time_is_its_first_hook(uri, monkeypatch):
    cb = quiet(uri)
    trial = make_trial()
    ticks = iter(range(100, 10**6, 100))
    monkeypatch.setattr(callback_module.time, "time", lambda: float(next(ticks)))
    cb.on_trial_start(0, [trial], trial)
    cb.on_trial_start(0, [trial], trial)  # a restarted trial keeps its first start
    assert cb._trial_start == {"t0": 100.0}
    row = cb._trial_row(trial, "completed", None)
    assert row["started_at"] == dt.datetime.fromtimestamp(100.0, UTC) and row["wall_time_s"] > 100.0


def test_a_trial_without_a_config_has_no_config_columns(uri):
    cb = quiet(uri)
    trial = SimpleNamespace(trial_id="t0", placement_group_factory=None, path=None)
    assert cb._trial_columns(trial) == {}
    assert cb._metrics_row(trial, {"training_iteration": 1, "fid": 2.0})["fid"] == 2.0


def test_the_experiments_end_time_is_utc_whatever_the_local_zone(uri, tokyo_clock):  # noqa: F811 - fixture
    cb = quiet(uri, record_experiment=True, git_commit_sha="abc")
    cb.setup()
    before = dt.datetime.now(UTC)
    cb.on_experiment_end([])
    ended = ResultsStore.open(uri).read("experiments", "exp")["ended_at"].item()
    assert before - dt.timedelta(seconds=1) <= ended <= dt.datetime.now(UTC)


def test_checkpoints_become_artifact_rows_at_the_last_reported_step(uri):
    cb = quiet(uri)
    trial = make_trial()
    cb.on_checkpoint(0, [trial], trial, SimpleNamespace(path=None))
    cb.on_checkpoint(0, [trial], trial, object())
    assert cb._n_buffered == 0  # no path: nothing recorded
    cb.on_checkpoint(0, [trial], trial, SimpleNamespace(path="/ckpt/0"))  # before any result
    cb.on_trial_result(0, [trial], trial, {"step": 20, "fid": 1.0})
    cb.on_checkpoint(0, [trial], trial, SimpleNamespace(path="/ckpt/1", filesystem=SimpleNamespace(type_name="local")))
    cb.on_checkpoint(0, [trial], trial, SimpleNamespace(path="bucket/ckpt/2", filesystem=SimpleNamespace(type_name="s3")))
    cb.on_checkpoint(0, [trial], trial, SimpleNamespace(path="/ckpt/3", filesystem=SimpleNamespace(type_name=None)))
    cb.flush()
    arts = ResultsStore.open(uri).read("artifacts", "exp").sort_values("uri")
    assert arts["uri"].tolist() == ["/ckpt/0", "/ckpt/1", "/ckpt/3", "s3://bucket/ckpt/2"]
    assert (arts["kind"] == "checkpoint").all() and (arts["trial_id"] == "t0").all()
    steps = dict(zip(arts["uri"], arts["step"]))
    assert pd.isna(steps["/ckpt/0"])  # no step reported yet
    assert [steps[u] for u in ("/ckpt/1", "s3://bucket/ckpt/2", "/ckpt/3")] == [20, 20, 20]


@pytest.mark.parametrize("result,budget,status,reason", [
    ({"training_iteration": 2, "done": True}, 4, "stopped", "stopped by scheduler or stopping criterion"),
    ({"training_iteration": 4, "done": True}, 4, "completed", None),
    ({"training_iteration": 2, "diverged": True, "reason": "nan"}, None, "diverged", "nan"),
])
def test_a_trials_end_row(uri, result, budget, status, reason):
    cb = quiet(uri, budget_iterations=budget, trial_resources={"CPU": 2, "GPU": 1})
    trial = make_trial()
    cb.on_trial_start(0, [trial], trial)
    cb.on_trial_result(0, [trial], trial, {"step": 30, "time_total_s": 7200.0, **result})
    cb.on_trial_complete(0, [trial], trial)
    cb.flush()
    row = ResultsStore.open(uri).read("trials", "exp").iloc[0]
    assert (row["status"], row["last_step"]) == (status, 30)
    assert row["reason"] == reason if reason is not None else pd.isna(row["reason"])
    assert row["gpu_hours"] == pytest.approx(2.0) and row["cpu_hours"] == pytest.approx(4.0)
    assert cb._summary.finished == {"t0"}


def test_an_errored_trials_row(uri, tmp_path):
    import cloudpickle

    from gensweep.trainables.errors import Diverged

    pickled = tmp_path / "diverged.pkl"
    pickled.write_bytes(cloudpickle.dumps(Diverged(3, "G loss is nan")))
    diverged = make_trial("t1", pickled_error_file=str(pickled))
    error_file = tmp_path / "error.txt"
    error_file.write_text("Failure # 1\nTraceback\nValueError: bad batch\n")
    failed = make_trial("t2", error_file=str(error_file))
    cb = quiet(uri)
    for trial in (diverged, failed):
        cb.on_trial_result(0, [diverged, failed], trial, {"step": 20, "fid": 50.0})
        cb.on_trial_error(0, [diverged, failed], trial)
    cb.flush()
    rows = ResultsStore.open(uri).read("trials", "exp").set_index("trial_id")
    assert rows.loc["t1", ["status", "reason", "last_step"]].tolist() == ["diverged", "diverged at step 3: G loss is nan", 3]
    assert rows.loc["t2", ["status", "reason", "last_step"]].tolist() == ["failed", "ValueError: bad batch", 20]
    assert cb._summary.finished == {"t1", "t2"} and cb._summary.n_trials == 2


# ------------------------------------------------------------ experiment end
def test_the_experiments_end_writes_the_final_summary_and_compacts(uri):
    cb = quiet(uri, record_experiment=True, git_commit_sha="abc")
    store = ResultsStore.open(uri)
    cb.setup()
    trials = [make_trial(f"t{i}", status=s) for i, s in enumerate(["TERMINATED", "ERROR", "ERROR"])]
    for i, trial in enumerate(trials[:2]):
        cb.on_trial_start(0, trials[:1], trial)
        cb.on_trial_result(0, trials[:1], trial, {"training_iteration": 1, "fid": 10.0 - i})
        cb.flush()  # a part per flush
    assert len(store.part_files("metrics", "exp")) == 2
    before = dt.datetime.now(UTC)
    cb.on_experiment_end(trials)
    assert cb._n_buffered == 0
    exp = store.read("experiments", "exp")
    assert len(exp) == 1
    row = exp.iloc[0]
    assert (row["status"], row["n_trials"], row["n_errored"], row["n_reports"], row["best_fid"]) == \
        ("completed", 3, 2, 2, 9.0)  # three trials even though the store has rows of two
    assert before <= row["ended_at"] <= dt.datetime.now(UTC)
    assert all(len(store.part_files(t, "exp")) == 1 for t in ("experiments", "trials", "metrics"))
    assert cb._summary.changed is False
    cb.flush()  # no running summary after the final row
    assert store.read("experiments", "exp")["status"].tolist() == ["completed"]


def test_the_experiments_end_summary_falls_back_to_what_the_driver_saw(uri, monkeypatch, caplog):
    def unreachable(store, experiment, metrics):
        raise OSError("store unreachable")

    monkeypatch.setattr(callback_module, "summarize", unreachable)
    cb = quiet(uri, record_experiment=True, git_commit_sha="abc")
    cb.setup()
    trial = make_trial()
    cb.on_trial_start(0, [trial, make_trial("t1")], trial)
    cb.on_trial_result(0, [trial], trial, {"training_iteration": 1, "fid": 4.0})
    with caplog.at_level(logging.ERROR, logger=callback_module.__name__):
        cb.on_experiment_end([trial])
    assert messages(caplog) == ["ResultsCallback: summarizing exp failed"]
    row = ResultsStore.open(uri).read("experiments", "exp").iloc[0]
    assert (row["status"], row["n_trials"], row["n_reports"], row["best_fid"], row["n_errored"]) == \
        ("completed", 2, 1, 4.0, 0)


def test_the_experiments_end_without_an_experiments_row_still_writes_and_compacts(uri):
    cb = quiet(uri)
    store = ResultsStore.open(uri)
    trial = make_trial()
    for i in range(3):
        store.write("metrics", [{"experiment": "exp", "trial_id": "t9", "step": i}])
    cb.on_trial_start(0, [trial], trial)
    cb.on_experiment_end([trial])
    assert store.read("experiments").empty
    assert store.read("trials", "exp")["status"].tolist() == ["running"]
    assert len(store.part_files("metrics", "exp")) == 1


def test_the_experiments_end_flushes_with_the_whole_deadline(uri):
    cb = quiet(uri, record_experiment=True, git_commit_sha="abc", deadline_s=120.0, in_loop_deadline_s=10.0)
    cb.setup()
    seen = record_deadlines(cb)
    trial = make_trial()
    cb.on_trial_start(0, [trial], trial)
    cb.on_experiment_end([trial])
    assert seen and set(seen) == {120.0}


def test_the_final_summary_counts_what_the_store_holds_from_an_earlier_driver(uri, caplog):
    store = ResultsStore.open(uri)
    store.log_trial("exp", "old", "completed")
    store.write("metrics", [{"experiment": "exp", "trial_id": "old", "step": s, "fid": f, "kid": 0.1}
                            for s, f in ((1, 3.0), (2, 2.5))])
    store.write("metrics", [{"experiment": "other", "trial_id": "x", "step": 1, "fid": 0.5, "kid": 0.01}])
    cb = quiet(uri, record_experiment=True, git_commit_sha="abc", summary_metrics=("fid", "kid"))
    cb.setup()
    trial = SimpleNamespace(trial_id="new", config={}, placement_group_factory=None, path=None)  # no status
    cb.on_trial_start(0, [trial], trial)
    cb.on_trial_result(0, [trial], trial, {"training_iteration": 1, "fid": 4.0, "kid": 0.2})
    with caplog.at_level(logging.ERROR, logger=callback_module.__name__):
        cb.on_experiment_end([trial])
    assert messages(caplog) == []
    row = store.read("experiments", "exp").iloc[0]
    assert (row["n_trials"], row["n_finished"], row["n_reports"], row["n_errored"]) == (2, 1, 3, 0)
    assert (row["best_fid"], row["best_kid"]) == (2.5, 0.1)
