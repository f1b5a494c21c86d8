"""Trainable families by name: each is a config model plus a loop ``train(ctx)``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel

from gensweep.trainables.context import TrialContext
from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.trainable import train_gan
from gensweep.trainables.registry import Registry


@dataclass(frozen=True)
class Family:
    config: type[BaseModel]
    train: Callable[[TrialContext], dict[str, Any]]


FAMILIES: Registry[Family] = Registry("trainable family")
FAMILIES.register("gan", ref="Goodfellow et al. 2014, Generative Adversarial Nets")(Family(GanConfig, train_gan))
