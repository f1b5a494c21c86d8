"""A grid of real images beside the generated ones: the first records of the dataset the
sweep trained on (found from the ``data:`` section of the spec saved with the experiment)."""
from __future__ import annotations

import io
from typing import Any

import numpy as np

GRID_SIDE = 4  # a 4 x 4 grid
PAD = 2  # pixels between tiles


def tile(images: np.ndarray, side: int = GRID_SIDE, pad: int = PAD) -> np.ndarray:
    """``(N, H, W, C)`` uint8 images as one ``side`` x ``side`` grid on white (missing tiles blank)."""
    n, h, w, c = images.shape
    out = np.full((side * (h + pad) + pad, side * (w + pad) + pad, c), 255, dtype=np.uint8)
    for k in range(min(n, side * side)):
        r, col = divmod(k, side)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = images[k]
    return out


def png(grid: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(buf, format="PNG")
    return buf.getvalue()


def real_grid(spec: dict[str, Any], root: str) -> tuple[bytes | None, str]:
    """``(PNG, description)`` of the first records of the sweep's dataset, or ``(None, why not)``."""
    from pydantic import ValidationError

    from gensweep.platform.data import DatasetNotFoundError, read_arrays
    from gensweep.platform.data.ensure import dataset_uri, storage_of
    from gensweep.platform.spec.experiment import DataConfig

    try:
        data = DataConfig.model_validate(spec.get("data") or {})
    except ValidationError as e:
        return None, f"the saved spec's data section is not valid ({e.error_count()} errors)"
    uri = dataset_uri(data, root)
    try:
        images, _ = read_arrays(uri, storage_of(data), limit=GRID_SIDE * GRID_SIDE)
    except DatasetNotFoundError:
        return None, f"the dataset is not at {uri} (prepared elsewhere, or removed)"
    except Exception as e:  # noqa: BLE001 - the report goes on without the real grid
        return None, f"cannot read the dataset at {uri}: {type(e).__name__}"
    if images.shape[-1] not in (1, 3):
        return None, f"the dataset at {uri} has {images.shape[-1]} channels"
    return png(tile(images)), f"real data: the first {len(images)} records of {data.source} ({uri})"
