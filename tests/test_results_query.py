"""Leaderboard, experiment listing, export and the text table renderer on a synthetic store."""
from __future__ import annotations

import datetime as dt
import io
import math

import pandas as pd
import pytest

from gensweep.platform.results import (
    ResultsStore,
    export,
    format_table,
    leaderboard,
    list_experiments,
    load_metrics,
)
from tests.results_support import store_uri  # noqa: F401 - fixture

FID = {  # trial -> fid per step (10, 20, 30)
    "a": [40.0, 25.0, 30.0],   # best 25 @ 20
    "b": [35.0, 20.0, 18.0],   # best 18 @ 30
    "c": [60.0, float("nan"), 50.0],  # best 50 @ 30, a NaN report is ignored
}


def _populate(uri):
    store = ResultsStore.open(uri)
    started = dt.datetime(2025, 3, 1, 12, tzinfo=dt.timezone.utc)
    store.log_experiment("gan-ablation", started_at=started, status="completed")
    for i, (trial, fids) in enumerate(FID.items()):
        store.write("metrics", [
            {"experiment": "gan-ablation", "trial_id": trial, "step": 10 * (k + 1), "fid": fid,
             "is": 5.0 + k, "time_total_s": 100.0 * (k + 1), "config/lr": 1e-4 * (i + 1),
             "config/arch": "dcgan" if trial != "c" else "stylegan"}
            for k, fid in enumerate(fids)
        ])
    store.write("trials", [
        {"experiment": "gan-ablation", "trial_id": "a", "status": "completed", "wall_time_s": 310.0},
        {"experiment": "gan-ablation", "trial_id": "b", "status": "stopped", "reason": "asha"},
        {"experiment": "gan-ablation", "trial_id": "d", "status": "failed", "reason": "OOM",
         "config/lr": 9e-4, "config/arch": "dcgan"},
    ])
    store.log_metrics("other", "x", 1, fid=12.0)
    return store


def test_leaderboard(store_uri):
    _populate(store_uri)
    board = leaderboard(store_uri, "gan-ablation", metric="fid", mode="min")
    assert board["trial_id"].tolist() == ["b", "a", "c", "d"]
    assert board["best_fid"].tolist()[:3] == [18.0, 25.0, 50.0] and math.isnan(board["best_fid"].iloc[3])
    assert board["best_step"].tolist()[:3] == [30, 20, 30]
    assert board["last_step"].tolist()[:3] == [30, 30, 30]
    assert board["status"].tolist() == ["stopped", "completed", "running", "failed"]
    assert board.loc[3, "reason"] == "OOM" and board.loc[0, "reason"] == "asha"
    assert board.loc[1, "wall_time_s"] == 310.0  # from the trials table
    assert board.loc[0, "wall_time_s"] == 300.0  # else the last time_total_s
    assert board["config/arch"].tolist() == ["dcgan", "dcgan", "stylegan", "dcgan"]
    assert board.loc[3, "config/lr"] == pytest.approx(9e-4)
    assert board["n_reports"].tolist() == [3, 3, 3, 0]

    best_is = leaderboard(store_uri, "gan-ablation", metric="is", mode="max")
    assert best_is["best_is"].tolist()[:3] == [7.0, 7.0, 7.0]
    assert best_is["best_step"].tolist()[:3] == [30, 30, 30]
    with pytest.raises(ValueError):
        leaderboard(store_uri, "gan-ablation", mode="best")
    assert leaderboard(store_uri, "missing").empty


def test_load_metrics_and_list_experiments(store_uri):
    _populate(store_uri)
    df = load_metrics(store_uri, "gan-ablation")
    assert len(df) == 9
    assert list(zip(df["trial_id"], df["step"]))[:4] == [("a", 10), ("a", 20), ("a", 30), ("b", 10)]
    exps = list_experiments(store_uri)
    assert exps["experiment"].tolist() == ["gan-ablation", "other"]
    assert exps["n_trials"].tolist() == [4, 1]
    assert exps["best_fid"].tolist() == [18.0, 12.0]
    assert exps.loc[0, "started_at"] == pd.Timestamp("2025-03-01 12:00", tz="UTC")
    assert exps.loc[0, "status"] == "completed"
    assert not pd.isna(exps.loc[1, "started_at"])  # derived from metrics wall time if absent


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export(store_uri, tmp_path, fmt):
    _populate(store_uri)
    out = export(store_uri, "gan-ablation", str(tmp_path / "out"), fmt=fmt)
    names = sorted(p.rsplit("/", 1)[-1] for p in out)
    assert names == sorted(f"{t}.{fmt}" for t in ("experiments", "trials", "metrics"))
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    metrics = read(tmp_path / "out" / f"metrics.{fmt}")
    assert len(metrics) == 9 and "row_key" not in metrics.columns
    assert metrics["fid"].max() == 60.0 and metrics["fid"].isna().sum() == 1
    single = export(store_uri, "gan-ablation", str(tmp_path / "trials_only.csv"), tables="trials")
    assert single == [str(tmp_path / "trials_only.csv")]
    trials = pd.read_csv(tmp_path / "trials_only.csv")
    assert sorted(trials["trial_id"]) == ["a", "b", "d"]
    with pytest.raises(ValueError):
        export(store_uri, "gan-ablation", str(tmp_path / "x"), fmt="xlsx")


def test_export_to_s3(s3_bucket, tmp_path):
    _populate(str(tmp_path / "store"))
    (uri,) = export(str(tmp_path / "store"), "gan-ablation", f"s3://{s3_bucket}/exports/m.parquet",
                    fmt="parquet", tables="metrics")
    store = ResultsStore.open(f"s3://{s3_bucket}")
    data = store.backend.read_bytes(uri[len("s3://"):])
    assert len(pd.read_parquet(io.BytesIO(data))) == 9


def test_format_table():
    df = pd.DataFrame({
        "trial_id": ["b", "a", "long-trial-name-that-is-cut"],
        "best_fid": [18.0, 25.123456, float("nan")],
        "status": ["stopped", "completed", None],
    })
    text = format_table(df, max_col_width=12)
    lines = text.splitlines()
    assert lines[0].split() == ["trial_id", "best_fid", "status"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["b", "18", "stopped"]
    assert lines[3].split() == ["a", "25.12", "completed"]
    assert lines[4].split()[0] == "long-tria..." and "nan" not in lines[4].lower()
    # numbers right-aligned under their header
    assert lines[2].index("18") + 2 == lines[3].index("25.12") + 5
    assert len(lines[1]) == max(len(line) for line in lines)
    clipped = format_table(df, max_rows=1)
    assert clipped.splitlines()[-1] == "... 2 more rows"
    assert "(no rows)" in format_table(df.iloc[:0])
