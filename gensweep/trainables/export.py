"""A trained model on its own: its sampling network's weights and its config in one ``.safetensors`` file.

:func:`export_model` writes the network a trial samples with (the EMA generator of a GAN, the
EMA denoiser of a diffusion model; the raw network when the trial kept no EMA copy) as the
file's tensors, and the trial's config as JSON in the file's metadata (``gensweep.config``,
beside ``gensweep.family``, ``gensweep.weights`` and ``gensweep.format``). :func:`load_exported`
rebuilds that network from the file alone, with PyTorch, safetensors and the trainables: no
Ray and no platform import, so the file can be sampled wherever gensweep is installed::

    from gensweep.trainables import load_exported

    model = load_exported("model.safetensors")
    images = model.sample(16, seed=0, labels=torch.full((16,), 3))  # NCHW in [-1, 1]
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch
from torch import nn

from gensweep.trainables.context import SampleFn

FORMAT = "1"
FAMILY_KEYS = {"gan": ("G_ema", "G"), "diffusion": ("ema", "net")}  # preferred, fallback state key


class ExportError(ValueError):
    """A state or file that is not an exportable / exported gensweep model."""


def state_family(state: Mapping[str, Any]) -> str:
    """Which family a trial state belongs to, read from the keys its checkpoint holds."""
    for family, (_, raw) in FAMILY_KEYS.items():
        if raw in state and "config" in state:
            return family
    raise ExportError(f"not a gensweep GAN or diffusion trial state (keys: {', '.join(sorted(state))})")


def sampling_weights(state: Mapping[str, Any]) -> tuple[str, dict[str, torch.Tensor]]:
    """``(state key, weights)`` of the network a trial samples with: its EMA copy when it kept one."""
    ema, raw = FAMILY_KEYS[state_family(state)]
    key = ema if state.get(ema) is not None else raw
    return key, dict(state[key])


def build_network(family: str, config: Mapping[str, Any], device: torch.device | str = "cpu") -> nn.Module:
    """The sampling network of ``family`` for ``config``, freshly initialised (load weights into it)."""
    device = torch.device(device)
    if family == "gan":
        from gensweep.trainables.gan.config import GanConfig
        from gensweep.trainables.gan.state import GanState

        return GanState(GanConfig.model_validate(dict(config)), device).sample_net()
    if family == "diffusion":
        from gensweep.trainables.diffusion.config import DiffusionConfig
        from gensweep.trainables.diffusion.trainable import build_net

        return build_net(DiffusionConfig.model_validate(dict(config))).to(device)
    raise ExportError(f"unknown family {family!r}; allowed: {', '.join(FAMILY_KEYS)}")


@dataclass
class ExportedModel:
    """A trained sampling network with its family and config, ready to sample."""

    family: str
    config: dict[str, Any]
    net: nn.Module
    weights: str  # which state entry the weights came from ("G_ema", "G", "ema" or "net")

    @property
    def num_classes(self) -> int:
        """Classes it can be asked for (0: unconditional)."""
        return self._config_model().generated_classes()

    def _config_model(self):
        if self.family == "gan":
            from gensweep.trainables.gan.config import GanConfig

            return GanConfig.model_validate(self.config)
        from gensweep.trainables.diffusion.config import DiffusionConfig

        return DiffusionConfig.model_validate(self.config)

    def sampler(self, sampler: Optional[str] = None, steps: Optional[int] = None) -> SampleFn:
        """``sample(count, seed, labels=None) -> images``; a diffusion model's sampler and step
        count default to the first setting it was scored with (a GAN takes neither)."""
        cfg = self._config_model()
        device = next(self.net.parameters()).device
        if self.family == "gan":
            if sampler is not None or steps is not None:
                raise ExportError("a GAN samples in one forward pass: --sampler and --steps are for diffusion models")
            from gensweep.trainables.gan.trainable import sampler as gan_sampler

            return gan_sampler(self.net, cfg, device)
        from gensweep.trainables.diffusion.samplers import SAMPLERS
        from gensweep.trainables.diffusion.trainable import sampler_fn

        name, default_steps = cfg.settings()[0]
        name = sampler or name
        SAMPLERS.entry(name)  # unknown names fail here, listing the registered ones
        return sampler_fn(self.net, cfg, device, name, steps or default_steps)

    def sample(self, count: int, seed: int = 0, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``count`` images (NCHW in [-1, 1]) with the default sampler."""
        return self.sampler()(count, seed, labels=labels)


def model_from_state(state: Mapping[str, Any], device: torch.device | str = "cpu") -> ExportedModel:
    """The sampling network of a trial checkpoint's state, with its weights loaded."""
    family = state_family(state)
    key, weights = sampling_weights(state)
    net = build_network(family, state["config"], device)
    net.load_state_dict(weights)
    return ExportedModel(family, dict(state["config"]), net.eval(), key)


def export_model(state: Mapping[str, Any], path: str) -> ExportedModel:
    """Write the sampling network of a trial state and its config to ``path`` (a .safetensors file)."""
    from safetensors.torch import save_file

    model = model_from_state(state)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.net.state_dict().items()}
    meta = {"gensweep.format": FORMAT, "gensweep.family": model.family, "gensweep.weights": model.weights,
            "gensweep.config": json.dumps(model.config, sort_keys=True)}
    save_file(tensors, path, metadata=meta)
    return model


def load_exported(path: str, device: torch.device | str = "cpu") -> ExportedModel:
    """Rebuild the network :func:`export_model` wrote to ``path`` and load its weights (strictly:
    a file whose tensors do not fit the config's network raises). Imports neither Ray nor the platform."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
    except FileNotFoundError:
        raise
    except Exception as e:  # safetensors raises its own error type for a foreign or truncated file
        raise ExportError(f"{path}: not a .safetensors file ({e})") from None
    if meta.get("gensweep.format") != FORMAT or "gensweep.config" not in meta:
        raise ExportError(f"{path}: not a model exported by gensweep (format {FORMAT}); metadata: {sorted(meta)}")
    family, config = meta["gensweep.family"], json.loads(meta["gensweep.config"])
    net = build_network(family, config, device)
    net.load_state_dict(load_file(path, device=str(torch.device(device))))
    return ExportedModel(family, config, net.eval(), meta.get("gensweep.weights", ""))
