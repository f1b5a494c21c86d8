"""Reference statistics of real data, cached on disk under readable keys, computed once across processes.

Each entry lives in ``<root>/<slug>.npz`` (``mu``, ``sigma`` float64 and the
``features`` float32 needed by KID / precision-recall) with a JSON sidecar
``<root>/<slug>.json`` holding the key.  Writes go to a temporary file in the
same directory and are published with ``os.replace`` (atomic); the sidecar
is written last and is the commit marker.  A ``filelock.FileLock`` per key
(``<root>/<slug>.lock``) makes concurrent processes compute a key once: the
second caller waits for the lock and then loads.

Statistics follow the FID recipe of Heusel et al. 2017 (arXiv:1706.08500).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from .statistics import mean_cov

__all__ = ["RefStatsKey", "RefStats", "RefStatsRegistry", "ProtocolMismatch", "dataset_fingerprint", "COMPARED_FIELDS"]

# Fields that must agree between two sets of statistics for a comparison to be meaningful.
COMPARED_FIELDS = ("protocol", "resolution", "resize")


class ProtocolMismatch(ValueError):
    """Two feature sets were made under different evaluation protocols and must not be compared."""


def dataset_fingerprint(name: str, data: bytes | np.ndarray | None = None) -> str:
    """Readable dataset id ``<name>-<first 8 hex of sha256(data)>`` (just ``name`` without data)."""
    if data is None:
        return _safe(name)
    if isinstance(data, np.ndarray):
        h = hashlib.sha256(np.ascontiguousarray(data).tobytes())
        h.update(f"{data.dtype.str}{data.shape}".encode())
    else:
        h = hashlib.sha256(data)
    return f"{_safe(name)}-{h.hexdigest()[:8]}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "x"


@dataclass(frozen=True)
class RefStatsKey:
    """Identity of a reference-statistics entry: data, split, input resolution and how features were made."""

    dataset: str  # dataset fingerprint, e.g. dataset_fingerprint("mnist", images)
    split: str
    resolution: int  # side of the images fed to the backbone (after the dataset-level resize)
    protocol: str  # backbone protocol string
    n: int  # number of images
    resize: str  # how source images were brought to `resolution` ("none", "pad", "bilinear", ...)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def digest(self) -> str:
        """First 8 hex of the sha256 of the canonical JSON of the key."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:8]

    @property
    def slug(self) -> str:
        """Readable, filesystem-safe cache key, e.g. ``mnist-ab12cd34__train__32px__mnist-lenet-v1-...__n4000__pad__<hash>``."""
        parts = [self.dataset, self.split, f"{self.resolution}px", self.protocol, f"n{self.n}", self.resize]
        return "__".join(_safe(p) for p in parts) + f"__{self.digest}"

    def mismatches(self, **observed: Any) -> list[str]:
        """Describe each field of ``observed`` that differs from this key (``field: ref=... vs other=...``)."""
        out = []
        for name, value in observed.items():
            if name not in {f.name for f in dataclasses.fields(self)}:
                raise ValueError(f"unknown key field {name!r}")
            mine = getattr(self, name)
            if value is not None and value != mine:
                out.append(f"{name}: reference={mine!r} vs other={value!r}")
        return out


@dataclass
class RefStats:
    """Reference statistics (mu, sigma float64; features float32) with the key they were computed under."""

    key: RefStatsKey
    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray
    computed: bool = field(default=False, compare=False)  # True if this call computed (not loaded) it

    @classmethod
    def from_features(cls, key: RefStatsKey, features: np.ndarray) -> "RefStats":
        feats = np.asarray(features, dtype=np.float32)
        if feats.ndim != 2 or len(feats) != key.n:
            raise ValueError(f"features shape {feats.shape} does not match key n={key.n}")
        mu, sigma = mean_cov(feats)
        return cls(key=key, mu=mu, sigma=sigma, features=feats)

    def check_compatible(self, *, match_n: bool = False, **observed: Any) -> None:
        """Raise ProtocolMismatch if any observed field (protocol, resolution, resize, n...) differs from the key."""
        if not match_n:
            observed.pop("n", None)
        bad = self.key.mismatches(**observed)
        if bad:
            raise ProtocolMismatch(f"refusing to compare with reference statistics {self.key.slug}: " + "; ".join(bad))

    def check_compatible_key(self, other: RefStatsKey, *, match_n: bool = False) -> None:
        """Raise ProtocolMismatch unless ``other`` agrees on COMPARED_FIELDS (and n if ``match_n``)."""
        fields = COMPARED_FIELDS + (("n",) if match_n else ())
        self.check_compatible(match_n=match_n, **{f: getattr(other, f) for f in fields})

    def frechet_to(self, other: "RefStats", *, match_n: bool = False) -> float:
        """Fréchet distance to another statistics set, after checking the protocols agree."""
        from .distances import frechet_distance

        self.check_compatible_key(other.key, match_n=match_n)
        return frechet_distance(self.mu, self.sigma, other.mu, other.sigma)


class RefStatsRegistry:
    """Disk cache of :class:`RefStats` by key slug; ``compute_count`` counts computations done by this object."""

    def __init__(self, root: str | os.PathLike, lock_timeout: float = -1) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock_timeout = lock_timeout
        self.compute_count = 0

    def paths(self, key: RefStatsKey) -> tuple[Path, Path, Path]:
        """(npz, json sidecar, lock) paths of a key."""
        slug = key.slug
        return self.root / f"{slug}.npz", self.root / f"{slug}.json", self.root / f"{slug}.lock"

    def exists(self, key: RefStatsKey) -> bool:
        npz, sidecar, _ = self.paths(key)
        return npz.is_file() and sidecar.is_file()

    def load(self, key: RefStatsKey) -> RefStats:
        npz, sidecar, _ = self.paths(key)
        stored = json.loads(sidecar.read_text())["key"]
        if stored != key.to_dict():
            raise ProtocolMismatch(f"{sidecar} holds key {stored}, expected {key.to_dict()}")
        with np.load(npz) as z:
            return RefStats(key=key, mu=z["mu"], sigma=z["sigma"], features=z["features"])

    def get_or_compute(self, key: RefStatsKey, compute_fn: Callable[[], np.ndarray]) -> RefStats:
        """Load the entry for ``key``, or compute features with ``compute_fn()`` under a per-key file lock and store them."""
        if self.exists(key):
            return self.load(key)
        _, _, lock = self.paths(key)
        with FileLock(str(lock), timeout=self.lock_timeout):
            if self.exists(key):  # somebody else computed it while we waited
                return self.load(key)
            stats = RefStats.from_features(key, compute_fn())
            self._store(stats)
            self.compute_count += 1
            stats.computed = True
            return stats

    def _store(self, stats: RefStats) -> None:
        npz, sidecar, _ = self.paths(stats.key)
        _atomic_write(npz, lambda f: np.savez(f, mu=stats.mu, sigma=stats.sigma, features=stats.features))
        meta = {"key": stats.key.to_dict(), "slug": stats.key.slug, "feature_dim": int(stats.features.shape[1])}
        _atomic_write(sidecar, lambda f: f.write(json.dumps(meta, indent=2, sort_keys=True).encode()))


def _atomic_write(path: Path, write: Callable[[Any], Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
