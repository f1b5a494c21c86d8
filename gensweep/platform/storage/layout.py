"""Every path under a results root, in one place.

A results root is a local folder or an ``s3://bucket/prefix`` URI; every sweep, ``gensweep
resume``, the dashboards and the CLI find what a sweep wrote through :class:`RootLayout`::

    <root>/
      experiments/ trials/ metrics/ artifacts/   the results store's tables (Parquet parts only)
      files/<experiment>/<trial>/                a trial's resolved config, sample grids, divergence record
      ray/<experiment>/                          Tune's experiment state and Train checkpoints
      ray/<experiment>/gensweep_spec.yaml        the spec saved at sweep start (for ``gensweep resume``)
      ray/<experiment>/console.log               Ray's, Tune's and trial workers' messages (local roots)
      datasets/<name>-<res>px-<hash>/            prepared datasets (Parquet shards + manifest)
      refstats/                                  reference statistics (every root, S3 included)
      optuna.db                                  the Optuna study storage (local roots)
      .journal/                                  the results callback's write-ahead journal (local roots)

For an object-storage root the SQLite study storage and the journal cannot live there (SQLite
needs a local file, the journal must be written before every flush): the study storage is then
``search.optuna_storage`` and the journal a local cache folder named after the root.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from gensweep.platform.storage.names import DEFAULT_ROOT  # noqa: F401 - where it was always imported from
from gensweep.platform.storage.uris import join_uri

RESUME_FILE = "gensweep_spec.yaml"
CONSOLE_LOG = "console.log"


def cache_dir() -> Path:
    """gensweep's local cache (``$GENSWEEP_CACHE``, else ``~/.cache/gensweep``)."""
    return Path(os.environ.get("GENSWEEP_CACHE", Path.home() / ".cache" / "gensweep"))


def absolute_root(root: str | os.PathLike) -> str:
    """A URI as given; a local path made absolute (so Ray workers in other folders find it)."""
    root = os.fspath(root)
    return root if "://" in root else str(Path(root).expanduser().resolve())


@dataclass(frozen=True)
class RootLayout:
    """The folders and files of one results root (``root`` absolute, or a URI)."""

    root: str

    @classmethod
    def of(cls, root: str | os.PathLike) -> "RootLayout":
        return cls(absolute_root(root))

    @property
    def is_local(self) -> bool:
        return "://" not in self.root

    # ---------------------------------------------------------------- Tune / Train
    @property
    def ray(self) -> str:
        """Tune's and Train's ``storage_path``: experiment state and checkpoints."""
        return f"{self.root}/ray"

    def ray_experiment(self, experiment: str) -> str:
        return f"{self.ray}/{experiment}"

    def resume_spec(self, experiment: str) -> str:
        """The spec a sweep saved at its start, beside Tune's experiment state."""
        return join_uri(self.ray, experiment, RESUME_FILE)

    def console_log(self, experiment: str) -> str:
        """The local file a sweep's Ray, Tune and worker messages go to (its console shows
        gensweep's progress view): beside Tune's state on a local root, else in the cache."""
        if self.is_local:
            return f"{self.ray_experiment(experiment)}/{CONSOLE_LOG}"
        digest = hashlib.sha256(self.root.encode()).hexdigest()[:16]
        return str(cache_dir() / "logs" / digest / experiment / CONSOLE_LOG)

    # ---------------------------------------------------------------- trial files
    @property
    def files(self) -> str:
        """Blob files of trials, outside the results store's table folders (which hold only
        Parquet parts, so that any Parquet reader can read a table's folder)."""
        return f"{self.root}/files"

    def trial_artifacts(self, experiment: str, trial_id: str) -> str:
        return join_uri(self.files, experiment, trial_id)

    def legacy_trial_artifacts(self, experiment: str, trial_id: str) -> str:
        """Where sweeps before ``files/`` kept a trial's files: inside the artifacts table's folder."""
        return join_uri(self.root, "artifacts", experiment, trial_id)

    # ---------------------------------------------------------------- data and statistics
    @property
    def datasets(self) -> str:
        return join_uri(self.root, "datasets")

    def dataset(self, name: str) -> str:
        return join_uri(self.datasets, name)

    @property
    def refstats(self) -> str:
        """Reference statistics, beside the results on every root (object storage included), so
        that trial workers on any node read what the driver wrote."""
        return join_uri(self.root, "refstats")

    # ---------------------------------------------------------------- driver-side state
    @property
    def optuna_url(self) -> Optional[str]:
        """``sqlite:///<root>/optuna.db`` on a local root; None on object storage."""
        return f"sqlite:///{self.root}/optuna.db" if self.is_local else None

    @property
    def journal(self) -> str:
        """Folder of the results callback's write-ahead journal."""
        if self.is_local:
            return str(Path(self.root) / ".journal")
        return str(cache_dir() / "journal" / hashlib.sha256(self.root.encode()).hexdigest()[:16])
