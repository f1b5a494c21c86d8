"""The GAN trainable's settings: one validated model; names are checked against the registries
of :mod:`.catalog` (one generated validator for every catalog field), and combinations against
:mod:`.rules` (skipped with ``model_validate(..., context={"rules": False})``, e.g. to check one
search-space level on its own). :func:`violations` lists what is wrong with a raw config dict."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from gensweep.trainables.efficiency import EfficiencyOptions
from gensweep.trainables.gan.augment import POLICY_SEPARATOR
from gensweep.trainables.gan.catalog import REGISTRIES
from gensweep.trainables.gan.regularizers import SEPARATOR
from gensweep.trainables.gan.rules import check_rules
from gensweep.trainables.sampling import SAMPLING_TIME, check_grid

# catalog fields whose value joins several registered names, and their separators
JOINED = {"reg": SEPARATOR, "aug_policy": POLICY_SEPARATOR}


# The validators below delegate to these plain functions (mutmut can mutate them, not decorated methods).
def registered_name(v: Optional[str], field: str) -> Optional[str]:
    """``v`` checked against ``field``'s catalog registry; a joined field normalised; None kept."""
    if v is None:
        return None
    registry = REGISTRIES[field]
    sep = JOINED.get(field)
    names = [part.strip() for part in v.split(sep)] if sep else [v]
    for name in names:
        registry.entry(name)  # raises, listing the allowed names
    return sep.join(names) if sep else v


def check_combinations(cfg: "GanConfig", context: Optional[Mapping[str, Any]]) -> "GanConfig":
    """The sampling grid, then the combination rules unless ``context`` says ``{"rules": False}``."""
    check_grid(cfg)
    if (context or {}).get("rules", True) is False:
        return cfg
    problems = check_rules(cfg)
    if problems:
        raise ValueError("; ".join(problems))
    return cfg


class GanConfig(EfficiencyOptions):
    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    steps: int = Field(1000, ge=1, description="generator updates x n_dis data batches")
    batch_size: int = Field(64, ge=2)
    resolution: int = Field(32, ge=4)
    channels: int = Field(1, ge=1, le=4)
    num_classes: int = Field(10, ge=0)
    arch: str = "dcgan"
    width: int = Field(32, ge=4)
    z_dim: int = Field(64, ge=1)
    attention: bool = Field(False, description="SAGAN self-attention block at half resolution in G and D")
    conditioning: str = Field("none", description="how class labels enter G and D (needs num_classes > 0)")
    cond_weight: float = Field(1.0, ge=0.0, description="weight of the conditioning's class-loss terms (AC-GAN, ADC-GAN)")
    loss: str = "ns"
    reg: str = Field("none", description=f"a regularizer, or several joined with {SEPARATOR!r} (e.g. r1+spectral-norm)")
    reg_weight: Optional[float] = Field(None, ge=0.0, description="None: the regularizer's default (weight-clip: the bound)")
    reg_interval: int = Field(1, ge=1, description="lazy regularization (D_reg/G_reg phases): every k steps, weight x k")
    lecam_start: int = Field(1000, ge=0, description="LeCam: G updates with anchors only, before the penalty counts")
    lecam_decay: float = Field(0.99, ge=0.0, le=1.0, description="LeCam: decay of the anchors' moving averages")
    zcr_sigma: float = Field(0.03, gt=0.0, description="zCR: std of the latent perturbation")
    zcr_gen_weight: float = Field(0.5, ge=0.0, description="zCR: weight of G's term (reg_weight sets D's)")
    aug: str = "none"
    aug_policy: Optional[str] = Field(
        None, description="DiffAugment policy replacing the aug's, e.g. 'translation,cutout' (applied in order)"
    )
    aug_p: float = Field(1.0, ge=0.0, le=1.0, description="probability of augmenting each image (fixed p)")
    ada_target: Optional[float] = Field(
        None, gt=0.0, lt=1.0, description="ADA target for r_t = E[sign(D(real))]; None: p stays aug_p, else p starts at 0"
    )
    ada_interval: int = Field(4, ge=1, description="ADA: steps between adjustments of p")
    ada_speed: int = Field(500, ge=1, description="ADA: steps for p to change by 1 when always adjusted the same way")
    dynamic_d: str = Field("none", description="DynamicD schedule of D's active channel fraction")
    dynamic_d_min: float = Field(0.5, gt=0.0, le=1.0, description="DynamicD: the smallest active channel fraction")
    lr: float = Field(2e-4, gt=0.0, le=1.0)
    ttur: float = Field(1.0, gt=0.0, description="D learning rate = lr * ttur")
    beta1: float = Field(0.5, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    n_dis: int = Field(1, ge=1, description="D updates per G update")
    ema_beta: float = Field(0.999, ge=0.0, lt=1.0, description="0 disables the EMA generator")
    eval_every: int = Field(200, ge=1)
    grid_size: int = Field(64, ge=1, le=256)
    truncation: Optional[float] = Field(
        None, gt=0.0, description="truncation trick (Brock et al. 2019): sampling latents from N(0, I) truncated to"
        " |z_i| <= truncation; None: untruncated", json_schema_extra=SAMPLING_TIME)
    sampling_grid: list[dict[str, Any]] = Field(
        default_factory=list, description="settings of the sampling-time fields, each scored at every eval on the"
        " same generator (tagged metrics); empty: the config's own setting only")
    max_grad_norm: float = Field(1e4, gt=0.0, description="a larger gradient norm counts as divergence")

    @field_validator(*REGISTRIES)
    @classmethod
    def _registered(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        """Each name must be registered in the field's catalog registry (the error lists the
        allowed names); a joined field (``reg``, ``aug_policy``) is normalised to ``a+b`` /
        ``a,b`` without spaces; an optional field may be None."""
        return registered_name(v, info.field_name)

    def generated_classes(self) -> int:
        """How many classes the generator can be asked for (0: it takes no labels)."""
        return self.num_classes if self.conditioning != "none" else 0

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> "GanConfig":
        return check_combinations(self, info.context)


def violations(config: Mapping[str, Any]) -> list[str]:
    """Why ``config`` (a raw dict; missing fields take their defaults) cannot run; [] when it can.

    Field errors (unknown names, out-of-range values) come first as ``field: message``;
    combination rules (:mod:`.rules`) are checked once every field is valid.
    """
    try:
        cfg = GanConfig.model_validate(dict(config), context={"rules": False})
    except ValidationError as e:
        out = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            out.append(f"{loc}: {msg}" if loc else msg)
        return out
    return check_rules(cfg)
