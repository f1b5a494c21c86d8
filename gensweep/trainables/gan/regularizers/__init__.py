"""Regularizers and constraints, built by name; importing this package registers them all."""
from gensweep.trainables.gan.regularizers import consistency, constraints, penalties  # noqa: F401  (registration)
from gensweep.trainables.gan.regularizers.base import (
    REGULARIZERS,
    SEPARATOR,
    Regularizer,
    build_regularizers,
    reg_names,
)

__all__ = ["REGULARIZERS", "SEPARATOR", "Regularizer", "build_regularizers", "reg_names"]
