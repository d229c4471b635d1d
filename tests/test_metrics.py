"""Sample-quality metrics against closed forms and hand-counted point sets."""

import math

import numpy as np
import pytest
import scipy.linalg

from gan_jax.evaluation import metrics


def test_fd_one_dimensional_closed_form():
  # (mu1 - mu2)^2 + (sigma1 - sigma2)^2
  assert metrics.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


def test_fd_diagonal_closed_form():
  a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 1.0])
  mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
  want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  assert metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-12)


def test_trace_sqrt_of_non_commuting_2x2_closed_form():
  """For M with positive eigenvalues, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M))."""
  s1 = np.array([[2.0, 0.9], [0.9, 1.0]])
  s2 = np.array([[1.0, -0.4], [-0.4, 3.0]])
  m = s1 @ s2
  assert not np.allclose(m, s2 @ s1)  # they do not commute
  want = math.sqrt(np.trace(m) + 2 * math.sqrt(np.linalg.det(m)))
  assert metrics.trace_sqrt_product(s1, s2) == pytest.approx(want, rel=1e-12)


def test_fd_singular_covariance():
  """S1 = diag(a, 0), S2 = diag(b, c): tr sqrt(S1 S2) = sqrt(ab), so FD = a + b + c - 2 sqrt(ab)."""
  a, b, c = 4.0, 1.0, 2.0
  got = metrics.frechet_distance([0, 0], np.diag([a, 0.0]), [0, 0], np.diag([b, c]))
  assert got == pytest.approx(a + b + c - 2 * math.sqrt(a * b), rel=1e-12)
  # A rank-deficient covariance from fewer samples than dimensions still gives a finite value.
  x = np.random.RandomState(0).randn(20, 64)
  assert np.isfinite(metrics.fd(x, x + 0.1)) and metrics.fd(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fd_matches_scipy_sqrtm_in_128_dimensions():
  rng = np.random.RandomState(1)
  a, b = rng.randn(128, 300), rng.randn(128, 300)
  s1, s2 = a @ a.T / 300, b @ b.T / 300 + 0.1 * np.eye(128)
  mu1, mu2 = rng.randn(128), rng.randn(128)
  ref = (np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
         - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real)
  assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-7)


def _mmd2_by_hand(x, y):
  d, m = x.shape[1], x.shape[0]
  k = lambda a, b: (a @ b / d + 1.0) ** 3
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
  return xx + yy - 2 * xy


def test_kid_is_the_unbiased_cubic_mmd():
  rng = np.random.RandomState(2)
  x, y = rng.randn(12, 5), rng.randn(12, 5) + 0.5
  mean, std = metrics.kid(x, y, subset_size=12, num_subsets=3)
  assert mean == pytest.approx(_mmd2_by_hand(x, y), rel=1e-4) and std == pytest.approx(0, abs=1e-5)
  # Unbiased: same distribution -> mean near 0 (can be negative); a shift -> clearly positive.
  same, _ = metrics.kid(rng.randn(2000, 16), rng.randn(2000, 16), subset_size=500, num_subsets=20)
  shifted, _ = metrics.kid(rng.randn(2000, 16), rng.randn(2000, 16) + 0.5, subset_size=500,
                           num_subsets=20)
  assert abs(same) < 0.01 < shifted


def test_precision_recall_density_coverage_hand_counted():
  """Reals 0..9 on a line, k = 1 (each real ball has radius 1); fakes 0.5 and 100.

  precision: 0.5 lies in the balls of 0 and 1, 100 in none -> 1/2.
  recall: each fake's ball has radius 99.5 (its distance to the other fake) -> every real -> 1.
  density: 0.5 is in 2 real balls, 100 in 0 -> 2 / (k * M) = 2 / 2 = 1.
  coverage: only the balls of 0 and 1 hold a fake -> 2/10.
  """
  real = np.arange(10.0)[:, None]
  fake = np.array([[0.5], [100.0]])
  pr = metrics.precision_recall(real, fake, k=1)
  dc = metrics.density_coverage(real, fake, k=1)
  assert pr == {'precision': 0.5, 'recall': 1.0}
  assert dc == {'density': 1.0, 'coverage': 0.2}


def test_precision_is_fooled_by_outliers_but_coverage_is_not():
  """Fakes piled on one real outlier: precision 1, recall and coverage near 0."""
  rng = np.random.RandomState(3)
  real = np.concatenate([rng.randn(500, 2), [[8.0, 8.0]]])
  fake = np.array([8.0, 8.0]) + 0.01 * rng.randn(200, 2)
  pr = metrics.precision_recall(real, fake)
  dc = metrics.density_coverage(real, fake)
  assert pr['precision'] == 1.0 and pr['recall'] < 0.05 and dc['coverage'] < 0.01


def test_score_and_class_histogram():
  k = 10
  confident = np.full((1000, k), -20.0)
  confident[np.arange(1000), np.arange(1000) % k] = 20.0
  assert metrics.classifier_score(confident) == pytest.approx(k, rel=1e-6)  # max = K
  collapsed = np.full((1000, k), -20.0)
  collapsed[:, 3] = 20.0
  assert metrics.classifier_score(collapsed) == pytest.approx(1.0, rel=1e-6)  # min = 1
  assert metrics.classifier_score(np.zeros((50, k))) == pytest.approx(1.0)  # unsure -> 1
  h = metrics.class_histogram(confident)
  assert h['classes_covered'] == 10 and h['class_kl_uniform'] == pytest.approx(0.0, abs=1e-12)
  h = metrics.class_histogram(collapsed)
  assert h['classes_covered'] == 1 and h['class_kl_uniform'] == pytest.approx(math.log(k))
