"""Trainable families by name: each is a config model, a loop ``train(ctx)`` and the evaluation
samplers of one of its checkpoints (for re-scoring it later)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch
from pydantic import BaseModel, ValidationError

from gensweep.trainables.context import SampleFn, TrialContext
from gensweep.trainables.diffusion.config import DiffusionConfig
from gensweep.trainables.diffusion.trainable import (
    checkpoint_samplers as diffusion_samplers,
)
from gensweep.trainables.diffusion.trainable import train_diffusion
from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.config import violations as gan_violations
from gensweep.trainables.gan.trainable import checkpoint_samplers as gan_samplers
from gensweep.trainables.gan.trainable import train_gan
from gensweep.trainables.registry import Registry


@dataclass(frozen=True)
class Family:
    config: type[BaseModel]
    train: Callable[[TrialContext], dict[str, Any]]
    # checkpoint state -> [(tag, sample_fn)]: what the loop scores at each evaluation; a non-empty
    # tag suffixes that setting's metric names (``fid/<tag>``), the first setting is also unsuffixed
    samplers: Callable[[dict[str, Any], torch.device], list[tuple[str, SampleFn]]]
    rules: Optional[Callable[[Mapping[str, Any]], list[str]]] = None  # combination rules, if any
    reports: tuple[str, ...] = ()  # metrics the loop reports at every eval beside the evaluation's scores

    def violations(self, config: Mapping[str, Any]) -> list[str]:
        """Why ``config`` cannot run (field errors, then combination rules); [] when it can."""
        if self.rules is not None:
            return self.rules(config)
        try:
            self.config.model_validate(dict(config))
        except ValidationError as e:
            return [f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
        return []


FAMILIES: Registry[Family] = Registry("trainable family")
FAMILIES.register("gan", ref="Goodfellow et al. 2014, Generative Adversarial Nets")(
    Family(GanConfig, train_gan, gan_samplers, gan_violations, reports=("params",)))
FAMILIES.register("diffusion", ref="Ho et al. 2020, Denoising Diffusion Probabilistic Models; Lipman et al. 2023, Flow Matching")(
    Family(DiffusionConfig, train_diffusion, diffusion_samplers, reports=("params", "nfe")))
