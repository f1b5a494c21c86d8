"""Feature statistics: the Gaussian fit (mean, covariance) used by FID (Heusel et al. 2017, arXiv:1706.08500)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_float64", "mean_cov"]


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def as_float64(x: Any) -> np.ndarray:
    """Any numpy array / torch tensor -> float64 numpy array (copy only when needed)."""
    return np.asarray(_to_numpy(x), dtype=np.float64)


def mean_cov(features: Any, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased (ddof=1) covariance of [N, D] features (numpy or torch) in float64, accumulated in row chunks."""
    feats = _to_numpy(features)
    if feats.ndim != 2:
        raise ValueError(f"features must be [N, D]; got shape {feats.shape}")
    n, d = feats.shape
    if n < 2:
        raise ValueError(f"need at least 2 samples for a covariance; got {n}")
    mu = np.zeros(d, np.float64)
    for i in range(0, n, chunk):
        mu += feats[i : i + chunk].sum(axis=0, dtype=np.float64)
    mu /= n
    sigma = np.zeros((d, d), np.float64)
    for i in range(0, n, chunk):
        c = feats[i : i + chunk].astype(np.float64) - mu
        sigma += c.T @ c
    sigma /= n - 1
    return mu, (sigma + sigma.T) * 0.5
