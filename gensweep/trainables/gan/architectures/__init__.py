"""Generator/discriminator architectures, built by name: ``ARCHITECTURES.get(name)(ArchSpec) -> (G, D)``.

Each module registers one architecture; importing this package registers them all.
"""
from gensweep.trainables.gan.architectures import biggan, dcgan, fastgan, resnet, stylegan2  # noqa: F401  (registration)
from gensweep.trainables.gan.architectures.base import (
    ARCHITECTURES,
    ArchSpec,
    Builder,
    start_resolution,
)

__all__ = ["ARCHITECTURES", "ArchSpec", "Builder", "start_resolution"]
