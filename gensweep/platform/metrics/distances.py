"""Distances between feature sets: Fréchet distance, KID, improved precision/recall, Inception Score.

All functions are pure, take numpy arrays or torch tensors and compute in float64.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch
from scipy.linalg import lapack

from .statistics import as_float64

__all__ = [
    "trace_sqrt_product",
    "frechet_distance",
    "frechet_distance_sqrtm",
    "kid",
    "precision_recall",
    "inception_score",
]


def _psd_factor(sigma: np.ndarray, method: str) -> np.ndarray:
    """A factor F (D x r) with sigma = F F^T for a symmetric PSD matrix (pivoted Cholesky or eigh)."""
    if method == "cholesky":
        try:  # fast path: positive definite
            return np.linalg.cholesky(sigma)
        except np.linalg.LinAlgError:
            pass
        # semidefinite: LAPACK pivoted Cholesky with rank detection, P^T S P = U^T U
        u, piv, rank, info = lapack.dpstrf(sigma, lower=0, tol=-1.0)
        if info < 0:
            raise np.linalg.LinAlgError(f"dpstrf failed (info={info})")
        u = np.triu(u)[:rank]  # rank x D, in the permuted basis
        factor = np.zeros((sigma.shape[0], rank))
        factor[piv - 1] = u.T  # undo the permutation: sigma = factor @ factor.T
        return factor
    if method == "eigh":
        w, v = np.linalg.eigh(sigma)
        return v * np.sqrt(np.clip(w, 0.0, None))
    raise ValueError(f"unknown method {method!r}; allowed: 'cholesky', 'eigh'")


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, method: str = "cholesky") -> float:
    """tr sqrt(S1 S2) for PSD S1, S2 as sum sqrt(eig(F^T S2 F)), S1 = F F^T (Dowson & Landau 1982).

    F^T S2 F is symmetric PSD and has the same non-zero eigenvalues as S1 S2,
    so no non-symmetric matrix square root (``scipy.linalg.sqrtm``) is needed;
    tiny negative eigenvalues from round-off are clipped to 0.  ``method``
    picks the factor: ``"cholesky"`` (pivoted Cholesky, handles rank-deficient
    S1; fastest) or ``"eigh"`` (F = V sqrt(Lambda) from a symmetric
    eigendecomposition).
    """
    s1 = as_float64(sigma1)
    s2 = as_float64(sigma2)
    s1 = (s1 + s1.T) * 0.5
    s2 = (s2 + s2.T) * 0.5
    f = _psd_factor(s1, method)
    m = f.T @ s2 @ f
    m = (m + m.T) * 0.5
    eig = np.linalg.eigvalsh(m)
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2, method: str = "cholesky") -> float:
    """Fréchet distance between Gaussians N(mu1, S1), N(mu2, S2) via eigenvalues (FID: Heusel et al. 2017)."""
    m1, m2 = as_float64(mu1).ravel(), as_float64(mu2).ravel()
    s1, s2 = as_float64(sigma1), as_float64(sigma2)
    if m1.shape != m2.shape or s1.shape != s2.shape or s1.shape != (m1.size, m1.size):
        raise ValueError(f"shape mismatch: mu {m1.shape} vs {m2.shape}, sigma {s1.shape} vs {s2.shape}")
    diff = m1 - m2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2, method)
    return float(value)


def frechet_distance_sqrtm(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Reference Fréchet distance with ``scipy.linalg.sqrtm`` as in the original FID code (Heusel et al. 2017)."""
    m1, m2 = as_float64(mu1).ravel(), as_float64(mu2).ravel()
    s1, s2 = as_float64(sigma1), as_float64(sigma2)
    diff = m1 - m2
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def kid(
    feats_real,
    feats_fake,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD^2, cubic polynomial kernel, averaged over random subsets (Bińkowski et al. 2018).

    Each subset draws ``subset_size`` rows without replacement from each set
    (``subset_size`` is capped at the smaller set) with a numpy generator
    seeded by ``seed``.  Returns (mean, population std) over subsets.  The
    per-subset MMD^2 estimator is torchmetrics' ``poly_mmd``.
    """
    from torchmetrics.image.kid import poly_mmd

    real = torch.from_numpy(as_float64(feats_real))
    fake = torch.from_numpy(as_float64(feats_fake))
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dims differ: {real.shape[1]} vs {fake.shape[1]}")
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set; got {len(real)} and {len(fake)}")
    rng = np.random.default_rng(seed)
    scores = np.empty(subsets, np.float64)
    for s in range(subsets):
        ir = torch.from_numpy(rng.choice(len(real), m, replace=False))
        jf = torch.from_numpy(rng.choice(len(fake), m, replace=False))
        scores[s] = float(poly_mmd(real[ir], fake[jf], degree=degree, gamma=gamma, coef=coef))
    return float(scores.mean()), float(scores.std())


def _sq_dists(a: torch.Tensor, b: torch.Tensor, a_sq: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    return (a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)).clamp_min_(0.0)


def _knn_radii(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Squared distance of each row of x to its k-th nearest other row (running top-k over column chunks)."""
    sq = (x * x).sum(1)
    radii = torch.empty(len(x), dtype=x.dtype)
    kk = min(k + 1, len(x))  # +1: each point is its own nearest neighbour at distance 0
    for i in range(0, len(x), chunk):
        best = None
        for j in range(0, len(x), chunk):
            d = _sq_dists(x[i : i + chunk], x[j : j + chunk], sq[i : i + chunk], sq[j : j + chunk])
            cand = d if best is None else torch.cat([best, d], dim=1)
            best = torch.topk(cand, min(kk, cand.shape[1]), dim=1, largest=False).values
        radii[i : i + chunk] = best[:, -1]
    return radii


def _coverage(query: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, chunk: int) -> float:
    """Fraction of query rows inside at least one support ball (squared radii ``radii``)."""
    q_sq, s_sq = (query * query).sum(1), (support * support).sum(1)
    inside = torch.zeros(len(query), dtype=torch.bool)
    for i in range(0, len(query), chunk):
        hit = torch.zeros(min(chunk, len(query) - i), dtype=torch.bool)
        for j in range(0, len(support), chunk):
            d = _sq_dists(query[i : i + chunk], support[j : j + chunk], q_sq[i : i + chunk], s_sq[j : j + chunk])
            hit |= (d <= radii[None, j : j + chunk]).any(1)
        inside[i : i + chunk] = hit
    return float(inside.double().mean())


def precision_recall(feats_real, feats_fake, k: int = 3, chunk: int = 2048) -> tuple[float, float]:
    """Improved precision/recall with k-NN hypersphere manifolds (Kynkäänniemi et al. 2019).

    precision = share of fake samples inside the real manifold (union of
    balls around real samples reaching their k-th nearest real neighbour),
    recall = share of real samples inside the fake manifold.  Distances are
    computed in float64 in ``chunk`` x ``chunk`` blocks, so memory stays
    O(chunk^2 + N D) whatever N is.
    """
    real = torch.from_numpy(as_float64(feats_real))
    fake = torch.from_numpy(as_float64(feats_fake))
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dims differ: {real.shape[1]} vs {fake.shape[1]}")
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"precision/recall needs more than k={k} samples per set; got {len(real)} and {len(fake)}")
    precision = _coverage(fake, real, _knn_radii(real, k, chunk), chunk)
    recall = _coverage(real, fake, _knn_radii(fake, k, chunk), chunk)
    return precision, recall


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
    """Inception Score exp(E_x KL(p(y|x) || p(y))) over consecutive splits; (mean, std) (Salimans et al. 2016)."""
    lg = torch.from_numpy(as_float64(logits))
    if lg.ndim != 2 or len(lg) < splits:
        raise ValueError(f"logits must be [N, C] with N >= splits={splits}; got {tuple(lg.shape)}")
    log_p = torch.log_softmax(lg, dim=1)
    scores = []
    for part in torch.tensor_split(log_p, splits):
        log_py = torch.logsumexp(part, dim=0) - np.log(len(part))  # log of the split's marginal p(y)
        kl = (part.exp() * (part - log_py)).sum(1).mean()
        scores.append(float(kl.exp()))
    arr = np.asarray(scores)
    return float(arr.mean()), float(arr.std())
