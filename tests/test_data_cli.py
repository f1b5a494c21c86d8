"""`gensweep data prepare` from the command line, local and S3."""
from __future__ import annotations

from gensweep.cli import main
from gensweep.platform.data import StorageOptions, load_manifest


def test_prepare_mnist_locally_and_to_s3_same_fingerprint(tmp_path, s3_bucket, s3_server, capsys):
    local = str(tmp_path / "mnist")
    assert main(["data", "prepare", "mnist", local, "--resolution", "32", "--fraction", "0.1"]) == 0
    assert "500 images 32x32x1" in capsys.readouterr().out
    remote = f"s3://{s3_bucket}/mnist"
    assert main(["data", "prepare", "mnist", remote, "--resolution", "32", "--fraction", "0.1",
                 "--endpoint-url", s3_server.endpoint]) == 0
    a = load_manifest(local)
    b = load_manifest(remote, StorageOptions(endpoint_url=s3_server.endpoint))
    assert a.fingerprint == b.fingerprint and a.count == b.count == 500


def test_prepare_bad_source_is_a_clear_error(tmp_path, capsys):
    assert main(["data", "prepare", str(tmp_path / "missing.npz"), str(tmp_path / "out")]) == 2
    assert "gensweep:" in capsys.readouterr().err
