"""The GAN step as a list of phases (D main, D reg, G main, G reg), like stylegan2-ada.

A phase names the network it updates, how often it runs (lazy intervals) and a function
returning the loss to minimise, the :class:`StepView` its terms saw, and the values to log.
Main phases compute the adversarial loss; every phase then adds the :class:`Term` s that the
ingredients (regularizers, conditioning, the architecture, ...) contributed to it. Which
components take part was decided when the phases were built; the loop only runs them.

Regularization phases exist only when they are lazy (``reg_interval`` k > 1): they run every k
steps with their terms weighted by k, and the optimizer of the network they regularize runs with
stylegan2-ada's correction (see :func:`gensweep.trainables.gan.state.adam_settings`). With k = 1
their terms join the main phase's loss, so a regularized network still takes one optimizer step
per iteration (stylegan2-ada's 'Dboth'/'Gboth', StudioGAN, WGAN-GP); logs keep the term's phase
in their name (``term/D_reg/r1``) either way.

Main phases call the networks through their fast forwards (the trial's precision, memory format
and compile settings, see :mod:`gensweep.trainables.efficiency`); lazy phases call the plain
networks in fp32, because their penalties differentiate D's gradient (double backward), which
compiled graphs cannot do and bf16 would make noisy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from gensweep.trainables.gan.losses import AdversarialLoss
from gensweep.trainables.gan.terms import LAZY_PHASES, PHASES, StepView, Term

Tensor = torch.Tensor


@dataclass
class StepInputs:
    step: int
    real: Tensor
    labels: Optional[Tensor]
    z_fn: Callable[[int], Tensor]
    cache: dict = field(default_factory=dict)  # per-step values shared between phases


PhaseFn = Callable[[StepInputs], tuple[Tensor, StepView, dict[str, float]]]


@dataclass
class Phase:
    name: str
    net: str  # "D" or "G": whose optimizer steps
    interval: int
    run: PhaseFn

    def due(self, step: int) -> bool:
        return step % self.interval == 0


def build_phases(
    *,
    adv: AdversarialLoss,
    G: nn.Module,
    D: nn.Module,
    fast_G: Callable[..., Tensor],
    fast_D: Callable[..., Tensor],
    augment: Callable[[Tensor], Tensor],
    terms: list[Term],
    n_dis: int = 1,
    reg_interval: int = 1,
) -> list[Phase]:
    by_phase = {p: [t for t in terms if t.phase == p] for p in PHASES}

    def d_aux(x: Tensor, labels: Optional[Tensor]):
        return fast_D(augment(x), labels, aux=True)

    def d_fast(x: Tensor, labels: Optional[Tensor]) -> Tensor:
        return fast_D(augment(x), labels)

    def d_plain(x: Tensor, labels: Optional[Tensor]) -> Tensor:
        return D(augment(x), labels)

    def view(inp: StepInputs, d_fn=d_fast, **kw) -> StepView:
        return StepView(step=inp.step, real=inp.real, labels=inp.labels, G=G, D=D, d_fn=d_fn, **kw)

    def latent(inp: StepInputs) -> Tensor:
        return inp.z_fn(inp.real.shape[0])

    def with_terms(phase: str, loss: Tensor, v: StepView, logs: dict[str, float]) -> Tensor:
        scale = reg_interval if phase in LAZY_PHASES else 1
        for t in by_phase[phase]:
            value = t.fn(v)
            logs[f"term/{phase}/{t.name}"] = float(value.detach())
            loss = loss + (t.weight * scale) * value
        return loss

    def d_reg_view(inp: StepInputs) -> StepView:  # D_main ran earlier this step and cached its fakes
        return view(inp, d_fn=d_plain, fake=inp.cache["fake"], z=inp.cache["z"])

    def d_main(inp: StepInputs):
        z = latent(inp)
        with torch.no_grad():
            fake = fast_G(z, inp.labels)
        inp.cache.update(z=z, fake=fake)
        rl, ra = d_aux(inp.real, inp.labels)
        fl, fa = d_aux(fake, inp.labels)
        v = view(inp, fake=fake, z=z, real_logits=rl, fake_logits=fl, real_aux=ra, fake_aux=fa)
        logs = {"d/logit_real": float(rl.detach().mean()), "d/logit_fake": float(fl.detach().mean())}
        return joined("D_reg", with_terms("D_main", adv.d(rl, fl), v, logs), inp, logs), v, logs

    def g_reg_view(inp: StepInputs) -> StepView:
        return view(inp, d_fn=d_plain, z=latent(inp))  # G_reg terms generate what they differentiate

    def g_main(inp: StepInputs):
        z = latent(inp)
        fake = fast_G(z, inp.labels)
        fl, fa = d_aux(fake, inp.labels)
        rl = None
        if adv.g_uses_real:
            with torch.no_grad():
                rl = d_fast(inp.real, inp.labels)
        v = view(inp, fake=fake, z=z, real_logits=rl, fake_logits=fl, fake_aux=fa)
        logs: dict[str, float] = {}
        return joined("G_reg", with_terms("G_main", adv.g(rl, fl), v, logs), inp, logs), v, logs

    reg_views = {"D_reg": d_reg_view, "G_reg": g_reg_view}
    lazy = reg_interval > 1

    def joined(phase: str, loss: Tensor, inp: StepInputs, logs: dict[str, float]) -> Tensor:
        """Non-lazy regularization: the reg phase's terms join the main phase's loss."""
        return loss if lazy or not by_phase[phase] else with_terms(phase, loss, reg_views[phase](inp), logs)

    def reg_phase(phase: str) -> PhaseFn:
        def run(inp: StepInputs):
            v = reg_views[phase](inp)
            logs: dict[str, float] = {}
            return with_terms(phase, inp.real.new_zeros(()), v, logs), v, logs

        return run

    phases = [Phase("D_main", "D", 1, d_main)]
    if lazy and by_phase["D_reg"]:
        phases.append(Phase("D_reg", "D", reg_interval, reg_phase("D_reg")))
    phases.append(Phase("G_main", "G", n_dis, g_main))
    if lazy and by_phase["G_reg"]:
        phases.append(Phase("G_reg", "G", n_dis * reg_interval, reg_phase("G_reg")))
    return phases
