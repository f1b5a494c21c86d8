"""GPU efficiency settings shared by the trainable families: bf16 autocast, channels_last, torch.compile.

A family's config inherits :class:`EfficiencyOptions`. Its loop builds one :class:`Efficiency` per
trial, converts its networks once with :meth:`Efficiency.prepare` and runs the training forwards
through :meth:`Efficiency.fast`, which applies every setting, so the loop has no branches on them.

- ``precision: bf16``: forwards run under ``torch.autocast`` in bfloat16 (Kalamkar et al. 2019,
  A Study of BFLOAT16 for Deep Learning Training). Floating outputs come back as float32, so
  losses and statistics are computed in fp32; parameters, optimizer state, EMA copies and
  checkpoints stay fp32 (autocast never changes a parameter's dtype).
- ``channels_last``: 4-D weights and 4-D network inputs are stored NHWC, the layout tensor-core
  convolutions run on without transposes.
- ``compile``: the forwards called through :meth:`Efficiency.fast` are ``torch.compile``d with
  that mode. The compiled wrapper shares the module's parameters, and optimizers, EMA and
  checkpoints hold the plain module, so state-dict keys are the same with or without compile.

What needs a double backward (R1, R2, gradient penalty) calls the plain module outside the fast
path: compiled graphs cannot be differentiated twice, and gradient norms are kept in fp32.
Sampling for evaluation also uses the plain module in fp32, so scores compare across settings.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from typing import Any, Callable, Literal, Optional

import torch
from pydantic import BaseModel, Field, field_validator
from torch import nn

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}
CompileMode = Literal["none", "default", "reduce-overhead", "max-autotune"]


def _cpu_backend_problem() -> Optional[str]:
    compilers = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
    if not any(c and shutil.which(c) for c in compilers):
        return "no C++ compiler on PATH (CPU kernels need g++, c++ or clang++, or $CXX)"
    return None


def _cuda_backend_problem() -> Optional[str]:
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (GPU kernels need it)"
    return None


# What torch.compile's default backend (inductor) needs to generate kernels for each device type.
BACKEND_CHECKS: dict[str, Callable[[], Optional[str]]] = {"cpu": _cpu_backend_problem, "cuda": _cuda_backend_problem}


def compile_problem(device_type: Optional[str] = None) -> Optional[str]:
    """Why ``torch.compile`` cannot run here for ``device_type`` (None: for any device); None when it can."""
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        v = sys.version_info
        return f"this PyTorch {torch.__version__} does not support torch.compile on Python {v.major}.{v.minor}"
    checks = [BACKEND_CHECKS.get(device_type, lambda: None)] if device_type else list(BACKEND_CHECKS.values())
    problems = [p for p in (check() for check in checks) if p is not None]
    return "; ".join(problems) if len(problems) == len(checks) else None


def check_compile_mode(v: str) -> str:
    """A compile mode other than ``none`` needs a working ``torch.compile`` here (the field's
    validator delegates to this plain function, which mutmut can mutate)."""
    problem = None if v == "none" else compile_problem()
    if problem is not None:
        raise ValueError(f"compile={v!r} needs torch.compile, which cannot run here: {problem}; use 'none'")
    return v


class EfficiencyOptions(BaseModel):
    """Settings that change speed and memory, not the model being trained (base of the family configs)."""

    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16: training forwards under bfloat16 autocast; weights, losses and EMA stay fp32"
    )
    channels_last: bool = Field(False, description="NHWC memory format for conv weights and image inputs")
    compile: CompileMode = Field("none", description="torch.compile mode of the training forwards; none: eager")

    @field_validator("compile")
    @classmethod
    def _compile_runs_here(cls, v: str) -> str:
        return check_compile_mode(v)


def _map(fn: Callable[[torch.Tensor], torch.Tensor], obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _map(fn, v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map(fn, v) for v in obj)
    return obj


class FastForward:
    """Calls a module with a trial's settings: inputs in the memory format, the (compiled) forward
    under autocast, floating outputs back in float32. ``module`` stays the plain network."""

    def __init__(self, module: nn.Module, eff: "Efficiency"):
        self.module = module
        self.eff = eff
        self._forward = module if eff.compile_mode is None else torch.compile(module, mode=eff.compile_mode)
        # CUDA graphs reuse their output buffers on the next replay: hand out copies.
        self._copy = eff.compile_mode == "reduce-overhead"

    def _input(self, t: torch.Tensor) -> torch.Tensor:
        return t.contiguous(memory_format=self.eff.memory_format) if t.dim() == 4 else t

    def _output(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(torch.float32, copy=self._copy) if t.is_floating_point() else t

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = _map(self._input, (args, kwargs))
        with self.eff.autocast():
            out = self._forward(*args, **kwargs)
        return _map(self._output, out)


class Efficiency:
    """One trial's efficiency settings, resolved for its device."""

    def __init__(self, opts: EfficiencyOptions, device: torch.device):
        if opts.compile != "none":
            problem = compile_problem(device.type)
            if problem is not None:
                raise RuntimeError(f"compile={opts.compile!r} cannot run on {device}: {problem}")
        self.device = device
        self.dtype = PRECISIONS[opts.precision]
        self.memory_format = torch.channels_last if opts.channels_last else torch.contiguous_format
        self.compile_mode: Optional[str] = None if opts.compile == "none" else opts.compile

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    def prepare(self, module: nn.Module) -> nn.Module:
        """Converts ``module``'s 4-D weights to the memory format (in place); call before copying it (EMA)."""
        return module.to(memory_format=self.memory_format)

    def fast(self, module: nn.Module) -> FastForward:
        return FastForward(module, self)
