"""`gensweep refstats import`: published mean/covariance files as `eval.reference`, validated before Ray starts."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gensweep.cli import main as cli_main
from gensweep.platform.metrics.refstats import RefStatsRegistry
from gensweep.platform.spec import SpecError, parse_spec
from gensweep.platform.trial.evaluation import WorkerEvaluator, prepare_reference
from tests.eval_support import tiny_data  # noqa: F401 - fixture


@pytest.fixture
def digits(tiny_data) -> str:  # noqa: F811 - the imported fixture
    return tiny_data


def published(path, d: int, seed: int = 0, **extra):
    f = np.random.default_rng(seed).standard_normal((30, d))
    np.savez(path, mu=f.mean(0), sigma=np.cov(f, rowvar=False), **extra)
    return f


def spec_for(dataset, root, **eval_fields):
    return parse_spec({"name": "pub", "trainable": {"steps": 4, "eval_every": 4, "batch_size": 8},
                       "data": {"source": dataset, "uri": dataset, "resolution": 16},
                       "eval": {"num_samples": 20, "batch_size": 20, "metrics": ["fid"], **eval_fields},
                       "results": {"root": str(root)}})


def test_imported_statistics_are_a_spec_reference(digits, tmp_path, capsys):
    f = published(tmp_path / "pub.npz", 128)
    root = tmp_path / "results"
    assert cli_main(["refstats", "import", str(tmp_path / "pub.npz"), "--name", "digits-pub", "--root", str(root),
                     "--backbone", "mnist-lenet", "--resolution", "16", "--n", "30"]) == 0
    assert "use it as eval.reference: digits-pub" in capsys.readouterr().out
    assert cli_main(["refstats", "ls", "--root", str(root)]) == 0
    assert capsys.readouterr().out.startswith("digits-pub\tmnist-lenet-v1")

    runtime = prepare_reference(spec_for(digits, root, reference="digits-pub"), digits, str(root))
    registry = RefStatsRegistry(root / "refstats")
    assert runtime.key == registry.named("digits-pub") and runtime.key.n == 30 and not runtime.computed
    assert runtime.fid_floor is None  # no features: no floor, and the entry says so
    assert "not available" in registry.load(runtime.key).fid_floor_note
    worker = WorkerEvaluator.from_config(runtime, torch.device("cpu"))
    np.testing.assert_allclose(worker.ref.mu, f.mean(0))
    noise = lambda n, seed: torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1  # noqa: E731
    scores = worker.evaluate(noise, step=4)  # scored against the imported statistics
    assert scores["fid"] > 0 and scores["refstats_key"] == runtime.refstats_key
    # the same name for other statistics is refused; the same file again is fine
    published(tmp_path / "other.npz", 128, seed=1)
    assert cli_main(["refstats", "import", str(tmp_path / "other.npz"), "--name", "digits-pub", "--root", str(root),
                     "--backbone", "mnist-lenet", "--resolution", "16"]) == 2
    assert "already exist" in capsys.readouterr().err
    assert cli_main(["refstats", "import", str(tmp_path / "pub.npz"), "--name", "digits-pub", "--root", str(root),
                     "--backbone", "mnist-lenet", "--resolution", "16", "--n", "30"]) == 0


def test_import_with_features_records_a_floor(tmp_path, capsys):
    f = published(tmp_path / "withf.npz", 128, features=np.random.default_rng(0).standard_normal((30, 128)))
    assert f.shape == (30, 128)
    assert cli_main(["refstats", "import", str(tmp_path / "withf.npz"), "--name", "withf", "--root", str(tmp_path),
                     "--backbone", "mnist-lenet", "--resolution", "16"]) == 0
    assert "FID floor" in capsys.readouterr().out
    registry = RefStatsRegistry(tmp_path / "refstats")
    assert registry.load(registry.named("withf")).fid_floor > 0


def test_bad_imports_and_references_are_clear_errors(digits, tmp_path, capsys):
    root = tmp_path / "results"
    np.savez(tmp_path / "nosigma.npz", mu=np.zeros(128))
    assert cli_main(["refstats", "import", str(tmp_path / "nosigma.npz"), "--name", "x", "--root", str(root),
                     "--backbone", "mnist-lenet", "--resolution", "16"]) == 2
    assert "no sigma array" in capsys.readouterr().err
    published(tmp_path / "inc.npz", 2048)
    assert cli_main(["refstats", "import", str(tmp_path / "inc.npz"), "--name", "x", "--root", str(root),
                     "--backbone", "mnist-lenet", "--resolution", "16"]) == 2
    assert "mu has 2048 dimensions" in capsys.readouterr().err
    assert cli_main(["refstats", "import", str(tmp_path / "inc.npz"), "--name", "cifar-train", "--root", str(root),
                     "--resolution", "32"]) == 0  # inception-v3-tf by default
    capsys.readouterr()

    with pytest.raises(SpecError, match=r"eval.reference: no imported reference statistics named 'nope'.*known: cifar"):
        prepare_reference(spec_for(digits, root, reference="nope"), digits, str(root))
    with pytest.raises(SpecError, match=r"eval.reference: 'cifar-train' was made under another protocol.*protocol: "):
        prepare_reference(spec_for(digits, root, reference="cifar-train"), digits, str(root))
    with pytest.raises(SpecError, match=r"resolution: reference=32 vs other=16"):
        prepare_reference(spec_for(digits, root, reference="cifar-train", backbone="inception-v3-tf"), digits,
                          str(root))
    published(tmp_path / "lenet.npz", 128)
    assert cli_main(["refstats", "import", str(tmp_path / "lenet.npz"), "--name", "lenet16", "--root", str(root),
                     "--backbone", "mnist-lenet", "--resolution", "16"]) == 0
    with pytest.raises(SpecError, match=r"eval.metrics: kid need the reference features"):
        prepare_reference(spec_for(digits, root, reference="lenet16", metrics=["fid", "kid"]), digits, str(root))
    with pytest.raises(SpecError, match=r"eval.reference"):
        spec_for(digits, root, reference="lenet16", ref_samples=10)
    with pytest.raises(SpecError, match=r"eval.reference"):
        spec_for(digits, root, reference="../escape")


def test_an_unknown_reference_stops_gensweep_run_before_ray(digits, tmp_path, capsys):
    import ray
    import yaml

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_for(digits, tmp_path / "results", reference="missing").model_dump(mode="json")))
    assert cli_main(["run", str(spec)]) == 2
    assert "eval.reference: no imported reference statistics named 'missing'" in capsys.readouterr().err
    assert not ray.is_initialized()
