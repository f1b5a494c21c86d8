"""Sample grids as PNG bytes (no torchvision needed)."""
from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """NCHW in [-1, 1] -> NHWC uint8."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def grid(images: torch.Tensor, pad: int = 2, columns: int | None = None) -> np.ndarray:
    """Tile a batch into one HWC uint8 image: ``columns`` per row, else as square as possible."""
    x = to_uint8(images)
    n, h, w, c = x.shape
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        y0, x0 = pad + r * (h + pad), pad + col * (w + pad)
        out[y0 : y0 + h, x0 : x0 + w] = x[i]
    return out


def png_bytes(images: torch.Tensor, columns: int | None = None) -> bytes:
    g = grid(images, columns=columns)
    img = Image.fromarray(g[..., 0] if g.shape[-1] == 1 else g)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
