"""Regularizers on D's outputs: LeCam (anchored outputs) and (balanced) consistency regularization."""
from __future__ import annotations

import torch

from gensweep.trainables.gan.regularizers.base import REGULARIZERS, Regularizer
from gensweep.trainables.gan.terms import StepView, Term

Tensor = torch.Tensor


@REGULARIZERS.register("lecam", ref="Tseng et al. 2021, Regularizing Generative Adversarial Networks under Limited Data (LeCam)")
class LeCam(Regularizer):
    """E||D(x) - a_F||^2 + E||D(G(z)) - a_R||^2 with a_R, a_F moving averages of D's mean real / fake output.

    The anchors live in ``state`` (checkpointed with the trial); they start at the first batch's
    means and are updated after every D_main step with decay 0.99.
    """

    default_weight = 0.3
    decay = 0.99

    def __init__(self, weight=None):
        super().__init__(weight)
        self.state = {"ema_real": 0.0, "ema_fake": 0.0, "initialized": False}

    def terms(self) -> list[Term]:
        def lecam(v: StepView) -> Tensor:
            if not self.state["initialized"]:
                self._set(float(v.real_logits.detach().mean()), float(v.fake_logits.detach().mean()))
            return ((v.real_logits - self.state["ema_fake"]) ** 2).mean() + (
                (v.fake_logits - self.state["ema_real"]) ** 2
            ).mean()

        return [Term("lecam", "D_main", lecam, self.weight)]

    def _set(self, real: float, fake: float) -> None:
        self.state.update(ema_real=real, ema_fake=fake, initialized=True)

    def after_phase(self, phase: str, view: StepView) -> None:
        if phase != "D_main" or view.real_logits is None:
            return
        d = self.decay
        self._set(
            d * self.state["ema_real"] + (1 - d) * float(view.real_logits.detach().mean()),
            d * self.state["ema_fake"] + (1 - d) * float(view.fake_logits.detach().mean()),
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


def consistency(v: StepView, x: Tensor) -> Tensor:
    """E||D(x) - D(T(x))||^2 on D's logits (D without the augment pipe: CR brings its own T)."""
    labels = None if v.labels is None else torch.cat([v.labels, v.labels])
    out = v.D(torch.cat([x, flip_translate(x)]), labels)
    a, b = out.chunk(2)
    return ((a - b) ** 2).mean()


@REGULARIZERS.register("cr", ref="Zhang et al. 2020, Consistency Regularization for Generative Adversarial Networks")
class CR(Regularizer):
    """Consistency on real images only; added to D_main."""

    default_weight = 10.0

    def terms(self) -> list[Term]:
        return [Term("cr", "D_main", lambda v: consistency(v, v.real.detach()), self.weight)]


@REGULARIZERS.register("bcr", ref="Zhao et al. 2021, Improved Consistency Regularization for GANs (balanced CR)")
class BCR(Regularizer):
    """Consistency on real and on generated images (same weight for both); added to D_main."""

    default_weight = 10.0

    def terms(self) -> list[Term]:
        return [
            Term("bcr_real", "D_main", lambda v: consistency(v, v.real.detach()), self.weight),
            Term("bcr_fake", "D_main", lambda v: consistency(v, v.fake.detach()), self.weight),
        ]
