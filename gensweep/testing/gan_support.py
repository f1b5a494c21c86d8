"""Small networks and step views the GAN component suite and its theory checks are built from."""
from __future__ import annotations

import torch
from torch import nn

from gensweep.trainables.gan.architectures import ARCHITECTURES, ArchSpec
from gensweep.trainables.gan.regularizers import REGULARIZERS
from gensweep.trainables.gan.terms import StepView

RESOLUTIONS = (28, 32)
LATE = 10**6  # a step past every regularizer's warm-up (e.g. LeCam's start)
K = 10  # classes
Z_DIM = 8


def finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


def arch_spec(res: int, cond: str = "none", att: bool = False, ch: int = 1, width: int = 4) -> ArchSpec:
    return ArchSpec(resolution=res, channels=ch, width=width, z_dim=Z_DIM, num_classes=K, conditioning=cond, attention=att)


def dcgan(res: int = 32, cond: str = "none") -> tuple[nn.Module, nn.Module]:
    """A small DCGAN pair: the networks the regularizer and conditioning checks act on."""
    return ARCHITECTURES.get("dcgan")(arch_spec(res, cond))


def networks_for(reg: str, res: int = 32) -> tuple[nn.Module, nn.Module]:
    """The small pair a regularizer acts on: a StyleGAN2-lite pair for one that needs a mapping
    network (path length), else DCGAN."""
    arch = "stylegan2-lite" if REGULARIZERS.get(reg).needs_mapping else "dcgan"
    return ARCHITECTURES.get(arch)(arch_spec(res))


def gan_view(G: nn.Module, D: nn.Module, res: int, *, G_phase: bool = False, n: int = 6, seed: int = 0) -> StepView:
    """An unconditional step view: random real images, G's fakes (detached outside G phases)."""
    torch.manual_seed(seed)
    real = torch.rand(n, 1, res, res) * 2 - 1
    z = torch.randn(n, Z_DIM)
    fake = G(z)
    if not G_phase:
        fake = fake.detach()
    rl, fl = D(real), D(fake)
    return StepView(LATE, real, None, G, D, lambda x, y: D(x, y), fake, rl, fl, z=z)


def grad_total(net: nn.Module) -> float:
    """Sum of |gradient| over the parameters of ``net`` that got one."""
    return sum(float(p.grad.abs().sum()) for p in net.parameters() if p.grad is not None)


class LinearCritic(nn.Module):
    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.flatten())

    def forward(self, x, labels=None, aux=False):
        return x.flatten(1) @ self.w


class ConstCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.tensor(0.7))

    def forward(self, x, labels=None, aux=False):
        return self.b + 0.0 * x.flatten(1).sum(1)


class PooledCritic(nn.Module):
    """Global average pooling then linear: invariant to flips and circular shifts."""

    def __init__(self, channels=1):
        super().__init__()
        self.lin = nn.Linear(channels, 1)

    def forward(self, x, labels=None, aux=False):
        return self.lin(x.mean(dim=(2, 3))).squeeze(1)


def critic_view(D: nn.Module, res: int = 32, n: int = 6, seed: int = 0) -> StepView:
    torch.manual_seed(seed)
    real = torch.rand(n, 1, res, res) * 2 - 1
    fake = torch.rand(n, 1, res, res) * 2 - 1
    return StepView(LATE, real, None, None, D, lambda x, y: D(x, y), fake, D(real), D(fake))


def only_value(name: str, view: StepView) -> float:
    """The summed value of the terms of a fresh regularizer ``name`` on ``view``."""
    terms = REGULARIZERS.get(name)().terms()
    return float(sum(t.fn(view).detach() for t in terms))
