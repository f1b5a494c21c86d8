"""generate_features / evaluate on a backbone that reads pixels back: batch order, seeds, labels,
logits, the rank split and its gather, and every input check (no Ray, no process group)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gensweep.platform.metrics import (
    Backbone,
    EvalProtocol,
    ProtocolMismatch,
    RefStats,
    RefStatsKey,
    evaluate,
    frechet_distance,
    mean_cov,
)
from gensweep.platform.metrics.backbones import check_images
from gensweep.platform.metrics.evaluator import generate_features

# 10 samples in batches of 4: batches (0, 4), (1, 4), (2, 2); "is" reads the logits
PROTOCOL = EvalProtocol(backbone="pixels", num_samples=10, batch_size=4, latent_seed=7, metrics=("fid", "is"))


class Pixels(Backbone):
    """Features: pixels (0, 0) and (0, 1) of channel 0; logits (three of them): (p0, -p0, p1)."""

    name, feature_dim, has_logits, protocol, num_classes = "pixels", 2, True, "pixels-v1", 3

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        p = images[:, 0, 0, :2]
        return {"features": p.clone(), "logits": torch.stack([p[:, 0], -p[:, 0], p[:, 1]], 1)}


class TenLogits(Backbone):
    """Logits but no ``num_classes``: ten logit columns are read."""

    name, feature_dim, has_logits, protocol = "ten-logits", 2, True, "ten-logits-v1"

    def forward(self, images):
        p = images[:, 0, 0, :2]
        return {"features": p.clone(), "logits": p[:, :1] + torch.arange(10.0)}


class NoLogits(Pixels):
    name, has_logits = "no-logits", False


def sample(count: int, seed: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Image j of the batch drawn with ``seed``: pixel (0, 0) = 100 seed + j, pixel (0, 1) = its label (or -1)."""
    x = torch.zeros(count, 1, 4, 4)
    x[:, 0, 0, 0] = seed * 100 + torch.arange(count, dtype=torch.float32)
    x[:, 0, 0, 1] = -1.0 if labels is None else labels.float()
    return x


def rows(batches, num_classes: int = 0) -> torch.Tensor:
    """Expected rows (p0, p1, logits..., label) of the given (index, count) batches, by hand."""
    out = []
    for i, count in batches:
        p0 = 100.0 * (7 + i) + torch.arange(count, dtype=torch.float32)
        labels = (4 * i + torch.arange(count)) % num_classes if num_classes else None
        p1 = torch.full((count,), -1.0) if labels is None else labels.float()
        cols = [p0, p1, p0, -p0, p1] + ([labels.float()] if labels is not None else [])
        out.append(torch.stack(cols, 1))
    return torch.cat(out) if out else torch.zeros(0, 5 + (1 if num_classes else 0))


def test_one_process_reads_the_batches_in_order_with_their_seeds():
    backbone = Pixels().train()
    got = generate_features(sample, backbone, PROTOCOL)
    want = rows(PROTOCOL.batches())
    assert set(got) == {"features", "logits"}
    np.testing.assert_array_equal(got["features"], want[:, :2].numpy())
    np.testing.assert_array_equal(got["logits"], want[:, 2:5].numpy())
    assert got["features"][:, 0].tolist() == [700, 701, 702, 703, 800, 801, 802, 803, 900, 901]
    assert got["features"].dtype == np.float32 and not backbone.training  # scored in eval mode
    only_fid = generate_features(sample, Pixels(), EvalProtocol(backbone="pixels", num_samples=10, batch_size=4,
                                                                latent_seed=7))
    assert set(only_fid) == {"features"}
    np.testing.assert_array_equal(only_fid["features"], want[:, :2].numpy())


def test_classes_are_dealt_in_turn_over_all_batches():
    got = generate_features(sample, Pixels(), PROTOCOL, num_classes=3)
    want = rows(PROTOCOL.batches(), num_classes=3)
    assert got["labels"].tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0] and got["labels"].dtype == np.int64
    np.testing.assert_array_equal(got["features"], want[:, :2].numpy())  # pixel (0, 1): the label drawn for
    np.testing.assert_array_equal(got["logits"], want[:, 2:5].numpy())


def test_a_backbone_without_num_classes_gives_ten_logits():
    got = generate_features(sample, TenLogits(), PROTOCOL)
    assert got["logits"].shape == (10, 10)
    np.testing.assert_array_equal(got["logits"][:, 3], got["features"][:, 0] + 3)


@pytest.mark.parametrize("world_size", [2, 3, 4])  # 4 ranks for 3 batches: rank 3 has none
@pytest.mark.parametrize("num_classes", [0, 3])
def test_every_rank_draws_its_batches_and_gets_all_rows_in_batch_order(world_size, num_classes):
    per_rank = [rows([b for b in PROTOCOL.batches() if b[0] % world_size == r], num_classes) for r in range(world_size)]
    single = generate_features(sample, Pixels(), PROTOCOL, num_classes=num_classes)
    for rank in range(world_size):
        sent = []

        def gather(mine):
            sent.append(mine)
            return [t.double().numpy() for t in per_rank]  # any array type and dtype: made float32 tensors

        got = generate_features(sample, Pixels(), PROTOCOL, rank=rank, world_size=world_size, all_gather=gather,
                                num_classes=num_classes)
        assert len(sent) == 1 and sent[0].dtype == torch.float32
        assert sent[0].shape == per_rank[rank].shape and torch.equal(sent[0], per_rank[rank])  # same width when empty
        assert set(got) == set(single)
        for key in single:
            np.testing.assert_array_equal(got[key], single[key])
            assert got[key].dtype == single[key].dtype  # float32 features and logits, int64 labels


def test_generation_input_checks():
    with pytest.raises(ValueError, match="^world_size > 1 needs an all_gather callable$"):
        generate_features(sample, Pixels(), PROTOCOL, world_size=2)
    for rank, world in ((2, 2), (-1, 1)):
        with pytest.raises(ValueError, match=rf"^rank {rank} outside world_size {world}$"):
            generate_features(sample, Pixels(), PROTOCOL, rank=rank, world_size=world, all_gather=list)
    with pytest.raises(ValueError, match="^metric 'is' needs logits; backbone 'no-logits' has none$"):
        generate_features(sample, NoLogits(), PROTOCOL)
    with pytest.raises(ValueError, match="^sample_fn returned 3 images for batch 0, expected 4$"):
        generate_features(lambda c, s: sample(c - 1, s), Pixels(), PROTOCOL)
    good = [rows([(0, 4), (2, 2)]), rows([(1, 4)])]
    with pytest.raises(RuntimeError, match="^all_gather returned 1 parts for world_size 2$"):
        generate_features(sample, Pixels(), PROTOCOL, world_size=2, all_gather=lambda t: good[:1])
    with pytest.raises(RuntimeError, match="^rank 1 sent 6 rows, expected 4$"):
        generate_features(sample, Pixels(), PROTOCOL, world_size=2, all_gather=lambda t: [good[0], good[0]])


def _ref(resolution: int = 4, classes: int = 0) -> RefStats:
    feats = np.random.default_rng(0).normal(size=(12, 2))
    key = RefStatsKey(dataset="pixels-test", split="test", resolution=resolution, protocol="pixels-v1", n=12, resize="none")
    ref = RefStats.from_features(key, feats)
    ref.classes.update({k: RefStats.from_features(key.of_class(k, 4), feats[k::classes]) for k in range(classes)})
    return ref


def test_images_must_have_the_references_resolution():
    ref = _ref()
    assert generate_features(sample, Pixels(), PROTOCOL, ref=ref)["features"].shape == (10, 2)
    with pytest.raises(ProtocolMismatch, match="resolution: reference=4 vs other=8$"):
        generate_features(lambda c, s: torch.zeros(c, 1, 8, 8), Pixels(), PROTOCOL, ref=ref)
    with pytest.raises(ProtocolMismatch, match="resolution: reference=4 vs other='4x6'$"):
        generate_features(lambda c, s: torch.zeros(c, 1, 4, 6), Pixels(), PROTOCOL, ref=ref)


def test_evaluate_draws_class_balanced_samples_for_per_class_metrics():
    ref = _ref(classes=3)
    protocol = EvalProtocol(backbone="pixels", num_samples=12, batch_size=4, latent_seed=7, metrics=("fid", "intra_fid"))
    got = evaluate(sample, Pixels(), ref, protocol)
    fake = generate_features(sample, Pixels(), protocol, num_classes=3)
    want = np.mean([frechet_distance(ref.classes[k].mu, ref.classes[k].sigma,
                                     *mean_cov(fake["features"][fake["labels"] == k])) for k in range(3)])
    assert got["intra_fid"] == pytest.approx(want, rel=1e-12)
    assert got["fid"] == pytest.approx(frechet_distance(ref.mu, ref.sigma, *mean_cov(fake["features"])), rel=1e-12)
    assert (got["eval_n"], got["backbone"], got["eval_protocol"], got["refstats_key"]) == (12, "pixels", "pixels-v1",
                                                                                           ref.key.slug)
    with pytest.raises(ValueError, match=rf"^metric 'intra_fid' needs per-class reference statistics; {ref.key.slug} has"
                                         " none$"):
        evaluate(sample, Pixels(), _ref(), protocol)


def test_evaluate_refuses_another_backbone_or_backbone_protocol():
    ref = _ref()
    with pytest.raises(ProtocolMismatch, match="^backbone: protocol='mnist-lenet' vs given='pixels'$"):
        evaluate(sample, Pixels(), ref, EvalProtocol(num_samples=10, batch_size=4))
    other = RefStats(key=RefStatsKey(**{**ref.key.to_dict(), "protocol": "pixels-v0"}), mu=ref.mu, sigma=ref.sigma,
                     features=ref.features)
    with pytest.raises(ProtocolMismatch, match="protocol: reference='pixels-v0' vs other='pixels-v1'"):
        evaluate(sample, Pixels(), other, PROTOCOL)


def test_gathers_run_on_the_current_cuda_device_under_nccl_and_on_the_cpu_otherwise(monkeypatch):
    from gensweep.platform.metrics.evaluator import gather_device

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)  # no GPU needed to name one
    assert gather_device("nccl") == torch.device("cuda", 3)
    assert gather_device("gloo") == torch.device("cpu")
    assert gather_device("mpi") == torch.device("cpu")


FID_ONLY = EvalProtocol(backbone="pixels", num_samples=10, batch_size=4, latent_seed=7)  # no logit metric


@pytest.mark.parametrize("num_classes", [0, 3])
def test_without_a_logit_metric_every_rank_sends_features_and_labels_only(num_classes):
    """A backbone with logits, a protocol that reads none, 4 ranks for 3 batches: every rank (the empty one too)
    sends (features, label) rows only, so the widths agree as an all_gather of padded tensors needs."""
    keep = [0, 1] + ([5] if num_classes else [])  # p0, p1, label: no logit columns
    per_rank = [rows([b for b in FID_ONLY.batches() if b[0] % 4 == r], num_classes)[:, keep] for r in range(4)]
    for rank in range(4):
        sent = []

        def gather(mine):
            sent.append(mine)
            return per_rank

        got = generate_features(sample, Pixels(), FID_ONLY, rank=rank, world_size=4, all_gather=gather,
                                num_classes=num_classes)
        assert sent[0].shape == per_rank[rank].shape and torch.equal(sent[0], per_rank[rank])
        np.testing.assert_array_equal(got["features"], rows(FID_ONLY.batches(), num_classes)[:, :2].numpy())


class Wide(Backbone):
    """Three float64 features that do not hold the label, (p0, p0 + 1000, -p0), and ten float64 logits p0 + c
    (no ``num_classes``)."""

    name, feature_dim, has_logits, protocol = "wide", 3, True, "wide-v1"

    def forward(self, images):
        p0 = images[:, 0, 0, 0].double()
        return {"features": torch.stack([p0, p0 + 1000, -p0], 1),
                "logits": p0[:, None] + torch.arange(10, dtype=torch.float64)}


def test_labels_are_the_last_column_and_results_are_float32_for_a_float64_backbone():
    got = generate_features(sample, Wide(), PROTOCOL, num_classes=3)
    p0 = np.array([700, 701, 702, 703, 800, 801, 802, 803, 900, 901], dtype=np.float32)
    assert got["labels"].tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0] and got["labels"].dtype == np.int64
    np.testing.assert_array_equal(got["features"], np.stack([p0, p0 + 1000, -p0], 1))
    np.testing.assert_array_equal(got["logits"], p0[:, None] + np.arange(10, dtype=np.float32))  # ten, no label
    assert got["features"].dtype == got["logits"].dtype == np.float32


class CheckedPixels(Pixels):
    """Pixels behind the real backbones' input check (float NCHW)."""

    def forward(self, images):
        return super().forward(check_images(images))


def test_a_sampler_without_a_channel_axis_gets_the_backbones_nchw_message():
    """The resolution check reads the last two axes only, so a 3-d batch reaches the backbone's own check."""
    with pytest.raises(ValueError, match=r"^images must be NCHW \(4-d\), got shape \(4, 4, 4\)$"):
        generate_features(lambda c, s: torch.zeros(c, 4, 4), CheckedPixels(), PROTOCOL, ref=_ref())
