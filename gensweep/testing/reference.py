"""Reference-value suite: every registered loss, regularizer, augmentation, noise schedule,
parameterization, loss weighting, sampler and metric, plus both EMA updates, computed on fixed
seeded inputs and compared with values derived independently from the paper's formula
(NumPy/SciPy; see :mod:`.reference_gan`, :mod:`.reference_augment`, :mod:`.reference_diffusion`,
:mod:`.reference_metrics`).

The suite is parametrized over the registries when pytest collects it, so a component registered
without a reference case fails ``test_reference_value``. A new component adds its case to
``cases`` (a subclass may extend :data:`REFERENCE_CASES`)::

    class TestMine(ReferenceSuite):
        cases = {**REFERENCE_CASES, "loss": {**REFERENCE_CASES["loss"], "my-loss": check_my_loss}}
        only = {"loss": ["my-loss"]}

A case is ``check(name, component)``: it raises (an assertion) when the component's values differ
from the reference.
"""
from __future__ import annotations

from typing import Callable, ClassVar, Mapping

import pytest

from gensweep.platform.metrics.protocol import METRICS
from gensweep.testing.reference_augment import AUG_CASES, POLICY_CASES
from gensweep.testing.reference_diffusion import (
    EMA_CASES,
    PREDICTION_CASES,
    SAMPLER_CASES,
    SCHEDULE_CASES,
    WEIGHTING_CASES,
    check_ema,
)
from gensweep.testing.reference_gan import LOSS_CASES, REG_CASES
from gensweep.testing.reference_metrics import METRIC_CASES
from gensweep.testing.registries import RegistrySuite
from gensweep.trainables.diffusion.objectives import WEIGHTINGS
from gensweep.trainables.diffusion.parameterization import PREDICTIONS
from gensweep.trainables.diffusion.samplers import SAMPLERS
from gensweep.trainables.diffusion.schedules import PATHS
from gensweep.trainables.gan.augment import AUG_POLICIES, AUGMENTATIONS
from gensweep.trainables.gan.losses import LOSSES
from gensweep.trainables.gan.regularizers import REGULARIZERS
from gensweep.trainables.registry import Registry

Case = Callable[[str, object], None]

REFERENCE_REGISTRIES: dict[str, Registry] = {
    "loss": LOSSES,
    "reg": REGULARIZERS,
    "aug": AUGMENTATIONS,
    "aug_policy": AUG_POLICIES,
    "schedule": PATHS,
    "prediction": PREDICTIONS,
    "weighting": WEIGHTINGS,
    "sampler": SAMPLERS,
    "metric": METRICS,
}

REFERENCE_CASES: dict[str, Mapping[str, Case]] = {
    "loss": LOSS_CASES,
    "reg": REG_CASES,
    "aug": AUG_CASES,
    "aug_policy": POLICY_CASES,
    "schedule": SCHEDULE_CASES,
    "prediction": PREDICTION_CASES,
    "weighting": WEIGHTING_CASES,
    "sampler": SAMPLER_CASES,
    "metric": METRIC_CASES,
}


class ReferenceSuite(RegistrySuite):
    """Each registered component against its reference case (see the module docstring)."""

    registries: ClassVar[Mapping[str, Registry]] = REFERENCE_REGISTRIES
    cases: ClassVar[Mapping[str, Mapping[str, Case]]] = REFERENCE_CASES
    ema_updates: ClassVar[Mapping[str, Callable]] = EMA_CASES

    def test_reference_value(self, component):
        key, name = component
        case = self.cases.get(key, {}).get(name)
        assert case is not None, f"{key}={name!r} is registered without a reference case: add one to {type(self).__name__}.cases[{key!r}]"
        case(name, self.registries[key].get(name))

    @pytest.mark.parametrize("which", sorted(EMA_CASES))
    def test_ema_update(self, which):
        if self.only is not None:
            pytest.skip("the EMA updates are not registry components")
        check_ema(self.ema_updates[which])
