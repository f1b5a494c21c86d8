"""The sweep's TensorBoard writer: Tune's ``TBXLoggerCallback`` with the training step as x axis
and each evaluation's sample grid as an image.

Tune's own writer puts every scalar at the trial's Tune iteration (one per report), which is
neither comparable across ``eval_every`` settings nor what the store and the Optuna study call a
step. Handing it the result's ``step`` as ``timesteps_total`` (which it prefers) moves every scalar
to the training step. Passing this callback to the run also stops Tune from adding its default one.
"""
from __future__ import annotations

import io
import logging
from typing import Any, Mapping, Optional

import numpy as np
from ray.tune.logger import TBXLoggerCallback
from ray.tune.result import TIMESTEPS_TOTAL

from gensweep.platform.storage.artifacts import get_bytes
from gensweep.platform.storage.uris import StorageOptions

logger = logging.getLogger(__name__)

SAMPLES_TAG = "samples"


def grid_pixels(png: bytes) -> np.ndarray:
    """An HWC uint8 array of a PNG (a grayscale grid gets its one channel axis)."""
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)))
    return pixels[..., None] if pixels.ndim == 2 else pixels


class SweepTensorBoard(TBXLoggerCallback):
    def __init__(self, storage: Optional[StorageOptions] = None):
        super().__init__()
        self.storage = storage

    def log_trial_result(self, iteration: int, trial: Any, result: Mapping[str, Any]) -> None:
        step = result.get("step")
        if step is None:  # not a training report (Tune's bookkeeping): as Tune would
            super().log_trial_result(iteration, trial, dict(result))
            return
        super().log_trial_result(iteration, trial, {**result, TIMESTEPS_TOTAL: int(step)})
        grid = result.get("sample_grid")
        if isinstance(grid, str) and grid:
            try:
                pixels = grid_pixels(get_bytes(grid, self.storage))
            except Exception:  # noqa: BLE001 - a missing grid must not stop the sweep's logging
                logger.warning("no TensorBoard image for %s (step %s)", grid, step, exc_info=True)
                return
            writer = self._trial_writer[trial]
            writer.add_image(SAMPLES_TAG, pixels, global_step=int(step), dataformats="HWC")
            writer.flush()


def sweep_tensorboard(storage: Optional[StorageOptions] = None) -> SweepTensorBoard:
    """The TensorBoard callback of a sweep; ``storage``: options to read ``s3://`` sample grids."""
    return SweepTensorBoard(storage)


