"""The diffusion trainable's settings: one validated model; names are checked against the registries."""
from __future__ import annotations

from typing import Any, Optional

from pydantic import ConfigDict, Field, field_validator, model_validator

from gensweep.trainables.diffusion.objectives import WEIGHTINGS
from gensweep.trainables.diffusion.parameterization import (
    NEEDS_POSITIVE_ALPHA,
    PREDICTIONS,
)
from gensweep.trainables.diffusion.samplers import SAMPLERS, Churn, parse_setting
from gensweep.trainables.diffusion.schedules import PATHS, get_path
from gensweep.trainables.efficiency import EfficiencyOptions
from gensweep.trainables.sampling import SAMPLING_TIME, check_grid


# The validators below delegate to these plain functions (mutmut can mutate them, not decorated methods).
def check_registered(registry: Any, v: Optional[str]) -> Optional[str]:
    """``v`` must be a name in ``registry`` (the error lists the allowed names); None (an optional field) passes."""
    if v is not None:
        registry.entry(v)
    return v


def split_settings(v: Any) -> Any:
    """``eval_samplers`` given as one comma-separated string: its settings as a list."""
    return [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v


def normalise_settings(v: list[str]) -> list[str]:
    return [f"{n}:{k}" for n, k in (parse_setting(s) for s in v)]


def resolve_config(cfg: "DiffusionConfig") -> "DiffusionConfig":
    """Apply the sampler overrides and the schedule's default prediction; check the combinations."""
    if cfg.sampler is not None or cfg.sample_steps is not None:
        name, n = parse_setting(cfg.eval_samplers[0])
        cfg.eval_samplers = [f"{cfg.sampler or name}:{cfg.sample_steps or n}", *cfg.eval_samplers[1:]]
    cfg.eval_samplers = list(dict.fromkeys(cfg.eval_samplers))
    if cfg.prediction is None:
        cfg.prediction = get_path(cfg.schedule).default_prediction
    if cfg.prediction in NEEDS_POSITIVE_ALPHA and cfg.schedule == "flow":
        raise ValueError(
            f"prediction {cfg.prediction!r} divides by alpha(t), which is 0 at t = 1 on the flow path;"
            " use velocity, v or x0"
        )
    if cfg.guidance != 1.0 and cfg.num_classes == 0:
        raise ValueError("guidance needs a class-conditional model (num_classes > 0)")
    if cfg.eta > 0 and not any(s.startswith("ddim:") for s in cfg.eval_samplers):
        raise ValueError(f"eta only affects the ddim sampler, which is not among eval_samplers {cfg.eval_samplers}")
    if cfg.s_churn > 0 and not any(s.startswith(("heun:", "euler:")) for s in cfg.eval_samplers):
        raise ValueError(f"s_churn only affects the heun and euler samplers, which are not among {cfg.eval_samplers}")
    if cfg.s_tmax is not None and cfg.s_tmin > cfg.s_tmax:
        raise ValueError(f"s_tmin {cfg.s_tmin} is above s_tmax {cfg.s_tmax}: churn would never apply")
    if cfg.resolution < 2 ** (len(cfg.channel_mult) - 1):
        raise ValueError(f"resolution {cfg.resolution} is too small for {len(cfg.channel_mult)} U-Net levels")
    if cfg.sampling_grid and len(cfg.eval_samplers) > 1:
        raise ValueError(f"eval_samplers lists {len(cfg.eval_samplers)} settings, but sampling_grid is what is"
                         " scored: each of its settings with its own sampler; list one eval sampler")
    return check_grid(cfg)


class DiffusionConfig(EfficiencyOptions):
    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    steps: int = Field(2000, ge=1, description="optimizer updates (one data batch each)")
    batch_size: int = Field(64, ge=2)
    resolution: int = Field(32, ge=4)
    channels: int = Field(1, ge=1, le=4)
    num_classes: int = Field(10, ge=0, description="0: unconditional")
    # network
    width: int = Field(32, ge=4, description="channels of the first U-Net level")
    channel_mult: list[int] = Field(default_factory=lambda: [1, 2, 2], min_length=1, description="width multiple per level")
    num_res_blocks: int = Field(1, ge=1, description="residual blocks per level (depth)")
    attn_res: int = Field(8, ge=0, description="self-attention on feature maps of at most this size; 0: none")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # diffusion
    schedule: str = "linear"
    prediction: Optional[str] = Field(None, description="None: the schedule's natural one (eps; velocity for flow)")
    loss_weight: str = "uniform"
    min_snr_gamma: float = Field(5.0, gt=0.0, description="gamma of the min-snr weighting")
    cond_drop_prob: float = Field(0.1, ge=0.0, le=1.0, description="label dropout for classifier-free guidance")
    # optimization
    lr: float = Field(2e-4, gt=0.0, le=1.0)
    beta1: float = Field(0.9, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    warmup_steps: int = Field(0, ge=0, description="linear learning-rate warm-up")
    grad_clip: float = Field(1.0, gt=0.0, description="gradients are clipped to this norm")
    max_grad_norm: float = Field(1e4, gt=0.0, description="a larger (pre-clip) gradient norm counts as divergence")
    ema_beta: float = Field(0.999, ge=0.0, lt=1.0, description="0 disables the EMA model")
    # sampling / evaluation
    eval_samplers: list[str] = Field(
        default_factory=lambda: ["ddim:50"], min_length=1,
        description="'NAME:STEPS' settings scored at every eval; the first is also reported as the plain metric",
    )
    sampler: Optional[str] = Field(None, description="searchable override of the first eval setting's sampler",
                                   json_schema_extra=SAMPLING_TIME)
    sample_steps: Optional[int] = Field(None, ge=1, description="searchable override of the first eval setting's steps",
                                        json_schema_extra=SAMPLING_TIME)
    eta: float = Field(0.0, ge=0.0, le=1.0, description="DDIM stochasticity (0: deterministic, 1: DDPM posterior)",
                       json_schema_extra=SAMPLING_TIME)
    s_churn: float = Field(0.0, ge=0.0, description="EDM stochastic sampling (heun, euler): churn; 0: deterministic")
    s_tmin: float = Field(0.0, ge=0.0, description="EDM churn only at noise levels (sigma/alpha) >= s_tmin")
    s_tmax: Optional[float] = Field(None, ge=0.0, description="EDM churn only at noise levels <= s_tmax; None: no bound")
    s_noise: float = Field(1.0, gt=0.0, description="EDM churn: std of the added noise per unit of noise level")
    guidance: float = Field(1.0, ge=0.0, description="classifier-free guidance scale (1: plain conditional)",
                            json_schema_extra=SAMPLING_TIME)
    sampling_grid: list[dict[str, Any]] = Field(
        default_factory=list, description="settings of the sampling-time fields, each scored at every eval on the"
        " same network (tagged metrics); empty: the config's own setting(s) only")
    clip_denoised: bool = Field(True, description="clip predicted x0 to [-1, 1] while sampling")
    eval_batch_size: int = Field(256, ge=1, description="images per sampling batch")
    eval_every: int = Field(500, ge=1)
    grid_size: int = Field(64, ge=1, le=256)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        return check_registered(PATHS, v)

    @field_validator("prediction")
    @classmethod
    def _prediction(cls, v: Optional[str]) -> Optional[str]:
        return check_registered(PREDICTIONS, v)

    @field_validator("loss_weight")
    @classmethod
    def _weight(cls, v: str) -> str:
        return check_registered(WEIGHTINGS, v)

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, v: Optional[str]) -> Optional[str]:
        return check_registered(SAMPLERS, v)

    @field_validator("eval_samplers", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return split_settings(v)

    @field_validator("eval_samplers")
    @classmethod
    def _settings(cls, v: list[str]) -> list[str]:
        return normalise_settings(v)

    @model_validator(mode="after")
    def _resolve(self):
        return resolve_config(self)

    def generated_classes(self) -> int:
        """How many classes the denoiser can be asked for (0: unconditional)."""
        return self.num_classes

    def churn(self) -> Churn:
        return Churn(self.s_churn, self.s_tmin, self.s_tmax, self.s_noise)

    def settings(self) -> list[tuple[str, int]]:
        """The (sampler, steps) pairs to evaluate, primary first."""
        return [parse_setting(s) for s in self.eval_samplers]
