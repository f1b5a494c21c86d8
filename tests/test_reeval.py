"""`gensweep eval CHECKPOINT`: re-scoring a trial checkpoint appends marked rows to the store (no Ray)."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from gensweep.cli import main as cli_main
from gensweep.platform.trial.checkpoints import INFO_FILE, STATE_FILE
from gensweep.platform.data import prepare
from gensweep.platform.results import ResultsStore, leaderboard, load_metrics
from tests.eval_support import run_trial, save_checkpoint, tiny_data, tiny_spec  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gan_checkpoint(tiny_data, tmp_path_factory):
    """A finished in-process GAN trial (evals at 4, 8, 12 with N 40, 70, 100), its checkpoint and store rows."""
    root = tmp_path_factory.mktemp("results")
    spec = tiny_spec(root, tiny_data)
    ctx, runtime = run_trial(spec, tiny_data, root)
    ResultsStore.open(str(root)).write("metrics", [{"experiment": "tiny-run", "trial_id": "t0", **r}
                                                   for r in ctx.reports])
    ckpt = save_checkpoint(root / "ray" / "tiny-run-t0" / "checkpoint_000002", ctx, spec, tiny_data, root, runtime)
    return ckpt, root, ctx.reports


def _reevals(root: Path):
    rows = ResultsStore.open(str(root)).read("metrics", "tiny-run")
    return rows, rows[rows["reeval"].eq(True)].sort_values("eval_n")


def test_reevaluation_rows_carry_backbone_n_step_trial_and_marker(gan_checkpoint, capsys):
    ckpt, root, reports = gan_checkpoint
    assert cli_main(["eval", ckpt, "--backbone", "mnist-lenet", "--num-samples", "60"]) == 0
    assert "tiny-run / t0 step 12: fid=" in capsys.readouterr().out
    assert cli_main(["eval", ckpt]) == 0  # the trial's own backbone and full N
    assert cli_main(["eval", ckpt, "--num-samples", "60"]) == 0  # same backbone and N again: replaces its row

    rows, again = _reevals(root)
    assert list(again["eval_n"]) == [60, 100] and list(again["step"]) == [12, 12]
    assert set(again["trial_id"]) == {"t0"} and set(again["backbone"]) == {"mnist-lenet"}
    assert set(again["checkpoint"]) == {ckpt} and set(again["eval_protocol"]) == {reports[-1]["eval_protocol"]}
    assert set(again["refstats_key"]) == {reports[-1]["refstats_key"]}  # the trial's own reference set
    assert all(math.isfinite(v) for v in again["kid"])
    # at the trial's protocol (same latents, backbone, N) it reproduces the training-time score of that step
    assert again["fid"].iloc[1] == pytest.approx(reports[-1]["fid"], rel=1e-6)
    assert again["fid"].iloc[0] != pytest.approx(again["fid"].iloc[1])
    # training rows are untouched, and leaderboards and curves leave re-evaluations out
    training = rows[~rows["reeval"].eq(True)]
    assert list(training.sort_values("step")["eval_n"]) == [40, 70, 100]
    assert len(load_metrics(str(root), "tiny-run")) == 3 and len(load_metrics(str(root), "tiny-run", reevaluations=True)) == 5
    assert leaderboard(str(root), "tiny-run")["n_reports"].tolist() == [3]


def test_reevaluation_into_another_store_computes_missing_reference_statistics(gan_checkpoint, tmp_path):
    ckpt, _, reports = gan_checkpoint
    assert not (tmp_path / "refstats").exists()
    assert cli_main(["eval", ckpt, "--num-samples", "50", "--results-root", str(tmp_path)]) == 0
    stored = {p.suffix for p in (tmp_path / "refstats").glob(reports[-1]["refstats_key"] + ".*")}
    assert {".json", ".npz"} <= stored
    rows = ResultsStore.open(str(tmp_path)).read("metrics", "tiny-run")
    assert list(rows["eval_n"]) == [50] and rows["reeval"].all() and list(rows["step"]) == [12]


def test_diffusion_checkpoint_is_scored_per_sampler_setting(tiny_data, tmp_path):
    spec = tiny_spec(tmp_path, tiny_data, family="diffusion", ladder=[])
    ctx, runtime = run_trial(spec, tiny_data, tmp_path)
    ckpt = save_checkpoint(tmp_path / "ckpt", ctx, spec, tiny_data, tmp_path, runtime)
    assert cli_main(["eval", ckpt]) == 0
    row = ResultsStore.open(str(tmp_path)).read("metrics", "tiny-run").iloc[0]
    last = ctx.reports[-1]
    assert row["step"] == 2 and row["reeval"] and row["eval_n"] == 100 and row["eval_n/euler-2"] == 100
    for key in ("fid", "fid/ddim-2", "fid/euler-2"):
        assert row[key] == pytest.approx(last[key], rel=1e-6)


def _fails(args, capsys) -> str:
    assert cli_main(["eval", *args]) == 2
    return capsys.readouterr().err


def test_clear_errors(gan_checkpoint, tiny_data, tmp_path, capsys):
    ckpt, _, _ = gan_checkpoint
    assert "does not exist" in _fails([str(tmp_path / "nowhere")], capsys)
    assert f"has no {STATE_FILE}" in _fails([str(tmp_path)], capsys)
    assert "unknown backbone 'nope'; allowed: inception-v3-tf, mnist-lenet" in _fails([ckpt, "--backbone", "nope"], capsys)

    broken = tmp_path / "broken"
    shutil.copytree(ckpt, broken)
    (broken / STATE_FILE).write_bytes(b"truncated")
    assert f"{STATE_FILE} cannot be loaded" in _fails([str(broken / STATE_FILE)], capsys)

    no_info = tmp_path / "no-info"
    shutil.copytree(ckpt, no_info)
    (no_info / INFO_FILE).unlink()
    assert f"has no {INFO_FILE}" in _fails([str(no_info)], capsys)

    # the trial's dataset URI now holds other images: refuse rather than score against another reference set
    moved = tmp_path / "moved"
    shutil.copytree(ckpt, moved)
    np.save(tmp_path / "noise.npy", np.random.default_rng(0).integers(0, 256, (50, 16, 16), dtype=np.uint8))
    prepare(str(tmp_path / "noise.npy"), str(tmp_path / "noise"), resolution=16)
    info = json.loads((moved / INFO_FILE).read_text())
    (moved / INFO_FILE).write_text(json.dumps({**info, "dataset": str(tmp_path / "noise")}))
    assert "is no longer the one trial t0 was scored against: dataset:" in _fails([str(moved)], capsys)
