"""Feature backbones: a common interface and a registry by name.

A backbone maps a batch of images (float NCHW in [-1, 1], 1 or 3 channels,
any spatial size) to a dict with ``"features"`` (float32 ``[N, feature_dim]``)
and, when ``has_logits`` is true, ``"logits"``.  Each backbone converts
channels and resizes by itself; the exact input handling is summarised in
its ``protocol`` string, which is stored with every reference statistic and
every metric value so that numbers made under different protocols are never
compared.

Built-in names:

* ``mnist-lenet``      -- small CPU digit classifier (:mod:`.mnist_net`).
* ``inception-v3-tf``  -- TF Inception 2015-12-05 used by published FIDs
  (:mod:`.inception`).
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["Backbone", "BackboneRegistry", "BACKBONES", "get_backbone", "to_channels", "resize_bilinear", "sha256_file"]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (weights files are pinned by it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class Backbone(nn.Module):
    """Base class of feature extractors (FID: Heusel et al. 2017, arXiv:1706.08500)."""

    name: str = ""
    feature_dim: int = 0
    has_logits: bool = False
    protocol: str = ""

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this backbone cannot be built on this machine (e.g. weights not installed); None if it can."""
        return None

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Map [-1, 1] NCHW images to the network's own input."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def extra_repr(self) -> str:
        return f"name={self.name!r}, feature_dim={self.feature_dim}, protocol={self.protocol!r}"


def check_images(images: torch.Tensor) -> torch.Tensor:
    """Validate an image batch (float NCHW, 1 or 3 channels) and return it as float32."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"images must be NCHW (4-d), got shape {tuple(images.shape)}")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {images.shape[1]} (shape {tuple(images.shape)})")
    if images.dtype == torch.uint8:
        raise TypeError("images must be float in [-1, 1]; convert uint8 with x / 127.5 - 1")
    return images.to(torch.float32)


# ITU-R BT.601 luma weights (the ones PIL uses for RGB -> "L").
_LUMA = (0.299, 0.587, 0.114)


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert 1 <-> 3 channels: gray is replicated; RGB -> gray uses BT.601 luma (0.299, 0.587, 0.114)."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1)
    if c == 3 and channels == 1:
        w = images.new_tensor(_LUMA).view(1, 3, 1, 1)
        return (images * w).sum(dim=1, keepdim=True)
    raise ValueError(f"cannot convert {c} channels to {channels}")


def resize_bilinear(images: torch.Tensor, size: int, *, antialias: bool) -> torch.Tensor:
    """Bilinear resize to ``size`` x ``size`` (torch, align_corners=False); no-op when already that size."""
    if images.shape[-2] == size and images.shape[-1] == size:
        return images
    return nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)


class BackboneRegistry(Mapping[str, Callable[..., Backbone]]):
    """Name -> backbone factory.  Built-ins are registered as lazy ``"module:attr"`` paths."""

    def __init__(self) -> None:
        self._entries: dict[str, Callable[..., Backbone] | str] = {}

    def register(self, name: str, factory: Callable[..., Backbone] | str, *, overwrite: bool = False) -> None:
        if name in self._entries and not overwrite:
            raise ValueError(f"backbone {name!r} is already registered")
        self._entries[name] = factory

    def __getitem__(self, name: str) -> Callable[..., Backbone]:
        try:
            entry = self._entries[name]
        except KeyError:
            raise KeyError(f"unknown backbone {name!r}; allowed names: {', '.join(sorted(self._entries))}") from None
        if isinstance(entry, str):
            module, attr = entry.split(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[name] = entry
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


BACKBONES = BackboneRegistry()
BACKBONES.register("mnist-lenet", "gensweep.platform.metrics.mnist_net:MnistLeNetBackbone")
BACKBONES.register("inception-v3-tf", "gensweep.platform.metrics.inception:InceptionV3TF")


def get_backbone(name: str, **kw: Any) -> Backbone:
    """Build the backbone registered as ``name`` (eval mode, no grad); unknown names raise KeyError."""
    backbone = BACKBONES[name](**kw)
    backbone.eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    return backbone
