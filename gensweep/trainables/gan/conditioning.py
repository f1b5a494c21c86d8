"""Class conditioning: how labels enter G and D, and which class losses they add.

A conditioning is a class built as ``cls(num_classes, weight)``; every architecture asks it for
the same four label pathways, so any architecture works with any conditioning:

- ``g_latent(z_dim)``: module ``(z, y) -> z'`` with ``out_dim`` (e.g. one-hot concatenated to z);
- ``g_embed()``: module ``y -> e`` with ``out_dim`` (0: no label input to G's norms), fed to
  every conditional BatchNorm of G;
- ``d_input(channels)``: module ``(x, y) -> x'`` with ``out_channels`` (e.g. one-hot maps);
- ``d_head(feat_dim)``: module ``(features, y) -> (logits [N], aux dict)``;
- ``terms()``: class-loss :class:`Term` s added to D_main / G_main (weight: ``cond_weight``).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from gensweep.trainables.gan.terms import Ingredient, StepView, Term
from gensweep.trainables.registry import Registry

Tensor = torch.Tensor
EMBED_DIM = 32  # size of G's class embedding for conditional BatchNorm (shared by all blocks, as in BigGAN)

CONDITIONINGS: Registry[type] = Registry("conditioning")


class _Identity2(nn.Module):
    def __init__(self, out: int):
        super().__init__()
        self.out_dim = self.out_channels = out

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        return x


class _NoEmbed(nn.Module):
    out_dim = 0

    def forward(self, y: Optional[Tensor]) -> None:
        return None


class _ClassEmbed(nn.Module):
    def __init__(self, num_classes: int, dim: int = EMBED_DIM):
        super().__init__()
        self.out_dim = dim
        self.embed = nn.Embedding(num_classes, dim)

    def forward(self, y: Optional[Tensor]) -> Tensor:
        return self.embed(_need(y))


class _OneHotLatent(nn.Module):
    def __init__(self, z_dim: int, num_classes: int):
        super().__init__()
        self.k, self.out_dim = num_classes, z_dim + num_classes

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        return torch.cat([z, F.one_hot(_need(y), self.k).to(z.dtype)], dim=1)


class _OneHotMaps(nn.Module):
    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.k, self.out_channels = num_classes, channels + num_classes

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        maps = F.one_hot(_need(y), self.k).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return torch.cat([x, maps], dim=1)


class LinearHead(nn.Module):
    """Unconditional logit, optionally plus a projection term and/or a class-logit head."""

    def __init__(self, feat_dim: int, num_classes: int = 0, *, projection: bool = False, cls_out: int = 0):
        super().__init__()
        self.linear = nn.Linear(feat_dim, 1)
        self.embed = None
        if projection:
            self.embed = nn.Embedding(num_classes, feat_dim)
            nn.init.xavier_uniform_(self.embed.weight)
        self.cls = nn.Linear(feat_dim, cls_out) if cls_out else None

    def forward(self, f: Tensor, y: Optional[Tensor] = None) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self.linear(f).squeeze(1)
        if self.embed is not None:
            logits = logits + (self.embed(_need(y)) * f).sum(1)
        aux = {} if self.cls is None else {"cls": self.cls(f)}
        return logits, aux


def _need(y: Optional[Tensor]) -> Tensor:
    if y is None:
        raise ValueError("this conditioning needs class labels (num_classes > 0)")
    return y


class Conditioning(Ingredient):
    needs_labels = True

    def __init__(self, num_classes: int, weight: float = 1.0):
        self.k = num_classes
        self.weight = weight  # of the class-loss terms (config: cond_weight)

    def g_latent(self, z_dim: int) -> nn.Module:
        return _Identity2(z_dim)

    def g_embed(self) -> nn.Module:
        return _NoEmbed()

    def d_input(self, channels: int) -> nn.Module:
        return _Identity2(channels)

    def d_head(self, feat_dim: int) -> nn.Module:
        return LinearHead(feat_dim)

    def terms(self) -> list[Term]:
        return []


@CONDITIONINGS.register("none", ref="unconditional generation (labels unused)")
class Unconditional(Conditioning):
    needs_labels = False


@CONDITIONINGS.register("concat", ref="Mirza & Osindero 2014, Conditional Generative Adversarial Nets (one-hot concatenation)")
class Concat(Conditioning):
    def g_latent(self, z_dim: int) -> nn.Module:
        return _OneHotLatent(z_dim, self.k)

    def d_input(self, channels: int) -> nn.Module:
        return _OneHotMaps(channels, self.k)


class _CondBNGenerator(Conditioning):
    def g_embed(self) -> nn.Module:
        return _ClassEmbed(self.k)


@CONDITIONINGS.register("projection", ref="Miyato & Koyama 2018, cGANs with Projection Discriminator (+ conditional BN in G)")
class Projection(_CondBNGenerator):
    def d_head(self, feat_dim: int) -> nn.Module:
        return LinearHead(feat_dim, self.k, projection=True)


@CONDITIONINGS.register("acgan", ref="Odena et al. 2017, Conditional Image Synthesis with Auxiliary Classifier GANs")
class ACGan(_CondBNGenerator):
    """D gets a K-way classifier head; D learns to classify real and fake, G to be classified as y."""

    def d_head(self, feat_dim: int) -> nn.Module:
        return LinearHead(feat_dim, self.k, cls_out=self.k)

    def terms(self) -> list[Term]:
        weight = self.weight
        def d_cls(v: StepView) -> Tensor:
            return F.cross_entropy(v.real_aux["cls"], v.labels) + F.cross_entropy(v.fake_aux["cls"], v.labels)

        def g_cls(v: StepView) -> Tensor:
            return F.cross_entropy(v.fake_aux["cls"], v.labels)

        return [Term("acgan_cls", "D_main", d_cls, weight), Term("acgan_cls", "G_main", g_cls, weight)]


@CONDITIONINGS.register("adcgan", ref="Hou et al. 2022, Conditional GANs with Auxiliary Discriminative Classifier (ADC-GAN)")
class ADCGan(_CondBNGenerator):
    """D gets a 2K-way head over (class, real/fake); G is pulled to 'real y' and pushed from 'fake y'."""

    def d_head(self, feat_dim: int) -> nn.Module:
        return LinearHead(feat_dim, self.k, cls_out=2 * self.k)

    def terms(self) -> list[Term]:
        weight = self.weight
        k = self.k

        def d_cls(v: StepView) -> Tensor:
            return F.cross_entropy(v.real_aux["cls"], v.labels) + F.cross_entropy(v.fake_aux["cls"], v.labels + k)

        def g_cls(v: StepView) -> Tensor:
            logits = v.fake_aux["cls"]
            return F.cross_entropy(logits, v.labels) - F.cross_entropy(logits, v.labels + k)

        return [Term("adcgan_cls", "D_main", d_cls, weight), Term("adcgan_cls", "G_main", g_cls, weight)]
