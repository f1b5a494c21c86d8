"""Errors every trainable family shares, and the divergence check that all ranks agree on."""
from __future__ import annotations

from typing import Iterable, Optional

import torch


class Diverged(RuntimeError):
    """A loss or gradient stopped being finite (or exploded); the trial cannot go on.

    ``step`` is the number of training steps completed before the failing one (the failing
    step is ``step + 1`` in the 1-based count that reports use).
    """

    def __init__(self, step: int, reason: str):
        super().__init__(f"diverged at step {step}: {reason}")
        self.step = int(step)
        self.reason = str(reason)

    def __reduce__(self):  # pickles across Ray processes with its fields, not just the message
        return (type(self), (self.step, self.reason))


def backward_checked(loss: torch.Tensor, params: Iterable[torch.nn.Parameter], what: str) -> Optional[str]:
    """``loss.backward()``, poisoning the gradients with NaN when ``loss`` is not finite.

    Returns the local reason (``"<what> is nan"``) or None. Call the context's gradient
    all-reduce next: a NaN gradient on one rank becomes NaN on every rank, so every rank sees
    the divergence at the same step and raises together, instead of one rank raising before
    the all-reduce while the others wait in it forever.
    """
    finite = bool(torch.isfinite(loss).all())
    loss.backward()
    if finite:
        return None
    for p in params:
        if p.grad is not None:
            p.grad.fill_(float("nan"))
    return f"{what} is {loss.item()}"


def check_gradients(step: int, local_reason: Optional[str], grad_norm: torch.Tensor, max_grad_norm: float,
                    what: str = "gradient norm") -> None:
    """Raise :class:`Diverged` after the all-reduce: the (shared) gradient norm is not finite or
    above ``max_grad_norm``, or this rank's loss was not finite."""
    if local_reason is not None:
        raise Diverged(step, local_reason)
    if not torch.isfinite(grad_norm) or grad_norm > max_grad_norm:
        raise Diverged(step, f"{what} is {grad_norm.item():.3g}")
