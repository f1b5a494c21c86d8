"""Reference statistics of real data under readable keys, stored once where every node finds them.

A registry root is a local folder or an ``s3://`` prefix (a sweep's is ``<results root>/refstats``).
Each entry holds ``mu``, ``sigma`` (float64), the ``features`` (float32) that KID and
precision/recall need (absent for imported published statistics) and a real-vs-real FID floor:
the FID between two disjoint random halves of the reference features (:func:`split_half_fid`).
How entries are published once, on local disk and object storage: :class:`RefStatsRegistry`.

Statistics follow the FID recipe of Heusel et al. 2017 (arXiv:1706.08500).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from gensweep.platform.storage.uris import StorageOptions

from .statistics import mean_cov
from .write_once import Lease, WriteOnceFolder

__all__ = ["RefStatsKey", "RefStats", "RefStatsRegistry", "ProtocolMismatch", "dataset_fingerprint", "COMPARED_FIELDS",
           "split_half_fid", "import_published", "REFERENCE_NAME"]

# Names of imported statistics (``eval.reference``, ``gensweep refstats import --name``).
REFERENCE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"

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
    seed: Optional[int] = None  # seed of the random (stratified) subset of n records; None: a fixed set
    label: Optional[int] = None  # the class whose records of the subset these are (intra-class FID); None: all

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.label is None:  # keys made before per-class entries keep their digest
            del out["label"]
        return out

    def of_class(self, label: int, n: int) -> "RefStatsKey":
        """The key of this subset's ``n`` records of class ``label``."""
        return dataclasses.replace(self, n=n, label=int(label))

    @property
    def digest(self) -> str:
        """First 8 hex of the sha256 of the canonical JSON of the key."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:8]

    @property
    def slug(self) -> str:
        """Readable, filesystem-safe cache key, e.g. ``mnist-ab12cd34__train__32px__mnist-lenet-v1-...__n4000__pad__<hash>``."""
        parts = [self.dataset, self.split, f"{self.resolution}px", self.protocol, f"n{self.n}", self.resize]
        if self.seed is not None:
            parts.append(f"seed{self.seed}")
        if self.label is not None:
            parts.append(f"class{self.label}")
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
    """Reference statistics (mu, sigma float64; features float32, None for imported mu/sigma only)
    with the key they were computed under and their real-vs-real FID floor."""

    key: RefStatsKey
    mu: np.ndarray
    sigma: np.ndarray
    features: Optional[np.ndarray]
    computed: bool = field(default=False, compare=False)  # True if this call computed (not loaded) it
    fid_floor: Optional[float] = field(default=None, compare=False)  # None: not available (see the note)
    fid_floor_note: str = field(default="", compare=False)
    classes: dict[int, "RefStats"] = field(default_factory=dict, compare=False)  # per-class entries (intra_fid)

    @classmethod
    def from_features(cls, key: RefStatsKey, features: np.ndarray) -> "RefStats":
        feats = np.asarray(features, dtype=np.float32)
        if feats.ndim != 2 or len(feats) != key.n:
            raise ValueError(f"features shape {feats.shape} does not match key n={key.n}")
        mu, sigma = mean_cov(feats)
        floor, note = split_half_fid(feats, floor_seed(key))
        return cls(key=key, mu=mu, sigma=sigma, features=feats, fid_floor=floor, fid_floor_note=note)

    @classmethod
    def from_moments(cls, key: RefStatsKey, mu: np.ndarray, sigma: np.ndarray) -> "RefStats":
        """Published statistics without their features: no KID / precision-recall, no floor."""
        mu, sigma = np.asarray(mu, np.float64).ravel(), np.asarray(sigma, np.float64)
        if sigma.shape != (mu.size, mu.size):
            raise ValueError(f"sigma shape {sigma.shape} does not match mu of {mu.size} dimensions")
        return cls(key=key, mu=mu, sigma=sigma, features=None, fid_floor=None,
                   fid_floor_note="not available: imported mean and covariance without the features")

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


def floor_seed(key: RefStatsKey) -> int:
    """The split of the floor follows the subset's seed (0 for a fixed set)."""
    return 0 if key.seed is None else int(key.seed)


def split_half_fid(features: np.ndarray, seed: int) -> tuple[Optional[float], str]:
    """Real-vs-real FID floor: the Fréchet distance between two disjoint halves (n // 2 rows
    each, a ``numpy.random.default_rng(seed)`` permutation) of the reference features, and a
    note saying how it was made. FID is biased upward at small N, so this is the floor of a
    score made with n // 2 samples against n // 2 references."""
    from .distances import frechet_distance

    n = len(features)
    half = n // 2
    if half < 2:
        return None, f"not available: {n} reference features cannot be split into two halves of >= 2"
    order = np.random.default_rng(seed).permutation(n)
    mu_a, sigma_a = mean_cov(features[order[:half]])
    mu_b, sigma_b = mean_cov(features[order[half: 2 * half]])
    return frechet_distance(mu_a, sigma_a, mu_b, sigma_b), f"FID between two disjoint random halves of {half} (seed {seed})"


class RefStatsRegistry:
    """Reference statistics by key slug under ``root`` (a local folder or an ``s3://`` prefix).

    An entry is ``<slug>.json`` (the key, the FID floor and the name of the data object: the
    commit marker) and ``<slug>.<token>.npz`` (``mu``, ``sigma``, and ``features`` when known).
    The data object has a name no other writer uses; the sidecar is published create-if-absent
    (:class:`~.write_once.WriteOnceFolder`), so of two processes computing one key the first to
    publish wins, the other drops its copy and loads the winner's, and a crash before the
    sidecar leaves no entry. A lease (``<slug>.lock``) makes the others wait instead of
    computing too. Imported statistics are also reachable by name (``names/<NAME>.json``).
    ``compute_count`` counts computations done by this object."""

    def __init__(self, root: str | os.PathLike, lock_timeout: float = -1, *,
                 storage: Optional[StorageOptions] = None, lease_ttl_s: float = 60.0, poll_s: float = 0.1) -> None:
        self.root = os.fspath(root)
        self.folder = WriteOnceFolder(self.root, storage)
        self.lock_timeout = lock_timeout
        self.lease_ttl_s = lease_ttl_s
        self.poll_s = poll_s
        self.compute_count = 0

    def exists(self, key: RefStatsKey) -> bool:
        return self.folder.exists(f"{key.slug}.json")

    def load(self, key: RefStatsKey) -> RefStats:
        raw = self.folder.read(f"{key.slug}.json")
        if raw is None:
            raise FileNotFoundError(f"no reference statistics {key.slug} under {self.root}")
        meta = json.loads(raw)
        if meta["key"] != key.to_dict():
            raise ProtocolMismatch(f"{self.root}/{key.slug}.json holds key {meta['key']}, expected {key.to_dict()}")
        data = self.folder.read(meta.get("data", f"{key.slug}.npz"))  # entries before write-once: <slug>.npz
        if data is None:
            raise FileNotFoundError(f"{self.root}/{key.slug}.json names {meta.get('data')}, which is missing")
        with np.load(io.BytesIO(data)) as z:
            features = z["features"] if "features" in z.files else None
            stats = RefStats(key=key, mu=z["mu"], sigma=z["sigma"], features=features)
        if "fid_floor" in meta:
            stats.fid_floor, stats.fid_floor_note = meta["fid_floor"], meta.get("fid_floor_note", "")
        elif features is not None:  # an entry written before floors were recorded
            stats.fid_floor, stats.fid_floor_note = split_half_fid(features, floor_seed(key))
        return stats

    def get_or_compute(self, key: RefStatsKey, compute_fn: Callable[[], np.ndarray]) -> RefStats:
        """Load the entry for ``key``; or compute features with ``compute_fn()`` (holding the
        key's lease, so others wait) and publish them."""
        deadline = None if self.lock_timeout < 0 else time.monotonic() + self.lock_timeout
        lease = Lease(self.folder, f"{key.slug}.lock", ttl_s=self.lease_ttl_s)
        while not self.exists(key):
            if lease.acquire():
                try:
                    if self.exists(key):  # published between our look and our lease
                        break
                    stats = self.publish(RefStats.from_features(key, compute_fn()))
                    if stats.computed:
                        self.compute_count += 1
                    return stats
                finally:
                    lease.release()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"reference statistics {key.slug}: still being computed by"
                                   f" {(lease.holder() or {}).get('owner')} after {self.lock_timeout}s")
            time.sleep(self.poll_s)
        return self.load(key)

    def publish(self, stats: RefStats) -> RefStats:
        """Store ``stats`` unless its key has an entry: ``stats`` (``computed``) if this call
        published it, else the entry found."""
        slug = stats.key.slug
        buf = io.BytesIO()
        arrays = {"mu": stats.mu, "sigma": stats.sigma}
        if stats.features is not None:
            arrays["features"] = stats.features
        np.savez(buf, **arrays)
        data_name = f"{slug}.{uuid.uuid4().hex[:12]}.npz"
        self.folder.write(data_name, buf.getvalue())
        meta = {"key": stats.key.to_dict(), "slug": slug, "data": data_name, "feature_dim": int(stats.mu.shape[0]),
                "fid_floor": stats.fid_floor, "fid_floor_note": stats.fid_floor_note,
                "has_features": stats.features is not None}
        if self.folder.create(f"{slug}.json", json.dumps(meta, indent=2, sort_keys=True).encode()):
            stats.computed = True
            return stats
        self.folder.delete(data_name)  # another writer published first: theirs is the entry
        return self.load(stats.key)

    # -- imported statistics, by name ------------------------------------------------------
    def register_name(self, name: str, key: RefStatsKey, source: str) -> None:
        """Make ``name`` refer to the entry of ``key``; a name is never re-pointed."""
        record = json.dumps({"name": name, "key": key.to_dict(), "source": source}, sort_keys=True).encode()
        if not self.folder.create(f"names/{name}.json", record):
            if self.named(name) != key:
                raise FileExistsError(f"reference statistics named {name!r} already exist under {self.root}"
                                      " (with other statistics); choose another --name")

    def named(self, name: str) -> RefStatsKey:
        """The key registered as ``name``; KeyError (listing the known names) if there is none."""
        raw = self.folder.read(f"names/{name}.json")
        if raw is None:
            known = self.names()
            raise KeyError(f"no imported reference statistics named {name!r} under {self.root}; known: "
                           + (", ".join(known) if known else "none (add some with `gensweep refstats import`)"))
        return RefStatsKey(**json.loads(raw)["key"])

    def names(self) -> list[str]:
        return [n[: -len(".json")] for n in self.folder.names("names") if n.endswith(".json")]


def import_published(registry: RefStatsRegistry, name: str, npz: bytes, *, protocol: str, feature_dim: int,
                     resolution: int, resize: str, split: str, n: Optional[int], source: str) -> RefStats:
    """Register published statistics (a pytorch-fid / clean-fid ``.npz`` with ``mu`` and ``sigma``,
    and ``features`` when they were kept) as ``name``, under the protocol they were made with.

    The entry's key names the import and a digest of its content; ``n`` (the number of real
    images behind it) is taken from the features when present, else as given (0: unknown)."""
    try:
        with np.load(io.BytesIO(npz)) as z:
            arrays = {k: z[k] for k in ("mu", "sigma", "features") if k in z.files}
    except (ValueError, OSError) as e:
        raise ValueError(f"{source}: not a .npz file ({e})") from None
    missing = [k for k in ("mu", "sigma") if k not in arrays]
    if missing:
        raise ValueError(f"{source}: no {' or '.join(missing)} array; a statistics file holds mu and sigma")
    mu = np.asarray(arrays["mu"]).ravel()
    if mu.size != feature_dim:
        raise ValueError(f"{source}: mu has {mu.size} dimensions, the backbone's features have {feature_dim}"
                         " (another backbone?)")
    features = arrays.get("features")
    digest = hashlib.sha256(np.ascontiguousarray(mu, np.float64).tobytes()
                            + np.ascontiguousarray(arrays["sigma"], np.float64).tobytes()).hexdigest()[:8]
    count = len(features) if features is not None else int(n or 0)
    key = RefStatsKey(dataset=f"{_safe(name)}-{digest}", split=split, resolution=resolution, protocol=protocol,
                      n=count, resize=resize)
    if features is not None:
        stats = RefStats.from_features(key, features)
    else:
        stats = RefStats.from_moments(key, mu, arrays["sigma"])
    stats = registry.publish(stats)
    registry.register_name(name, key, source)
    return stats
