"""Reference values of the registered metrics, recomputed with NumPy/SciPy from the papers' formulas:
FID with ``scipy.linalg.sqrtm`` (Heusel et al. 2017), KID's unbiased MMD^2 with the cubic kernel
``(x.y / d + 1)^3`` over subsets of the protocol's size (Bińkowski et al. 2018), precision/recall
with k-NN radii to the k-th *nearest* neighbour (Kynkäänniemi et al. 2019), and the Inception
Score ``exp E KL(p(y|x) || p(y))`` per split (Salimans et al. 2016), and intra-class FID: the mean
over classes of the FID between class k's samples and class k's reference records (Miyato & Koyama
2018)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.linalg
from scipy.spatial.distance import cdist

from gensweep.platform.metrics.protocol import EvalProtocol
from gensweep.platform.metrics.refstats import RefStats, RefStatsKey
from gensweep.testing.reference_gan import close

D = 4


def _sets(n_real: int = 40, n_fake: int = 30):
    rng = np.random.default_rng(11)
    real = rng.normal(size=(n_real, D)).astype(np.float32)
    fake = (rng.normal(size=(n_fake, D)) * 1.3 + 0.4).astype(np.float32)
    logits = (rng.normal(size=(n_fake, 6)) * 2).astype(np.float32)
    key = RefStatsKey(dataset="toy", split="train", resolution=8, protocol="toy", n=n_real, resize="none")
    return RefStats.from_features(key, real), {"features": fake, "logits": logits}


def _fid(real, fake, protocol):
    r, f = real.astype(np.float64), fake.astype(np.float64)
    s1, s2 = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    covmean = np.real(scipy.linalg.sqrtm(s1 @ s2))
    diff = r.mean(0) - f.mean(0)
    return {"fid": diff @ diff + np.trace(s1 + s2 - 2 * covmean)}


def _mmd_unbiased(x, y):
    k = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    m = len(x)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    off = lambda a: (a.sum() - np.trace(a)) / (m * (m - 1))  # noqa: E731
    return off(kxx) + off(kyy) - 2 * kxy.mean()


def _kid(real, fake, protocol):
    rng = np.random.default_rng(protocol.kid_seed)
    m = min(protocol.kid_subset_size, len(real), len(fake))
    scores = []
    for _ in range(protocol.kid_subsets):
        i, j = rng.choice(len(real), m, replace=False), rng.choice(len(fake), m, replace=False)
        scores.append(_mmd_unbiased(real[i].astype(np.float64), fake[j].astype(np.float64)))
    return {"kid": np.mean(scores), "kid_std": np.std(scores)}


def _inside(query, support, k):
    radii = np.sort(cdist(support, support), axis=1)[:, k]  # column 0 is the point itself
    return (cdist(query, support) <= radii[None, :] + 1e-9).any(1).mean()


def _pr(real, fake, protocol):
    if len(real) > len(fake):  # the metric's fixed equal-size subset of the real set
        real = real[np.sort(np.random.default_rng(0).choice(len(real), len(fake), replace=False))]
    r, f = real.astype(np.float64), fake.astype(np.float64)
    return {"precision": _inside(f, r, protocol.pr_k), "recall": _inside(r, f, protocol.pr_k)}


def _is(logits, splits):
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(0)
        scores.append(np.exp((part * (np.log(part) - np.log(py))).sum(1).mean()))
    return scores


def _is_ref(real, fake, protocol, logits):
    scores = _is(logits.astype(np.float64), protocol.is_splits)
    return {"is": np.mean(scores), "is_std": np.std(scores)}


# protocols whose options each reference must honour (two values of each option the metric reads)
_PROTOCOLS = {
    "fid": [EvalProtocol(metrics=("fid",))],
    "kid": [EvalProtocol(metrics=("kid",), kid_subsets=s, kid_subset_size=m, kid_seed=seed)
            for s, m, seed in ((3, 10, 0), (4, 20, 1))],
    "pr": [EvalProtocol(metrics=("pr",), pr_k=k) for k in (1, 3)],
    "is": [EvalProtocol(metrics=("is",), is_splits=s) for s in (1, 3)],
}
_REFERENCES = {"fid": _fid, "kid": _kid, "pr": _pr}


def _metric_case(name: str, metric) -> None:
    ref, fake = _sets()
    for protocol in _PROTOCOLS[name]:
        got = metric(fake, ref, protocol)
        if name == "is":
            want = _is_ref(ref.features, fake["features"], protocol, fake["logits"])
        else:
            want = _REFERENCES[name](ref.features, fake["features"], protocol)
        assert list(got) == list(want), (name, list(got))
        for column in got:
            close(got[column], want[column], rtol=1e-6, atol=1e-9)


def _intra_fid_case(name: str, metric) -> None:
    """Three classes with their own means and spreads; samples drawn unevenly across them."""
    rng = np.random.default_rng(12)
    real = {k: (rng.normal(size=(12 + 4 * k, D)) * (1.0 + 0.5 * k) + 2.0 * k).astype(np.float32) for k in range(3)}
    labels = np.array([0] * 9 + [1] * 6 + [2] * 11)
    fake = (rng.normal(size=(len(labels), D)) * 1.2 + 1.7 * labels[:, None] + 0.3).astype(np.float32)
    key = RefStatsKey(dataset="toy", split="train", resolution=8, protocol="toy", n=sum(map(len, real.values())),
                      resize="none")
    ref = RefStats.from_features(key, np.concatenate(list(real.values())))
    ref.classes = {k: RefStats.from_features(key.of_class(k, len(v)), v) for k, v in real.items()}
    got = metric({"features": fake, "labels": labels}, ref, EvalProtocol(metrics=("intra_fid",)))
    want = np.mean([_fid(real[k], fake[labels == k], None)["fid"] for k in range(3)])
    assert list(got) == ["intra_fid"], list(got)
    close(got["intra_fid"], want, rtol=1e-6, atol=1e-9)
    pooled = _fid(ref.features, fake, None)["fid"]  # not the FID of the pooled sets
    assert abs(pooled - want) > 0.1 * want, (pooled, want)


METRIC_CASES: dict[str, Callable] = {**{name: _metric_case for name in _PROTOCOLS}, "intra_fid": _intra_fid_case}
