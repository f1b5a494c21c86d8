"""The least-squares helper behind the scaling benchmark's table (benchmarks/trend.py)."""
import numpy as np
import pytest

from benchmarks.trend import fit_line, reading


def test_exact_line_is_recovered_with_r2_one():
    t = fit_line([1, 2, 4, 8], [3.5, 5.5, 9.5, 17.5])  # y = 1.5 + 2x
    assert t.a == pytest.approx(1.5)
    assert t.b == pytest.approx(2.0)
    assert t.r2 == pytest.approx(1.0)
    assert t.r2_means == pytest.approx(1.0)
    assert (t.n, t.levels) == (4, 4)


def test_repeated_levels_fit_every_point_and_match_numpy():
    xs = [1, 1, 2, 2, 3, 3]
    ys = [2.0, 2.4, 3.9, 4.3, 6.2, 5.8]
    t = fit_line(xs, ys)
    b, a = np.polyfit(xs, ys, 1)
    assert (t.a, t.b) == (pytest.approx(a), pytest.approx(b))
    pred = a + b * np.asarray(xs)
    r2 = 1 - ((np.asarray(ys) - pred) ** 2).sum() / ((np.asarray(ys) - np.mean(ys)) ** 2).sum()
    assert t.r2 == pytest.approx(r2)
    means = np.array([2.2, 4.1, 6.0])
    pred_means = a + b * np.array([1, 2, 3])
    assert t.r2_means == pytest.approx(1 - ((means - pred_means) ** 2).sum() / ((means - means.mean()) ** 2).sum())
    assert t.r2_means > t.r2  # the scatter within levels lowers only the point-wise R^2
    assert (t.n, t.levels) == (6, 3)


def test_constant_y_is_a_flat_exact_fit():
    t = fit_line([1, 2, 3], [4.0, 4.0, 4.0])
    assert (t.b, t.r2, t.r2_means) == (pytest.approx(0.0), 1.0, 1.0)
    assert reading(t, [1, 2, 3], [4.0, 4.0, 4.0]) == "flat"


@pytest.mark.parametrize("xs, ys", [([2, 2, 2], [1.0, 2.0, 3.0]), ([1, 2], [1.0]), ([[1, 2]], [[1.0, 2.0]])])
def test_unfittable_input_is_refused(xs, ys):
    with pytest.raises(ValueError):
        fit_line(xs, ys)


def test_scatter_within_levels_is_not_read_as_curvature():
    xs = [1, 1, 2, 2, 3, 3, 4, 4]
    ys = [1.0, 5.0, 3.0, 7.0, 5.0, 9.0, 7.0, 11.0]  # means 3, 5, 7, 9 on a line; +-2 around each
    t = fit_line(xs, ys)
    assert t.r2 < 0.9 and t.r2_means == pytest.approx(1.0)
    assert reading(t, xs, ys) == "linear"


def test_reading_tells_linear_curved_flat_and_two_levels_apart():
    xs = [1, 2, 3, 4, 5, 6]
    linear = [2.0 * x + 1 for x in xs]
    curved = [1.0, 1.0, 1.0, 1.0, 1.0, 30.0]  # one jump: the line explains little of it
    noisy_flat = [10.0, 10.3, 9.8, 10.1, 9.9, 10.2]
    assert reading(fit_line(xs, linear), xs, linear) == "linear"
    assert reading(fit_line(xs, curved), xs, curved) == "not linear"
    assert reading(fit_line(xs, noisy_flat), xs, noisy_flat) == "flat"
    two = [5.0, 10.0]
    assert reading(fit_line([1, 2], two), [1, 2], two) == "two levels: slope only"
