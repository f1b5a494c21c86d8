"""``torchvision:NAME``: ``torchvision.datasets.NAME`` (train split); needs torchvision installed
and, unless already downloaded, network access."""
from __future__ import annotations

import importlib
import importlib.util
import os

import numpy as np

from gensweep.platform.data.sources.base import ArraySource, Source, SourceError, as_labels, as_uint8_images
from gensweep.platform.data.sources.registry import register_source


def _torchvision_root() -> str:
    return os.environ.get("GENSWEEP_TORCHVISION_ROOT",
                          os.path.join(os.path.expanduser("~"), ".cache", "gensweep", "torchvision"))


def _torchvision_source(name: str, storage=None) -> Source:
    if not name:
        raise SourceError("torchvision source needs a dataset name, e.g. 'torchvision:CIFAR10'")
    if importlib.util.find_spec("torchvision") is None:
        raise SourceError(
            f"source 'torchvision:{name}' needs the torchvision package, which is not installed "
            f"(and downloading needs network access); use 'mnist', an image folder or .npz/.npy instead"
        )
    datasets = importlib.import_module("torchvision.datasets")
    cls = getattr(datasets, name, None)
    if cls is None:
        raise SourceError(f"torchvision.datasets has no dataset named {name!r}")
    root = _torchvision_root()
    try:
        ds = cls(root=root, train=True, download=False)
    except Exception:  # noqa: BLE001 - not cached yet: try to download
        try:
            ds = cls(root=root, train=True, download=True)
        except Exception as exc:  # noqa: BLE001
            raise SourceError(
                f"torchvision dataset {name!r} is not cached under {root!r} and could not be "
                f"downloaded (network access is needed): {exc}"
            ) from exc
    if hasattr(ds, "data") and hasattr(ds, "targets"):
        data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
        targets = ds.targets.numpy() if hasattr(ds.targets, "numpy") else np.asarray(ds.targets)
    else:
        pairs = [(np.asarray(img), target) for img, target in ds]
        data = np.stack([p[0] for p in pairs])
        targets = np.asarray([p[1] for p in pairs])
    images = as_uint8_images(data, f"torchvision:{name}")
    classes = getattr(ds, "classes", None)
    names = {i: str(c) for i, c in enumerate(classes)} if classes else None
    return ArraySource(images, as_labels(targets, images.shape[0], name), f"torchvision:{name}", names)


register_source("torchvision", _torchvision_source)
