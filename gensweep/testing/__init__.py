"""Conformance suites shipped with gensweep: plain pytest classes that a component's tests inherit.

* :class:`gensweep.testing.results.ResultsBackendSuite` -- a results-store backend: the
  :class:`~gensweep.platform.results.Backend` contract (atomic writes, listing, hidden names,
  URIs, credential-free options) and the :class:`~gensweep.platform.results.ResultsStore`
  behaviour on top of it. Subclass it and provide a ``backend_root`` fixture.
* :class:`gensweep.testing.samplers.SamplerSuite` -- every registered diffusion sampler.
* :class:`gensweep.testing.gan.GanComponentSuite` -- every registered GAN ingredient (losses,
  regularizers, augmentations, architectures, conditionings, DynamicD schedules).

The registry suites parametrize their tests over the registries when pytest collects them, so
a component registered before collection (in a ``conftest.py`` or at import of the test
module) is checked without editing anything; ``only`` narrows a subclass to some names::

    from gensweep.testing.gan import GanComponentSuite

    class TestMyLoss(GanComponentSuite):
        only = {"loss": ["my-loss"]}

pytest is a test dependency, so importing this package needs it installed.
"""
import pkgutil

import pytest

# Plain ``assert`` in the suites reports values like an assert in a test module (the modules
# are named one by one: this package itself is already being imported).
pytest.register_assert_rewrite(*(f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)))
