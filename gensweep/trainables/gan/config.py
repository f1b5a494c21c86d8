"""The GAN trainable's settings: one validated model; names are checked against the registries."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gensweep.trainables.gan.architectures import ARCHITECTURES
from gensweep.trainables.gan.augment import AUGMENTATIONS
from gensweep.trainables.gan.losses import LOSSES
from gensweep.trainables.gan.regularizers import REGULARIZERS


class GanConfig(BaseModel):
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
    loss: str = "ns"
    reg: str = "none"
    reg_weight: float | None = Field(None, ge=0.0, description="None: the regularizer's default")
    reg_interval: int = Field(1, ge=1, description="lazy regularization: every k steps, weight x k")
    aug: str = "none"
    lr: float = Field(2e-4, gt=0.0, le=1.0)
    ttur: float = Field(1.0, gt=0.0, description="D learning rate = lr * ttur")
    beta1: float = Field(0.5, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    n_dis: int = Field(1, ge=1, description="D updates per G update")
    ema_beta: float = Field(0.999, ge=0.0, lt=1.0, description="0 disables the EMA generator")
    eval_every: int = Field(200, ge=1)
    grid_size: int = Field(64, ge=1, le=256)
    max_grad_norm: float = Field(1e4, gt=0.0, description="a larger gradient norm counts as divergence")

    @field_validator("arch")
    @classmethod
    def _arch(cls, v: str) -> str:
        ARCHITECTURES.entry(v)
        return v

    @field_validator("loss")
    @classmethod
    def _loss(cls, v: str) -> str:
        LOSSES.entry(v)
        return v

    @field_validator("reg")
    @classmethod
    def _reg(cls, v: str) -> str:
        REGULARIZERS.entry(v)
        return v

    @field_validator("aug")
    @classmethod
    def _aug(cls, v: str) -> str:
        AUGMENTATIONS.entry(v)
        return v
