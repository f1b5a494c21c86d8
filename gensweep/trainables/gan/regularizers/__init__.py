"""Regularizers and constraints, built by name; importing this package registers them all."""
from gensweep.trainables.gan.regularizers import (  # noqa: F401  (registration)
    consistency,
    constraints,
    path_length,
    penalties,
)
from gensweep.trainables.gan.regularizers.base import (
    REGULARIZERS,
    SEPARATOR,
    Regularizer,
    build_regularizers,
    reg_names,
)

__all__ = ["REGULARIZERS", "SEPARATOR", "Regularizer", "build_regularizers", "reg_names"]
