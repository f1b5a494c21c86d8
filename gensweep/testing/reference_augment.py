"""Reference values of the augmentations: DiffAugment's transforms (Zhao et al. 2020) recomputed in
NumPy with the same random draws, taken from the same seed in the same order as the transform."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from gensweep.testing.reference_gan import _np, close

SHAPE = (4, 3, 8, 8)


def _uniform(n: int) -> np.ndarray:
    return _np(torch.rand(n, 1, 1, 1))


def color_np(x: np.ndarray) -> np.ndarray:
    """Brightness + U[-0.5, 0.5), saturation x U[0, 2), contrast x U[0.5, 1.5) (about the means)."""
    x = x + (_uniform(len(x)) - 0.5)
    m = x.mean(1, keepdims=True)
    x = (x - m) * (2 * _uniform(len(x))) + m
    m = x.mean((1, 2, 3), keepdims=True)
    return (x - m) * (_uniform(len(x)) + 0.5) + m


def translation_np(x: np.ndarray) -> np.ndarray:
    """Each image moved by (tx, ty) in [-h/8, h/8] pixels, zeros shifted in: out[a, b] = x[a + tx, b + ty]."""
    n, _, h, w = x.shape
    sh, sw = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
    tx = torch.randint(-sh, sh + 1, (n, 1, 1)).numpy().ravel()
    ty = torch.randint(-sw, sw + 1, (n, 1, 1)).numpy().ravel()
    out = np.zeros_like(x)
    for i in range(n):
        for a in range(h):
            for b in range(w):
                if 0 <= a + tx[i] < h and 0 <= b + ty[i] < w:
                    out[i, :, a, b] = x[i, :, a + tx[i], b + ty[i]]
    return out


def cutout_np(x: np.ndarray) -> np.ndarray:
    """A square of half the size centred at (ox, oy) (drawn in [0, h + 1 - size % 2)) set to zero."""
    n, _, h, w = x.shape
    ch, cw = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (n, 1, 1)).numpy().ravel()
    oy = torch.randint(0, w + (1 - cw % 2), (n, 1, 1)).numpy().ravel()
    out = x.copy()
    for i in range(n):
        rows = slice(max(ox[i] - ch // 2, 0), max(ox[i] - ch // 2 + ch, 0))
        cols = slice(max(oy[i] - cw // 2, 0), max(oy[i] - cw // 2 + cw, 0))
        out[i, :, rows, cols] = 0
    return out


def _case(*transforms: Callable[[np.ndarray], np.ndarray]) -> Callable[[str, Callable], None]:
    def check(name: str, aug: Callable) -> None:
        for seed in (0, 1):
            x = torch.rand(SHAPE, generator=torch.Generator().manual_seed(10 + seed)) * 2 - 1
            torch.manual_seed(seed)
            out = aug(x)
            torch.manual_seed(seed)
            expected = _np(x)
            for t in transforms:
                expected = t(expected)
            close(out, expected, rtol=1e-5, atol=1e-5)

    return check


AUG_CASES: dict[str, Callable] = {
    "none": _case(),
    "diffaug": _case(color_np, translation_np, cutout_np),
    "diffaug-translation": _case(translation_np),
    "diffaug-color": _case(color_np),
    "diffaug-cutout": _case(cutout_np),
}
POLICY_CASES: dict[str, Callable] = {"color": _case(color_np), "translation": _case(translation_np), "cutout": _case(cutout_np)}
