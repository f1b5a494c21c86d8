"""Statistics and distances: Fréchet (vs the classic sqrtm formula), KID, precision/recall, Inception Score."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

from gensweep.platform.metrics import (
    frechet_distance,
    frechet_distance_sqrtm,
    inception_score,
    kid,
    mean_cov,
    precision_recall,
    trace_sqrt_product,
)


def one_blas_thread():
    """Single-threaded BLAS: sqrtm barely gains from 2 threads, and spinning BLAS threads crawl on a busy machine."""
    try:
        from threadpoolctl import threadpool_limits  # present via scikit-learn (mlxtend)
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1)


def classic_fid(mu1, s1, mu2, s2):
    """The original FID formula: tr(S1 + S2 - 2 sqrtm(S1 S2)) + |mu1 - mu2|^2, in float64."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = np.real(scipy.linalg.sqrtm(s1 @ s2))
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def features(rng, n, d, scale=None, shift=0.0):
    x = rng.standard_normal((n, d))
    if scale is not None:
        x = x * scale
    return x + shift


def stats_pair(kind, d, rng):
    if kind == "well":
        a, b = features(rng, 4 * d, d), features(rng, 4 * d, d, shift=0.3) * 1.2
    elif kind == "rank_deficient":  # N < D: both covariances singular
        a, b = features(rng, d // 2, d), features(rng, d // 2 + 3, d, shift=0.1)
    elif kind == "tiny_eigenvalues":  # spectrum spanning 12 orders of magnitude
        a = features(rng, 4 * d, d, scale=np.logspace(0, -6, d))
        b = features(rng, 4 * d, d, scale=np.logspace(-6, 0, d), shift=0.05)
    else:
        raise AssertionError(kind)
    return (*mean_cov(a), *mean_cov(b))


@pytest.mark.parametrize("kind", ["well", "rank_deficient", "tiny_eigenvalues"])
@pytest.mark.parametrize("method", ["cholesky", "eigh"])
def test_frechet_matches_sqrtm_64d(kind, method):
    rng = np.random.default_rng(1)
    mu1, s1, mu2, s2 = stats_pair(kind, 64, rng)
    ours = frechet_distance(mu1, s1, mu2, s2, method=method)
    ref = classic_fid(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-6)


@pytest.fixture(scope="module")
def stats_2048():
    # One ill-conditioned 2048-d case (rank-deficient S1 with a 1e-3..1 scale spread); sqrtm at 2048-d costs ~15 s.
    rng = np.random.default_rng(2)
    a = features(rng, 1500, 2048, scale=np.logspace(0, -3, 2048))
    b = features(rng, 2200, 2048, shift=0.02) * 0.5
    with one_blas_thread():
        mu1, s1 = mean_cov(a)
        mu2, s2 = mean_cov(b)
        return mu1, s1, mu2, s2, classic_fid(mu1, s1, mu2, s2)


def test_frechet_matches_sqrtm_2048d_ill_conditioned(stats_2048):
    mu1, s1, mu2, s2, ref = stats_2048
    with one_blas_thread():
        assert np.linalg.eigvalsh(s1)[0] < 1e-12 * np.trace(s1)  # singular: N = 1500 < D = 2048
        assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)


def test_frechet_symmetric_self_zero_and_torch_inputs():
    rng = np.random.default_rng(9)
    mu1, s1 = mean_cov(features(rng, 200, 256, scale=np.logspace(0, -4, 256)))
    mu2, s2 = mean_cov(features(rng, 300, 256, shift=0.1))
    ab, ba = frechet_distance(mu1, s1, mu2, s2), frechet_distance(mu2, s2, mu1, s1)
    assert ab == pytest.approx(ba, rel=1e-9)
    scale = np.trace(s1)
    assert abs(frechet_distance(mu1, s1, mu1, s1)) < 1e-6 * scale
    t = [torch.from_numpy(x) for x in (mu1, s1, mu2, s2)]
    assert frechet_distance(*t) == pytest.approx(ab, rel=1e-12)


def test_trace_sqrt_product_known_value():
    # diagonal case: tr sqrt(diag(a) diag(b)) = sum sqrt(a b)
    a, b = np.array([4.0, 1.0, 0.0, 9.0]), np.array([1.0, 16.0, 5.0, 4.0])
    assert trace_sqrt_product(np.diag(a), np.diag(b)) == pytest.approx(2 + 4 + 0 + 6, abs=1e-12)


def test_mean_cov_matches_numpy_and_is_float64():
    x = np.random.default_rng(3).standard_normal((300, 17)).astype(np.float32)
    mu, sigma = mean_cov(x, chunk=64)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-10, atol=1e-12)


def test_kid_near_zero_same_distribution_positive_when_shifted():
    rng = np.random.default_rng(4)
    real, same = rng.standard_normal((1000, 32)), rng.standard_normal((1000, 32))
    shifted = rng.standard_normal((1000, 32)) + 0.5
    k_same, k_same_std = kid(real, same, subsets=20, subset_size=500, seed=0)
    k_shift, _ = kid(real, shifted, subsets=20, subset_size=500, seed=0)
    assert k_shift > 0.05
    assert abs(k_same) < 0.02 * k_shift
    assert k_same_std < 0.1 * k_shift
    assert kid(real, same, subsets=20, subset_size=500, seed=0) == (k_same, k_same_std)  # seeded


def test_kid_unbiased_estimator_value():
    # subset_size == set size: one exact evaluation of the unbiased MMD^2 with k(x,y) = (x.y/d + 1)^3
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((40, 8)), rng.standard_normal((40, 8)) + 0.3
    k = lambda a, b: (a @ b.T / 8 + 1) ** 3  # noqa: E731
    m = 40
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    expected = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    mean, std = kid(x, y, subsets=3, subset_size=40)
    assert mean == pytest.approx(expected, rel=1e-10) and std == pytest.approx(0, abs=1e-10)


def test_precision_recall_identical_and_disjoint():
    rng = np.random.default_rng(6)
    real = rng.standard_normal((500, 16))
    p, r = precision_recall(real, real.copy(), k=3, chunk=128)  # chunk < N exercises the blocking
    assert (p, r) == (1.0, 1.0)
    far = rng.standard_normal((400, 16)) + 100.0
    p, r = precision_recall(real, far, k=3, chunk=128)
    assert p < 0.01 and r < 0.01


def test_precision_recall_partial_overlap_and_chunk_invariance():
    rng = np.random.default_rng(7)
    real = rng.standard_normal((300, 8))
    fake = np.concatenate([rng.standard_normal((150, 8)), rng.standard_normal((150, 8)) + 50])
    p, r = precision_recall(real, fake, k=3, chunk=4096)
    assert 0.35 < p < 0.6  # half of the fakes are far away
    assert r > 0.8
    assert precision_recall(real, fake, k=3, chunk=37) == (p, r)


def test_inception_score_uniform_one_hot_and_constant():
    labels = np.arange(1000) % 10
    one_hot = np.full((1000, 10), -50.0)
    one_hot[np.arange(1000), labels] = 50.0
    mean, std = inception_score(one_hot, splits=10)
    assert mean == pytest.approx(10.0, rel=1e-6) and std < 1e-6
    mean, std = inception_score(np.tile(np.random.default_rng(8).standard_normal(10), (1000, 1)), splits=10)
    assert mean == pytest.approx(1.0, abs=1e-9)


def test_knn_radii_keep_float64_precision():
    # real points 0 and x = 1 + 2^-30 (k = 1): the ball around 0 reaches exactly x^2, which float32
    # would round down to 1, leaving the fake point -x (at distance^2 x^2 from 0) outside
    x = 1.0 + 2.0**-30
    precision, _ = precision_recall(np.array([[0.0], [x]]), np.array([[-x], [100.0]]), k=1)
    assert precision == 0.5


def test_inception_score_input_checks_and_default_splits():
    logits = np.random.default_rng(0).normal(size=(20, 4))
    assert inception_score(logits) == inception_score(logits, splits=10)
    assert inception_score(logits[:3], splits=3) == pytest.approx((1.0, 0.0))  # as many samples as splits: one each
    with pytest.raises(ValueError, match=r"N >= splits=2; got \(20,\)"):
        inception_score(logits[:, 0], splits=2)  # 1-D logits, however many
    with pytest.raises(ValueError, match=r"N >= splits=10; got \(3, 4\)"):
        inception_score(logits[:3])


def test_precision_recall_input_checks_and_default_k():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(12, 2)), rng.normal(size=(10, 2)) + 0.5
    line, far = np.arange(5.0)[:, None], np.array([[-3.5], [50], [51], [52], [53]])
    # the ball around 0 reaches its 3rd nearest neighbour (3), not its 4th (4): -3.5 stays outside
    assert precision_recall(line, far) == precision_recall(line, far, k=3) == (0.0, 1.0)
    assert precision_recall(line, far, k=4)[0] == 0.2
    with pytest.raises(ValueError, match="feature dims differ: 2 vs 3"):
        precision_recall(a, rng.normal(size=(10, 3)))
    for real, fake in ((a[:3], b), (a, b[:3])):  # either set with only k samples
        with pytest.raises(ValueError, match=rf"more than k=3 samples per set; got {len(real)} and {len(fake)}"):
            precision_recall(real, fake)
    assert precision_recall(a[:4], b[:4])  # k + 1 samples each is enough


def fid_from_eigenvalues(mu1, s1, mu2, s2):
    """|mu1 - mu2|^2 + tr S1 + tr S2 - 2 sum sqrt(eig(S1 S2)): the eigenvalues of a product of PSD
    matrices are real and >= 0, so tr sqrtm(S1 S2) is the sum of their square roots."""
    eig = np.linalg.eigvals(s1 @ s2).real.clip(0.0)
    d = np.ravel(mu1) - np.ravel(mu2)
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2.0 * np.sqrt(eig).sum())


def test_frechet_distance_sqrtm_matches_eigenvalues_and_frechet_distance():
    rng = np.random.default_rng(11)
    mu1, s1 = mean_cov(features(rng, 80, 12, scale=np.linspace(1.0, 0.2, 12)))
    mu2, s2 = mean_cov(features(rng, 90, 12, shift=0.4) * 1.5)
    want = fid_from_eigenvalues(mu1, s1, mu2, s2)
    assert want > 1.0  # the means and the spreads differ
    got = frechet_distance_sqrtm(mu1[None, :], s1, mu2[None, :], s2)  # row-vector means are flattened
    assert got == pytest.approx(want, rel=1e-10)
    assert got == pytest.approx(frechet_distance(mu1, s1, mu2, s2), rel=1e-10)
    t = [torch.from_numpy(x).float() for x in (mu1, s1, mu2, s2)]  # float32 tensors are computed in float64
    assert frechet_distance_sqrtm(*t) == pytest.approx(fid_from_eigenvalues(*(x.double().numpy() for x in t)), rel=1e-10)


def test_frechet_distance_sqrtm_offsets_the_diagonals_when_sqrtm_fails():
    # PSD covariances whose product has a repeated eigenvalue 0 without a square root: sqrtm gives NaN,
    # so the classic code retries with eps added to both diagonals
    s1 = np.array([[6, 2, 1, 3], [2, 8, 8, -2], [1, 8, 9, -4], [3, -2, -4, 5]], float)
    s2 = np.array([[4, -2, 2, 0], [-2, 2, -1, 0], [2, -1, 1, 0], [0, 0, 0, 0]], float)
    assert min(np.linalg.eigvalsh(s1)) > -1e-12 and min(np.linalg.eigvalsh(s2)) > -1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not np.isfinite(scipy.linalg.sqrtm(s1 @ s2)).all()
    mu1, mu2 = np.array([1.0, 0.0, 2.0, 0.0]), np.zeros(4)
    for eps in (1e-6, 1e-2):
        offset = np.eye(4) * eps
        want = fid_from_eigenvalues(mu1, s1 + offset, mu2, s2 + offset) - 2 * 4 * eps  # the traces are taken without the offset
        kwargs = {} if eps == 1e-6 else {"eps": eps}  # 1e-6: the default
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert frechet_distance_sqrtm(mu1, s1, mu2, s2, **kwargs) == pytest.approx(want, rel=1e-9)


def test_trace_sqrt_product_of_a_positive_definite_s1_keeps_its_smallest_direction():
    # S1 = diag(1, 1e-20) is positive definite: its plain Cholesky factor is exact, so the direction
    # S2 stretches by 1e20 contributes sqrt(1e-20 * 1e20) = 1 (a rank-detecting factor would drop it)
    assert trace_sqrt_product(np.diag([1.0, 1e-20]), np.diag([1.0, 1e20])) == pytest.approx(2.0, rel=1e-12)


def test_frechet_distance_rejects_mismatched_shapes_and_unknown_methods():
    mu3, mu4, eye3, eye4 = np.zeros(3), np.zeros(4), np.eye(3), np.eye(4)
    for args in ((mu3, eye4, mu3, eye4), (mu3, eye3, mu4, eye3), (mu4, eye4, mu4, eye3)):
        with pytest.raises(ValueError, match=r"shape mismatch: mu \(\d,\) vs \(\d,\), sigma \(\d, \d\) vs \(\d, \d\)"):
            frechet_distance(*args)
    with pytest.raises(ValueError, match="unknown method 'svd'; allowed: 'cholesky', 'eigh'"):
        frechet_distance(mu3, eye3, mu3, eye3, method="svd")


def test_kid_defaults_are_100_subsets_of_1000_cubic_kernel_seed_0():
    rng = np.random.default_rng(12)
    real, fake = rng.standard_normal((30, 3)), rng.standard_normal((25, 3)) + 0.2  # small sets: cheap subsets
    explicit = kid(real, fake, subsets=100, seed=0, degree=3, gamma=None, coef=1.0)
    assert kid(real, fake) == explicit and kid(real, fake, subsets=101) != explicit
    big_real, big_fake = rng.standard_normal((1003, 3)), rng.standard_normal((1001, 3))  # more rows than a subset
    two = kid(big_real, big_fake, subsets=2, subset_size=1000)
    assert kid(big_real, big_fake, subsets=2) == two and kid(big_real, big_fake, subsets=2, subset_size=999) != two


def test_kid_input_checks():
    rng = np.random.default_rng(13)
    a, b = rng.standard_normal((5, 2)), rng.standard_normal((4, 2))
    with pytest.raises(ValueError, match="^feature dims differ: 2 vs 3$"):
        kid(a, rng.standard_normal((4, 3)))
    for real, fake in ((a[:1], b), (a, b[:1])):
        with pytest.raises(ValueError, match=rf"^KID needs at least 2 samples per set; got {len(real)} and {len(fake)}$"):
            kid(real, fake)
    assert kid(a[:2], b[:2], subsets=1)[1] == 0.0  # 2 samples each is enough; one subset has no spread
    # the subset size is capped at the smaller set, whichever it is
    assert kid(a[:3], b, subsets=2) == kid(a[:3], b, subsets=2, subset_size=3)
    assert kid(a, b[:3], subsets=2) == kid(a, b[:3], subsets=2, subset_size=3)


def test_kid_passes_its_kernel_settings_on():
    # one subset of all rows: the unbiased MMD^2 with k(x, y) = (gamma x.y + coef)^degree, by hand
    rng = np.random.default_rng(14)
    x, y = rng.standard_normal((10, 3)), rng.standard_normal((10, 3)) + 0.5
    for degree, gamma, coef in ((2, 0.5, 0.0), (1, None, 2.0)):
        g = 1 / 3 if gamma is None else gamma  # None: 1 / feature dim
        kxx, kyy, kxy = ((g * a @ b.T + coef) ** degree for a, b in ((x, x), (y, y), (x, y)))
        want = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / 90 - 2 * kxy.mean()
        got, _ = kid(x, y, subsets=1, subset_size=10, degree=degree, gamma=gamma, coef=coef)
        assert got == pytest.approx(want, rel=1e-10)


def test_precision_recall_computes_every_distance_once_in_chunk_blocks(monkeypatch):
    """The docstring's memory bound: distances in blocks of at most chunk x chunk, each pair of rows once."""
    from gensweep.platform.metrics import distances

    blocks = []
    plain = distances._sq_dists

    def counted(a, b, a_sq, b_sq):
        blocks.append((len(a), len(b)))
        return plain(a, b, a_sq, b_sq)

    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(10, 2)), rng.normal(size=(7, 2))
    want = precision_recall(real, fake, k=2, chunk=4)
    monkeypatch.setattr(distances, "_sq_dists", counted)
    assert precision_recall(real, fake, k=2, chunk=4) == want
    # k-NN radii of real (3 x 3 blocks) and fake (2 x 2); fake against real (2 x 3) and real against fake (3 x 2)
    assert len(blocks) == 9 + 4 + 6 + 6 and max(max(b) for b in blocks) == 4
    assert sum(r * c for r, c in blocks) == 10 * 10 + 7 * 7 + 7 * 10 + 10 * 7


def test_trace_sqrt_product_factors_a_nearly_singular_s1_that_plain_cholesky_refuses():
    """Round-off can make the unpivoted Cholesky fail on a positive definite S1 whose pivoted Cholesky is of full
    rank (dpstrf info 0): that factor is used, no error.  Such an S1 is found among seeded near-singular 3 x 3
    matrices with this machine's LAPACK, and tr sqrt(S1 S2) compared with the eigendecomposition route."""
    from scipy.linalg import lapack

    rng = np.random.default_rng(0)
    found = None
    for _ in range(20000):  # about 1 in 2000 qualifies
        b = rng.normal(size=(3, 2))
        s1 = b @ b.T
        s1[2, 2] += 1e-16 * np.abs(s1).max()
        s1 = (s1 + s1.T) * 0.5  # symmetric, as trace_sqrt_product makes it
        with contextlib.suppress(np.linalg.LinAlgError):
            np.linalg.cholesky(s1)
            continue
        if lapack.dpstrf(s1, lower=0, tol=-1.0)[3] == 0:
            found = s1
            break
    assert found is not None
    s2 = np.diag([1.0, 2.0, 3.0])
    assert trace_sqrt_product(found, s2) == pytest.approx(trace_sqrt_product(found, s2, method="eigh"), rel=1e-6)
