"""Gradient penalties on D and orthogonal regularization of G.

Every gradient penalty runs in the D_reg phase (lazy with ``reg_interval`` > 1, else part of
D_main) and differentiates D through the augment pipe at its own points: real data (R1),
generated data (R2), random interpolates of the two (WGAN-GP, WGAN-LP, max-GP) or perturbed real
data (DRAGAN).
"""
from __future__ import annotations

import torch
from torch import nn

from gensweep.trainables.gan.regularizers.base import REGULARIZERS, Regularizer
from gensweep.trainables.gan.terms import StepView, Term

Tensor = torch.Tensor


def grad_norm_sq(out: Tensor, inp: Tensor) -> Tensor:
    """Per-sample squared norm of d(sum out)/d(inp), kept differentiable (double backward)."""
    (grad,) = torch.autograd.grad(out.sum(), inp, create_graph=True)
    return grad.flatten(1).pow(2).sum(1)


def grad_norm(v: StepView, x: Tensor) -> Tensor:
    """Per-sample ||grad_x D(x)|| at the points ``x`` (through the view's augment pipe), differentiable."""
    x = x.detach().requires_grad_(True)
    return grad_norm_sq(v.d_fn(x, v.labels), x).add(1e-12).sqrt()


def per_sample_uniform(x: Tensor) -> Tensor:
    """U[0, 1) weights of shape [N, 1, ..., 1], one per sample of ``x``."""
    return torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device, dtype=x.dtype)


def interpolates(real: Tensor, fake: Tensor) -> Tensor:
    """Random points on the lines between real and generated samples (Gulrajani et al. 2017)."""
    alpha = per_sample_uniform(real)
    return alpha * real.detach() + (1 - alpha) * fake.detach()


@REGULARIZERS.register("none", ref="no regularization (baseline)")
class NoReg(Regularizer):
    default_weight = None
    combinable = False


@REGULARIZERS.register("r1", ref="Mescheder et al. 2018, Which Training Methods for GANs do actually Converge? (R1)")
class R1(Regularizer):
    """(gamma/2) E ||grad_x D(x)||^2 on real data; lazy (D_reg phase)."""

    default_weight = 10.0

    def terms(self) -> list[Term]:
        def r1(v: StepView) -> Tensor:
            x = v.real.detach().requires_grad_(True)
            return 0.5 * grad_norm_sq(v.d_fn(x, v.labels), x).mean()

        return [Term("r1", "D_reg", r1, self.weight)]


@REGULARIZERS.register("r2", ref="Mescheder et al. 2018, Which Training Methods for GANs do actually Converge? (R2)")
class R2(Regularizer):
    """(gamma/2) E ||grad_x D(x)||^2 on generated data; lazy (D_reg phase)."""

    default_weight = 10.0

    def terms(self) -> list[Term]:
        def r2(v: StepView) -> Tensor:
            x = v.fake.detach().requires_grad_(True)
            return 0.5 * grad_norm_sq(v.d_fn(x, v.labels), x).mean()

        return [Term("r2", "D_reg", r2, self.weight)]


@REGULARIZERS.register("gp", ref="Gulrajani et al. 2017, Improved Training of Wasserstein GANs (gradient penalty)")
class GradientPenalty(Regularizer):
    """lambda E (||grad D(x_hat)|| - 1)^2 on random interpolates of real and fake (D_reg).

    The base of the other penalties on D's slopes at points built from the batch: they change
    ``points`` (where the slopes are taken) and/or ``penalty`` (how they are penalized)."""

    default_weight = 10.0
    lipschitz = True
    term_name = "gp"

    def points(self, v: StepView) -> Tensor:
        return interpolates(v.real, v.fake)

    def penalty(self, slopes: Tensor) -> Tensor:
        return ((slopes - 1.0) ** 2).mean()

    def value(self, v: StepView) -> Tensor:
        return self.penalty(grad_norm(v, self.points(v)))

    def terms(self) -> list[Term]:
        return [Term(self.term_name, "D_reg", self.value, self.weight)]


@REGULARIZERS.register("lp", ref="Petzka et al. 2018, On the regularization of Wasserstein GANs (Lipschitz penalty, WGAN-LP)")
class LipschitzPenalty(GradientPenalty):
    """lambda E max(0, ||grad D(x_hat)|| - 1)^2 on the interpolates of WGAN-GP: only slopes above 1 are penalized."""

    term_name = "lp"

    def penalty(self, slopes: Tensor) -> Tensor:
        return torch.relu(slopes - 1.0).pow(2).mean()


@REGULARIZERS.register("maxgp", ref="Zhou et al. 2019, Lipschitz Generative Adversarial Nets (max gradient penalty)")
class MaxGradientPenalty(GradientPenalty):
    """lambda max_i ||grad D(x_hat_i)||^2 over the batch's interpolates (StudioGAN's LGAN)."""

    term_name = "maxgp"

    def penalty(self, slopes: Tensor) -> Tensor:
        return slopes.pow(2).max()


@REGULARIZERS.register("dragan", ref="Kodali et al. 2017, On Convergence and Stability of GANs (DRAGAN)")
class DRAGAN(GradientPenalty):
    """lambda E (||grad D(x_hat)|| - 1)^2 around the real data, at x_hat = x + a * 0.5 std(x) u with
    a ~ U[0, 1) per sample, u ~ U[0, 1)^d and std over the whole batch (the official code; StudioGAN)."""

    term_name = "dragan"

    def points(self, v: StepView) -> Tensor:
        x = v.real.detach()
        alpha = per_sample_uniform(x)
        return x + alpha * (0.5 * x.std(correction=0) * torch.rand_like(x))


def weight_matrices(net: nn.Module) -> list[Tensor]:
    """Every conv / linear weight of ``net`` as a [filters, fan_in] matrix, as the layer applies it
    (spectral norm applied if present; times ``weight_gain`` for equalized-learning-rate layers)."""
    out = []
    for m in net.modules():
        if isinstance(m, nn.ConvTranspose2d):
            out.append(m.weight.transpose(0, 1).flatten(1))
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            out.append(m.weight.flatten(1) * getattr(m, "weight_gain", 1.0))
    return [w for w in out if w.shape[0] > 1]


def orthogonality(w: Tensor) -> Tensor:
    """BigGAN's variant: ||W W^T (1 - I)||_F^2, only off-diagonal terms (filter norms are free)."""
    gram = w @ w.t()
    return (gram * (1 - torch.eye(gram.shape[0], device=w.device, dtype=w.dtype))).pow(2).sum()


@REGULARIZERS.register("ortho", ref="Brock et al. 2019, Large Scale GAN Training (orthogonal regularization of G)")
class Orthogonal(Regularizer):
    """beta * sum over G's weight matrices of their off-diagonal Gram energy; added to G_main."""

    default_weight = 1e-4

    def terms(self) -> list[Term]:
        def ortho(v: StepView) -> Tensor:
            return sum((orthogonality(w) for w in weight_matrices(v.G)), torch.zeros((), device=v.real.device))

        return [Term("ortho", "G_main", ortho, self.weight)]
