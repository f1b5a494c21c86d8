"""The conformance suites of gensweep.testing can fail: each is run (by pytest itself, in a
subprocess, as a user would) on a well-behaved toy component, which passes, and on deliberately
broken toys, which fail exactly the tests of the broken promise.

A subprocess, not pytester's in-process run: that one drops the modules the run imported
(torch imports some lazily) and torch does not survive being imported twice; a fresh process
also lets the generated module register its toys the way a user's test module would."""
from __future__ import annotations

import os
import time
from collections import Counter

import torch.nn.functional as F

from gensweep.platform.results import LocalBackend
from gensweep.trainables.diffusion.samplers import SAMPLERS
from gensweep.trainables.gan.losses import AdversarialLoss
from gensweep.trainables.gan.regularizers import Regularizer
from gensweep.trainables.gan.terms import Term

pytest_plugins = ["pytester"]

TOY_REF = "a toy of tests/test_testing_suites.py"


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_suite(pytester, monkeypatch, source: str) -> tuple[Counter, list[str], int]:
    """Run a generated test module; (failed test functions counted by name, failed node ids, passed count).
    The repository root goes on the subprocess's path, so the toy module imports this file's toys."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    pytester.makepyfile(test_toy="import torch\ntorch.set_num_threads(1)\n" + source)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-rf", timeout=600)
    ids = [line.split(" ", 1)[1].split(" - ", 1)[0] for line in result.outlines if line.startswith("FAILED ")]
    passed = result.parseoutcomes().get("passed", 0)
    return Counter(i.split("::")[-1].split("[")[0] for i in ids), ids, passed


# ----------------------------------------------------------------------------- results-store backends


class ToyBackend(LocalBackend):
    """A user's backend: local files behind a URI scheme of its own."""

    scheme = "toy"

    @classmethod
    def from_uri(cls, uri, **options):
        return cls(**options), uri[len(cls.scheme + "://"):]

    def uri(self, path):
        return f"{self.scheme}://{path}"


class ToyTornWrites(ToyBackend):
    """Writes in place: a reader can see half an object."""

    scheme = "toy-torn"

    def write_bytes(self, path, data):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data[: len(data) // 2])
            handle.flush()
            time.sleep(0.02)
            handle.write(data[len(data) // 2:])


class ToyShowsHidden(ToyBackend):
    """Lists temp files and markers too."""

    scheme = "toy-hidden"

    def list(self, prefix):
        return sorted(os.path.join(folder, f) for folder, _dirs, files in os.walk(prefix) for f in files)


BACKEND_SUITE = """
import pytest
from gensweep.platform.results import register_backend
from gensweep.testing.results import ResultsBackendSuite
from tests.test_testing_suites import ToyBackend, ToyShowsHidden, ToyTornWrites

for toy in (ToyBackend, ToyTornWrites, ToyShowsHidden):
    register_backend(toy.scheme, toy.from_uri)

class TestToy(ResultsBackendSuite):
    @pytest.fixture
    def backend_root(self, tmp_path):
        return ToyBackend(), str(tmp_path / "results")

class TestTorn(TestToy):
    @pytest.fixture
    def backend_root(self, tmp_path):
        return ToyTornWrites(), str(tmp_path / "results")

class TestHidden(TestToy):
    @pytest.fixture
    def backend_root(self, tmp_path):
        return ToyShowsHidden(), str(tmp_path / "results")
"""


def test_backend_suite_passes_a_good_backend_and_fails_broken_ones(pytester, monkeypatch):
    failed, ids, passed = run_suite(pytester, monkeypatch, BACKEND_SUITE)
    assert failed == Counter({"test_write_is_atomic_for_concurrent_readers": 1,
                              "test_list_is_recursive_sorted_and_skips_hidden_names": 1,
                              "test_hidden_and_foreign_files_are_ignored": 1}), ids
    assert {i.split("::")[1] for i in ids} == {"TestTorn", "TestHidden"}
    assert all(("TestTorn" in i) == ("atomic" in i) for i in ids), ids
    assert passed == 3 * 22 - 3


# ----------------------------------------------------------------------------- diffusion samplers


def toy_global_rng(denoise, path, noise, steps, *, generator=None, eta=0.0):
    """Ancestral sampling whose fresh noise comes from torch's global RNG, not ``generator``."""
    return SAMPLERS.get("ddpm")(denoise, path, noise, steps, generator=None)


def toy_double_evaluation(denoise, path, noise, steps, *, generator=None, eta=0.0):
    """DDIM that calls the denoiser twice per step (and so costs more than nfe() says)."""

    def twice(x, t):
        denoise(x, t)
        return denoise(x, t)

    return SAMPLERS.get("ddim")(twice, path, noise, steps, generator=generator, eta=eta)


SAMPLER_SUITE = """
from gensweep.testing.samplers import SamplerSuite
from gensweep.trainables.diffusion.samplers import SAMPLERS
from tests.test_testing_suites import TOY_REF, toy_double_evaluation, toy_global_rng

SAMPLERS.register("toy-ddim", ref=TOY_REF)(SAMPLERS.get("ddim"))
SAMPLERS.register("toy-global-rng", ref=TOY_REF)(toy_global_rng)
SAMPLERS.register("toy-double", ref=TOY_REF)(toy_double_evaluation)

class TestToys(SamplerSuite):
    only = {"sampler": ["toy-ddim", "toy-global-rng", "toy-double"]}
"""


def test_sampler_suite_passes_a_good_sampler_and_fails_broken_ones(pytester, monkeypatch):
    failed, ids, passed = run_suite(pytester, monkeypatch, SAMPLER_SUITE)
    assert failed == Counter({"test_a_sample_is_a_function_of_its_noise_and_generator": 2,  # eta 0 and 1
                              "test_spends_the_denoiser_evaluations_nfe_counts": 3}), ids  # 1, 2, 5 steps
    assert all(("toy-global-rng" in i) == ("function_of" in i) for i in ids), ids
    assert all(("toy-double" in i) == ("nfe" in i) for i in ids), ids
    per_sampler = 3 + 2 + 3 + 3 + 1  # recovery x schedules, seed x eta, shape x schedules, nfe x steps, setting
    assert passed == 3 * per_sampler - 5


# ----------------------------------------------------------------------------- GAN components


class ToyNegativePenalty(Regularizer):
    """A 'penalty' that can go below zero (and has no theory check)."""

    def terms(self):
        return [Term("negative", "D_reg", lambda v: -v.real_logits.square().mean(), self.weight)]


def toy_detached_flip(x):
    """A horizontal flip that cuts the graph: G cannot be trained through it."""
    return x.detach().flip(3)


def toy_d(r, f):
    return F.softplus(-r).mean() + F.softplus(f).mean()


TOY_LOSSES = {
    "toy-softplus": AdversarialLoss(d=toy_d, g=lambda r, f: F.softplus(-f).mean()),
    "toy-flipped-g": AdversarialLoss(d=toy_d, g=lambda r, f: F.softplus(f).mean()),  # G pushes its logits down
}

GAN_SUITE = """
from gensweep.testing.gan import GanComponentSuite
from gensweep.trainables.gan.augment import AUGMENTATIONS
from gensweep.trainables.gan.losses import LOSSES
from gensweep.trainables.gan.regularizers import REGULARIZERS
from tests.test_testing_suites import TOY_LOSSES, TOY_REF, ToyNegativePenalty, toy_detached_flip

for name, loss in TOY_LOSSES.items():
    LOSSES.register(name, ref=TOY_REF)(loss)
REGULARIZERS.register("toy-negative", ref=TOY_REF)(ToyNegativePenalty)
AUGMENTATIONS.register("toy-detached", ref=TOY_REF)(toy_detached_flip)

class TestToys(GanComponentSuite):
    only = {"loss": ["toy-softplus", "toy-flipped-g"], "reg": ["toy-negative"], "aug": ["toy-detached"]}
"""


def test_gan_suite_passes_a_good_component_and_fails_broken_ones(pytester, monkeypatch):
    failed, ids, passed = run_suite(pytester, monkeypatch, GAN_SUITE)
    assert failed == Counter({"test_loss_directions": 1, "test_regularizer_contract": 2,  # 28 and 32 px
                              "test_regularizer_theory": 1, "test_augmentation_contract": 2}), ids
    assert not any("toy-softplus" in i for i in ids), ids
    # both losses' shape tests, the good loss's directions, and the catalog entry of all four toys
    assert passed == 2 + 1 + 4


# ----------------------------------------------------------------------------- reference values


def toy_hinge_d(r, f):
    return F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean()


def toy_margin2_d(r, f):
    """The hinge loss with margin 2: right directions, wrong values."""
    return F.relu(2.0 - r).mean() + F.relu(2.0 + f).mean()


def toy_hinge_g(r, f):
    return -f.mean()


REFERENCE_SUITE = """
from gensweep.testing.reference import REFERENCE_CASES, ReferenceSuite
from gensweep.testing.reference_gan import LOSS_CASES
from gensweep.trainables.gan.losses import LOSSES, AdversarialLoss
from tests.test_testing_suites import TOY_REF, toy_hinge_d, toy_hinge_g, toy_margin2_d

LOSSES.register("toy-hinge", ref=TOY_REF)(AdversarialLoss(d=toy_hinge_d, g=toy_hinge_g))
LOSSES.register("toy-margin2", ref=TOY_REF)(AdversarialLoss(d=toy_margin2_d, g=toy_hinge_g))
LOSSES.register("toy-uncased", ref=TOY_REF)(AdversarialLoss(d=toy_hinge_d, g=toy_hinge_g))

class TestToys(ReferenceSuite):
    cases = {**REFERENCE_CASES, "loss": {**LOSS_CASES, "toy-hinge": LOSS_CASES["hinge"], "toy-margin2": LOSS_CASES["hinge"]}}
    only = {"loss": ["toy-hinge", "toy-margin2", "toy-uncased"]}
"""


def test_reference_suite_fails_a_wrong_value_and_a_component_without_a_case(pytester, monkeypatch):
    failed, ids, passed = run_suite(pytester, monkeypatch, REFERENCE_SUITE)
    assert failed == Counter({"test_reference_value": 2}), ids
    assert sorted(i.split("[")[1] for i in ids) == ["loss=toy-margin2]", "loss=toy-uncased]"], ids
    assert passed == 1  # toy-hinge (the EMA checks skip: not registry components)
