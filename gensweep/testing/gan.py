"""Conformance suite of every registered GAN ingredient (the registries of
:mod:`gensweep.trainables.gan.catalog`, iterated when pytest collects the suite).

Losses: scalar, finite, and the right direction (D's loss falls as real logits rise and fake
logits fall; G's loss falls as fake logits rise). Architectures x conditionings: shapes at 28
and 32 px, finite values, gradients reach every parameter; wider nets are bigger; DynamicD masks
their channels. Regularizers: finite, non-negative penalties whose gradients reach the network
they regularize, plus a theory check each (zero or minimal where theory says so, see
:mod:`.gan_theory`). Augmentations, DynamicD schedules and conditioning terms likewise. Every
name has a reference, is listed in the catalog and is accepted by GanConfig.

Subclass :class:`GanComponentSuite` in a test module; ``only = {"loss": ["my-loss"]}`` narrows
it to some components (a test about none of them is skipped).
"""
from __future__ import annotations

from typing import Callable, ClassVar, Mapping

import pytest
import torch

from gensweep.testing.gan_support import (
    K,
    RESOLUTIONS,
    Z_DIM,
    arch_spec,
    dcgan,
    finite,
    gan_view,
    grad_total,
    networks_for,
)
from gensweep.testing.gan_theory import THEORY_CHECKS
from gensweep.testing.registries import RegistrySuite
from gensweep.trainables.gan.ada import AugmentPipe
from gensweep.trainables.gan.catalog import REGISTRIES, markdown
from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.dynamic_d import DynamicD, kept_channels
from gensweep.trainables.gan.terms import PHASES, StepView
from gensweep.trainables.registry import Registry

ONE_SIDED = {"lp"}  # penalizes only slopes above 1
REPULSIONS = {("zcr", "zcr_gen")}  # zCR's G term is -lambda_gen ||G(z) - G(T(z))||^2: a reward for G

# (resolution, attention, channels) of the architecture checks: both resolutions with and
# without attention, and 3 channels once
ARCH_SHAPES = [(res, att, ch) for res in RESOLUTIONS for att in (False, True) for ch in ((1, 3) if (res == 32 and not att) else (1,))]


class GanComponentSuite(RegistrySuite):
    """The contract of every registered GAN ingredient (test arguments are catalog fields)."""

    registries: ClassVar[Mapping[str, Registry]] = REGISTRIES
    # regularizer name -> a check of where theory says it is zero / minimal
    theory_checks: ClassVar[Mapping[str, Callable[[], None]]] = THEORY_CHECKS

    # ------------------------------------------------------------------------- losses

    def test_loss_directions(self, loss):
        adv = self.registries["loss"].get(loss)
        for r0 in (-0.5, 0.0, 0.5):
            for f0 in (0.25, 0.5):
                r = torch.full((8,), r0, requires_grad=True)
                f = torch.full((8,), f0, requires_grad=True)
                d = adv.d(r, f)
                assert d.dim() == 0 and finite(d)
                d.backward()
                assert (r.grad < 0).all(), f"{loss}: D loss must fall as real logits rise (r={r0}, f={f0})"
                assert (f.grad > 0).all(), f"{loss}: D loss must fall as fake logits fall (r={r0}, f={f0})"
                # the same statement with finite steps, not only the local gradient
                assert adv.d(r.detach() + 0.1, f.detach()) < d and adv.d(r.detach(), f.detach() - 0.1) < d

                real = r.detach() if adv.g_uses_real else None  # G gets real logits only if it says it uses them
                f2 = torch.full((8,), f0, requires_grad=True)
                g = adv.g(real, f2)
                assert g.dim() == 0 and finite(g)
                g.backward()
                assert (f2.grad < 0).all(), f"{loss}: G loss must fall as fake logits rise (r={r0}, f={f0})"
                assert adv.g(real, f2.detach() + 0.1) < g

    def test_loss_accepts_n_and_n1_logits(self, loss):
        adv = self.registries["loss"].get(loss)
        r, f = torch.randn(6), torch.randn(6)
        torch.testing.assert_close(adv.d(r, f), adv.d(r[:, None], f[:, None]))
        real = r if adv.g_uses_real else None
        torch.testing.assert_close(adv.g(real, f), adv.g(None if real is None else real[:, None], f[:, None]))

    # ------------------------------------------------------------------ architectures

    @pytest.mark.parametrize("res,att,ch", ARCH_SHAPES, ids=[f"{r}px-att{int(a)}-c{c}" for r, a, c in ARCH_SHAPES])
    def test_architecture_shapes_values_and_gradients(self, arch, conditioning, res, att, ch):
        torch.manual_seed(0)
        G, D = self.registries["arch"].get(arch)(arch_spec(res, conditioning, att, ch))
        n = 4
        z, y = torch.randn(n, Z_DIM), torch.arange(n) % K
        x = G(z, y)
        assert x.shape == (n, ch, res, res) and finite(x)
        assert x.abs().max() <= 1.0
        logits, aux = D(x, y, aux=True)
        assert logits.shape == (n,) and finite(logits)
        assert torch.equal(D(x.detach(), y), D(x.detach(), y, aux=True)[0])
        for key, value in aux.items():
            assert value.shape[0] == n and finite(value), key
        total = logits.sum() + sum(v.float().pow(2).mean() for v in aux.values() if v.requires_grad)
        total.backward()
        for net_name, net in (("G", G), ("D", D)):
            grads = {k: p.grad for k, p in net.named_parameters()}
            missing = [k for k, g in grads.items() if g is None]
            assert not missing, f"{net_name} parameters without gradient: {missing}"
            assert all(finite(g) for g in grads.values())
            assert sum(float(g.abs().sum()) for g in grads.values()) > 0

    def test_architecture_scales_with_width(self, arch):
        small = self.registries["arch"].get(arch)(arch_spec(32, width=4))
        big = self.registries["arch"].get(arch)(arch_spec(32, width=8))
        for s, b in zip(small, big):
            assert sum(p.numel() for p in b.parameters()) > 2 * sum(p.numel() for p in s.parameters()), arch

    def test_dynamic_d_masks_the_architectures_channels(self, arch):
        torch.manual_seed(0)
        G, D = self.registries["arch"].get(arch)(arch_spec(32, width=8))
        dyn = DynamicD("shrink", 0.5, total_steps=10)
        dyn.build(G, D)
        x = torch.randn(4, 1, 32, 32)
        full = D(x).detach()
        dyn.before_step(10)
        assert dyn.fraction == 0.5 and dyn.metrics() == {"dynamic_d/capacity": 0.5}
        D.zero_grad()
        half = D(x)
        assert not torch.allclose(full, half.detach())
        half.sum().backward()
        conv = dyn.layers[0]
        keep = kept_channels(conv.out_channels, 0.5)
        assert float(conv.weight.grad[keep:].abs().sum()) == 0.0  # masked channels learn nothing
        assert float(conv.weight.grad[:keep].abs().sum()) > 0.0

    # --------------------------------------------------------------- conditioning terms

    def test_conditioning_terms_are_finite_and_reach_the_right_net(self, conditioning):
        torch.manual_seed(0)
        G, D = dcgan(32, conditioning)
        terms = self.registries["conditioning"].get(conditioning)(K, 1.0).terms()
        y = torch.arange(6) % K
        real = torch.rand(6, 1, 32, 32) * 2 - 1
        for t in terms:
            assert t.phase in PHASES
            G.zero_grad()
            D.zero_grad()
            fake = G(torch.randn(6, Z_DIM), y)
            if t.phase.startswith("D"):
                fake = fake.detach()
            rl, ra = D(real, y, aux=True)
            fl, fa = D(fake, y, aux=True)
            v = StepView(0, real, y, G, D, lambda a, b: D(a, b), fake, rl, fl, ra, fa)
            value = t.fn(v)
            assert value.dim() == 0 and finite(value)
            value.backward()
            net = D if t.phase.startswith("D") else G
            assert grad_total(net) > 0, (conditioning, t.name)

    # ------------------------------------------------------------------- regularizers

    @pytest.mark.parametrize("res", RESOLUTIONS)
    def test_regularizer_contract(self, reg, res):
        torch.manual_seed(0)
        G, D = networks_for(reg, res)
        component = self.registries["reg"].get(reg)()
        component.build(G, D)
        if reg in ONE_SIDED:  # penalizes slopes above 1 only: make D steep enough to be penalized
            with torch.no_grad():
                for p in D.parameters():
                    p.mul_(4.0)
        for t in component.terms():
            assert t.phase in PHASES and t.weight >= 0
            G.zero_grad()
            D.zero_grad()
            on_g = t.phase.startswith("G")
            value = t.fn(gan_view(G, D, res, G_phase=on_g))
            sign = -1 if (reg, t.name) in REPULSIONS else 1
            assert value.dim() == 0 and finite(value) and sign * value >= 0, (reg, t.name)
            value.backward()
            assert grad_total(G if on_g else D) > 0, f"{reg}/{t.name}: no gradient reaches {'G' if on_g else 'D'}"
        # hooks run and leave the networks usable
        view = gan_view(G, D, res)
        for phase in PHASES:
            component.after_phase(phase, view)
        assert finite(D(view.real)) and finite(G(torch.randn(2, Z_DIM)))
        state = component.state_dict()
        component.load_state_dict(state)
        assert component.state_dict() == state

    def test_regularizer_theory(self, reg):
        assert reg in self.theory_checks, f"new regularizer {reg!r}: add a check of where theory says it is zero/minimal"
        self.theory_checks[reg]()

    # ------------------------------------------------------- augmentations, DynamicD

    @pytest.mark.parametrize("res", RESOLUTIONS)
    def test_augmentation_contract(self, aug, res):
        torch.manual_seed(0)
        x = (torch.rand(5, 3, res, res) * 2 - 1).requires_grad_(True)
        out = self.registries["aug"].get(aug)(x)
        assert out.shape == x.shape and finite(out)
        out.square().sum().backward()  # differentiable: G is trained through it
        assert x.grad is not None and float(x.grad.abs().sum()) > 0
        pipe = AugmentPipe(aug, p=0.0)
        assert torch.equal(pipe(x), x)

    def test_dynamic_d_schedule_bounds(self, dynamic_d):
        f = self.registries["dynamic_d"].get(dynamic_d)
        for t in (0.0, 0.3, 1.0):
            assert 0.25 <= f(t, 0.25) <= 1.0
        assert max(f(0.0, 0.25), f(1.0, 0.25)) == 1.0  # full capacity at one end

    # ------------------------------------------------------------------------ catalog

    def test_catalog_lists_it_and_the_config_accepts_it(self, component):
        field, name = component
        assert self.registries[field].entry(name).ref.strip(), f"{field}={name}: no paper reference"
        assert f"| `{name}` |" in markdown()
        GanConfig.model_validate({field: name, "num_classes": 10}, context={"rules": False})
