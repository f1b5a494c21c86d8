"""The command line behaves the same way everywhere: shared options in the same places, one
safe-name rule for experiment ids, files written where the user said, a parser that imports no
heavy library (so ``--help`` is quick; the measured time is in BENCHMARKS.md), and paths shown whole."""
from __future__ import annotations

import subprocess
import sys

import pytest

from gensweep.cli import build_parser, main
from gensweep.platform.results import ResultsStore
from tests.results_support import metric_rows

EXP = "cli-e1"


@pytest.fixture
def small_store(tmp_path):
    root = str(tmp_path / "results")
    store = ResultsStore.open(root)
    grid = "/very/long/path/to/the/sample/grids/of/this/experiment/" + "t1-grid-at-step-0003.png"
    store.write("metrics", metric_rows(EXP, "t1", range(1, 4), sample_grid=grid))
    return root, grid


# Every leaf command that reads a results root, with the arguments it needs besides --root.
ROOT_COMMANDS = (
    ["results", "ls"], ["results", "show", "x"], ["results", "export", "x", "-o", "out.csv"],
    ["results", "compact"], ["report", "x"], ["resume", "x"], ["dashboard", "x"],
    ["refstats", "ls"], ["refstats", "import", "f.npz", "--name", "n", "--resolution", "32"],
)


@pytest.mark.parametrize("argv", ROOT_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_root_is_accepted_after_every_command_that_reads_one(argv):
    assert build_parser().parse_args([*argv, "--root", "R"]).root == "R"


def test_results_root_keeps_working_before_the_subcommand():
    parser = build_parser()
    assert parser.parse_args(["results", "--root", "R", "ls"]).root == "R"
    assert parser.parse_args(["results", "--root", "R", "show", "x", "--root", "S"]).root == "S"  # the nearer wins


def test_results_ls_with_root_after_the_subcommand_lists(small_store, capsys):
    root, _ = small_store
    assert main(["results", "ls", "--root", root]) == 0
    assert EXP in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_to_a_file_name_writes_that_file(small_store, tmp_path, fmt):
    import pandas as pd

    root, _ = small_store
    out = tmp_path / f"x.{fmt}"
    assert main(["results", "export", EXP, "--root", root, "--format", fmt, "-o", str(out)]) == 0
    assert out.is_file()
    df = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
    assert sorted(df["step"]) == [1, 2, 3]


def test_export_to_a_folder_still_writes_one_file_per_table(small_store, tmp_path):
    root, _ = small_store
    out = tmp_path / "tables"
    assert main(["results", "export", EXP, "--root", root, "-o", str(out)]) == 0
    assert (out / "metrics.csv").is_file()


def test_results_show_prints_the_whole_sample_grid_path(small_store, capsys):
    root, grid = small_store
    assert main(["results", "show", EXP, "--root", root]) == 0
    assert grid in capsys.readouterr().out


BAD_NAMES = ["../evil", "a/b", "a\\b", "..", ".hidden", "", "x" * 200, "a b", "a\nb"]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("argv", [
    ["run", "--dry-run", "--experiment", "{}"], ["submit", "spec.yaml", "--dry-run", "--experiment", "{}"],
    ["resume", "{}"], ["results", "show", "{}"], ["results", "export", "{}", "-o", "x.csv"],
    ["results", "compact", "{}"], ["report", "{}"], ["dashboard", "{}"],
], ids=lambda a: " ".join(a[:2]))
def test_every_command_refuses_an_unsafe_experiment_name(argv, name, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([a.replace("{}", name) for a in argv])
    assert info.value.code == 2
    assert "letters, digits" in capsys.readouterr().err


def test_experiment_names_that_gensweep_makes_are_accepted():
    parser = build_parser()
    assert parser.parse_args(["resume", "gan-quick-20260101-120000"]).experiment == "gan-quick-20260101-120000"
    assert parser.parse_args(["run", "--experiment", "my_run.v2"]).experiment == "my_run.v2"


HEAVY = ("torch", "pandas", "pyarrow", "ray", "optuna", "torchvision", "scipy")


def test_building_the_parser_imports_no_heavy_library():
    code = ("import sys; from gensweep.cli import build_parser; build_parser(); "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("argv", [["run"], ["eval", "ckpt"], ["submit", "spec.yaml"],
                                  ["cluster", "init", "aws-gpu", "out.yaml"]], ids=lambda a: a[0])
def test_commands_that_override_a_root_take_root_too(argv):
    parser = build_parser()
    assert parser.parse_args([*argv, "--root", "R"]).results_root == "R"
    assert parser.parse_args([*argv, "--results-root", "R"]).results_root == "R"  # the older spelling stays
