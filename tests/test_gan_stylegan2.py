"""StyleGAN2-lite's pieces against their paper's formulas, and path-length regularization
(Karras et al. 2020) against an explicit Jacobian, lazily in the G_reg phase."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gensweep.trainables.context import LocalContext
from gensweep.trainables.gan.architectures import ARCHITECTURES, ArchSpec
from gensweep.trainables.gan.architectures.style_layers import MinibatchStd, modulated_conv2d
from gensweep.trainables.gan.config import GanConfig
from gensweep.trainables.gan.regularizers import REGULARIZERS
from gensweep.trainables.gan.config import violations
from gensweep.trainables.gan.state import GanState
from gensweep.trainables.gan.terms import StepView
from gensweep.trainables.gan.trainable import train_gan

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_modulated_conv_is_the_papers_per_sample_modulated_and_demodulated_weights():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 6, 6, generator=g, dtype=torch.float64)
    weight = torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.rand(3, 4, generator=g, dtype=torch.float64) + 0.5
    for demodulate in (True, False):
        out = modulated_conv2d(x, weight, styles, demodulate=demodulate)
        for i in range(3):  # Eq. 1 and 3: w'_ijk = s_i w_ijk, w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps)
            w = weight.numpy() * styles[i].numpy()[None, :, None, None]
            if demodulate:
                w = w / np.sqrt((w**2).sum(axis=(1, 2, 3), keepdims=True) + 1e-8)
            ref = F.conv2d(x[i : i + 1], torch.from_numpy(w), padding=1)
            torch.testing.assert_close(out[i : i + 1], ref, rtol=1e-10, atol=1e-10)


def test_demodulation_keeps_unit_output_variance_for_unit_inputs():
    torch.manual_seed(0)
    x = torch.randn(8, 64, 16, 16)
    out = modulated_conv2d(x, torch.randn(32, 64, 3, 3), torch.rand(8, 64) * 3 + 0.1)
    assert 0.8 < float(out[:, :, 1:-1, 1:-1].std()) < 1.2  # the borders see zero padding


def test_minibatch_std_is_the_group_std_channel():
    x = torch.randn(8, 3, 2, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = MinibatchStd(4)(x)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], x)
    groups = x.numpy().reshape(4, 2, 3, 2, 2)  # sample i is in group i % 2
    std = np.sqrt(groups.var(axis=0) + 1e-8).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(out[:, 3, 0, 0].numpy(), std[np.arange(8) % 2], rtol=1e-12)
    assert MinibatchStd(4)(torch.randn(6, 3, 2, 2)).shape == (6, 4, 2, 2)  # 6 samples: groups of 3


def _nets(res=32, cond="none", classes=0):
    torch.manual_seed(0)
    return ARCHITECTURES.get("stylegan2-lite")(ArchSpec(res, 1, 4, 8, classes, cond))


def test_generator_maps_normalized_z_to_broadcast_ws_and_noise_is_fixed_in_eval_mode():
    G, _ = _nets(cond="projection", classes=10)
    z, y = torch.randn(4, 8), torch.arange(4)
    ws = G.mapping(z, y)
    assert ws.shape == (4, G.body.num_ws, 16) and torch.equal(ws, ws[:, :1].expand_as(ws))
    torch.testing.assert_close(G.mapping(3.0 * z, y), ws)  # z enters normalized to unit second moment
    assert (G.mapping(z, (y + 1) % 10) - ws).abs().max() > 1e-4  # labels enter the mapping
    assert G.body.num_ws == 2 * 3 + 1 + 1  # 32 px from 4 px: 7 convs and the last ToRGB
    with torch.no_grad():
        for m in G.modules():
            if getattr(m, "noise_strength", None) is not None:
                m.noise_strength.fill_(0.5)
        train_a, train_b = G(z, y), G(z, y)
        G.eval()
        eval_a, eval_b = G(z, y), G(z, y)
    assert (train_a - train_b).abs().max() > 1e-4 and torch.equal(eval_a, eval_b)


# ----------------------------------------------------------------------------- path length


class ToyStyleG(nn.Module):
    """mapping: z -> tanh(A z) broadcast to 3 ws; synthesis: tanh(sum_k B_k ws_k) as a 1 x 4 x 4 image."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.A = nn.Parameter(torch.randn(5, 6, generator=g, dtype=torch.float64))
        self.B = nn.Parameter(torch.randn(3, 16, 5, generator=g, dtype=torch.float64) * 0.5)

    def mapping(self, z, labels=None):
        return torch.tanh(z @ self.A.T).unsqueeze(1).repeat(1, 3, 1)

    def synthesis(self, ws):
        return torch.tanh(torch.einsum("kpw,nkw->np", self.B, ws)).view(-1, 1, 4, 4)


def test_path_length_penalty_is_the_papers_with_its_moving_average():
    """E (||J_w^T y|| - a)^2 with y ~ N(0, I) / sqrt(H W), the norm taken as sqrt(mean over the ws of
    their squared norms), a <- a + 0.01 (mean length - a), on half the batch (stylegan2-ada)."""
    reg = REGULARIZERS.get("path-length")()
    (term,) = reg.terms()
    assert (term.phase, term.weight) == ("G_reg", 2.0)
    G = ToyStyleG()
    z = torch.randn(8, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = 0.0
    for step in range(3):
        torch.manual_seed(10 + step)
        got = term.fn(StepView(step, None, None, G, None, None, z=z))
        torch.manual_seed(10 + step)
        y = (torch.randn(4, 1, 4, 4, dtype=torch.float64) / 4.0).numpy().reshape(4, 16)
        lengths = []
        for i in range(4):
            ws = G.mapping(z[i : i + 1])
            jac = torch.autograd.functional.jacobian(lambda w: G.synthesis(w).flatten(), ws)  # [16, 1, 3, 5]
            jt_y = np.einsum("p,pkw->kw", y[i], jac.detach().numpy()[:, 0])
            lengths.append(np.sqrt((jt_y**2).sum(1).mean()))
        lengths = np.array(lengths)
        a = a + 0.01 * (lengths.mean() - a)
        assert float(got.detach()) == pytest.approx(np.mean((lengths - a) ** 2), rel=1e-9)
        assert reg.state["pl_mean"] == pytest.approx(a, rel=1e-12)
    got.backward()
    assert float(G.A.grad.abs().sum()) > 0 and float(G.B.grad.abs().sum()) > 0


def test_path_length_needs_a_generator_with_a_mapping_network():
    (msg,) = violations({"reg": "path-length", "arch": "dcgan"})
    assert "stylegan2-lite" in msg and msg.endswith("(fields: reg, arch)")
    assert violations({"reg": "path-length+r1", "arch": "stylegan2-lite", "reg_interval": 4}) == []


def test_lazy_path_length_runs_in_g_reg_with_gs_adam_corrected_and_its_average_checkpointed():
    cfg = {"steps": 4, "eval_every": 4, "batch_size": 8, "resolution": 16, "width": 4, "z_dim": 8, "num_classes": 0,
           "arch": "stylegan2-lite", "reg": "path-length+r1", "reg_interval": 2, "grid_size": 2}
    st = GanState(GanConfig.model_validate(cfg), torch.device("cpu"))
    for net in ("G", "D"):
        group = st.opt[net].param_groups[0]
        assert math.isclose(group["lr"], 2e-4 * 2 / 3) and group["betas"] == pytest.approx((0.5 ** (2 / 3), 0.999 ** (2 / 3)))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 16, 16, generator=g) * 2 - 1
    ctx = LocalContext(cfg, lambda epoch: ({"image": x[i : i + 8], "label": torch.zeros(8, dtype=torch.long)} for i in (0, 8)))
    last = train_gan(ctx)
    state = ctx.states[-1]
    assert last["loss/G_reg"] >= 0 and math.isfinite(last["term/G_reg/path_length"])
    assert state["reg_state"]["path-length"]["pl_mean"] > 0
    assert state["opt_G"]["state"][0]["step"].item() == 4 + 2  # G_main every step, G_reg at steps 0 and 2
