"""Regularizers on D's outputs: LeCam (anchored outputs) and consistency regularization (CR, bCR, zCR)."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from gensweep.trainables.gan.regularizers.base import REGULARIZERS, Regularizer
from gensweep.trainables.gan.terms import StepView, Term

Tensor = torch.Tensor


def global_means(*outputs: Tensor) -> list[float]:
    """The means of D's outputs over every rank's batch (StudioGAN gathers the outputs for LeCam)."""
    sums = torch.stack([o.detach().double().sum() for o in outputs])
    counts = torch.tensor([float(o.numel()) for o in outputs], dtype=torch.float64, device=sums.device)
    stats = torch.cat([sums, counts])  # on the outputs' device: NCCL reduces GPU tensors only
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(stats)
    return (stats[: len(outputs)] / stats[len(outputs) :]).tolist()


def lecam_penalty(real: Tensor, fake: Tensor, anchor_real: float, anchor_fake: float) -> Tensor:
    """``E[relu(D(x) - a_F)^2] + E[relu(a_R - D(G(z)))^2]``: only outputs past the other side's anchor count."""
    return F.relu(real - anchor_fake).pow(2).mean() + F.relu(anchor_real - fake).pow(2).mean()


@REGULARIZERS.register("lecam", ref="Tseng et al. 2021, Regularizing Generative Adversarial Networks under Limited Data (LeCam)")
class LeCam(Regularizer):
    """:func:`lecam_penalty` with anchors a_R, a_F: moving averages of D's mean real / fake output.

    As in the official code (google/lecam-gan) and StudioGAN: every D step first updates the
    anchors with the batch means -- taking them as they are (decay 0) before iteration
    ``lecam_start``, then with decay ``lecam_decay`` -- and the penalty counts from iteration
    ``lecam_start + 1`` (both references: 1000). An iteration is a G update (``step // n_dis``),
    the references' unit. The anchors live in ``state`` (checkpointed with the trial); the first
    update always takes the batch means (with ``lecam_start`` 0 the references would average them
    with their placeholder initial anchors).
    """

    default_weight = 0.3
    settings = ("lecam_start", "lecam_decay", "n_dis")

    def __init__(self, weight=None, lecam_start: int = 1000, lecam_decay: float = 0.99, n_dis: int = 1):
        super().__init__(weight)
        self.start, self.decay, self.n_dis = lecam_start, lecam_decay, n_dis
        self.state = {"ema_real": 0.0, "ema_fake": 0.0, "initialized": False}

    def terms(self) -> list[Term]:
        def lecam(v: StepView) -> Tensor:
            iteration = v.step // self.n_dis
            self.update(*global_means(v.real_logits, v.fake_logits), iteration)
            if iteration <= self.start:
                return v.real_logits.new_zeros(())
            return lecam_penalty(v.real_logits, v.fake_logits, self.state["ema_real"], self.state["ema_fake"])

        return [Term("lecam", "D_main", lecam, self.weight)]

    def update(self, real: float, fake: float, iteration: int) -> None:
        d = self.decay if (self.state["initialized"] and iteration >= self.start) else 0.0
        self.state.update(
            ema_real=d * self.state["ema_real"] + (1 - d) * real,
            ema_fake=d * self.state["ema_fake"] + (1 - d) * fake,
            initialized=True,
        )


def flip_translate(x: Tensor, ratio: float = 0.125) -> Tensor:
    """CR's transformation: random horizontal flip, then a random circular shift of up to ``ratio`` of the size."""
    n, _, h, w = x.shape
    flip = torch.rand(n, 1, 1, 1, device=x.device) < 0.5
    x = torch.where(flip, x.flip(3), x)
    mh, mw = max(int(h * ratio), 1), max(int(w * ratio), 1)
    sh = torch.randint(-mh, mh + 1, (n, 1, 1), device=x.device)
    sw = torch.randint(-mw, mw + 1, (n, 1, 1), device=x.device)
    gi = torch.arange(n, device=x.device)[:, None, None]
    gy = (torch.arange(h, device=x.device)[None, :, None] - sh) % h
    gx = (torch.arange(w, device=x.device)[None, None, :] - sw) % w
    return x.permute(0, 2, 3, 1)[gi, gy, gx].permute(0, 3, 1, 2)


def logit_gap(v: StepView, a: Tensor, b: Tensor) -> Tensor:
    """E||D(a) - D(b)||^2 on D's logits, two forwards of D without the augment pipe (the
    regularizer brings its own transformation)."""
    return ((v.D(a, v.labels) - v.D(b, v.labels)) ** 2).mean()


def consistency(v: StepView, x: Tensor) -> Tensor:
    """E||D(x) - D(T(x))||^2 with CR's flip-and-translate T."""
    return logit_gap(v, x, flip_translate(x))


def real_consistency(v: StepView) -> Tensor:
    return consistency(v, v.real.detach())


def fake_consistency(v: StepView) -> Tensor:
    return consistency(v, v.fake.detach())


@REGULARIZERS.register("cr", ref="Zhang et al. 2020, Consistency Regularization for Generative Adversarial Networks")
class CR(Regularizer):
    """Consistency on real images only; added to D_main."""

    default_weight = 10.0

    def terms(self) -> list[Term]:
        return [Term("cr", "D_main", real_consistency, self.weight)]


@REGULARIZERS.register("bcr", ref="Zhao et al. 2021, Improved Consistency Regularization for GANs (balanced CR)")
class BCR(Regularizer):
    """Consistency on real and on generated images (same weight for both); added to D_main."""

    default_weight = 10.0

    def terms(self) -> list[Term]:
        return [
            Term("bcr_real", "D_main", real_consistency, self.weight),
            Term("bcr_fake", "D_main", fake_consistency, self.weight),
        ]


@REGULARIZERS.register("zcr", ref="Zhao et al. 2021, Improved Consistency Regularization for GANs (latent consistency, zCR)")
class ZCR(Regularizer):
    """With T(z) = z + dz, dz ~ N(0, zcr_sigma^2 I): D_main gets lambda_dis E||D(G(z)) - D(G(T(z)))||^2
    (the weight), G_main gets -lambda_gen E||G(z) - G(T(z))||^2 (``zcr_gen_weight``), which pushes G to
    keep nearby latents apart. Defaults: the paper's sigma 0.03, lambda_gen 0.5, lambda_dis 5."""

    default_weight = 5.0
    settings = ("zcr_sigma", "zcr_gen_weight")

    def __init__(self, weight=None, zcr_sigma: float = 0.03, zcr_gen_weight: float = 0.5):
        super().__init__(weight)
        self.sigma, self.gen_weight = zcr_sigma, zcr_gen_weight

    def perturbed(self, v: StepView) -> Tensor:
        """G(T(z)) for the latents of the phase's fakes."""
        return v.G(v.z + self.sigma * torch.randn_like(v.z), v.labels)

    def terms(self) -> list[Term]:
        def dis(v: StepView) -> Tensor:
            with torch.no_grad():
                moved = self.perturbed(v)
            return logit_gap(v, v.fake.detach(), moved)

        def gen(v: StepView) -> Tensor:
            return -((v.fake - self.perturbed(v)) ** 2).mean()

        return [Term("zcr_dis", "D_main", dis, self.weight), Term("zcr_gen", "G_main", gen, self.gen_weight)]
