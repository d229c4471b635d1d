"""Sample-quality metrics on feature vectors and class logits.

Each function takes the features (or logits) of a real and a generated set, and every result
depends on the set sizes: compare numbers only at equal N (``evaluate`` uses N = 10 000 by
default and reports N with every metric).

- ``frechet_distance`` (FD; Heusel et al., 2017, "FID" with Inception features):
  ||mu_r - mu_g||^2 + tr(S_r + S_g - 2 (S_r S_g)^{1/2}).
- ``kid`` (Binkowski et al., 2018): the unbiased MMD^2 with the cubic kernel
  k(x, y) = (x.y / d + 1)^3, averaged over random subsets, with its std.
- ``precision_recall`` (Kynkaanniemi et al., 2019): k-NN balls around each real (fake) sample;
  precision = share of fakes inside some real ball, recall = share of reals inside some fake ball.
- ``density_coverage`` (Naeem et al., 2020): density = (1 / kM) sum over fakes of the number of
  real balls holding it; coverage = share of real balls holding at least one fake. Precision
  alone is fooled by fakes near real outliers (whose balls are large); read it with recall and
  coverage.
- ``classifier_score``: exp E_x KL(p(y|x) || p(y)) (the Inception Score of Salimans et al.,
  2016, with our classifier), and ``class_histogram``: classes covered and KL to uniform.

Distances, kernels and k-NN radii run jitted in chunks; the d x d matrix square root of FD runs
in float64 numpy, where it is cheap and exact enough to test against closed forms.
"""

import functools
from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np


def gaussian_stats(features):
  """(mean, covariance) in float64 of ``features`` ``[N, d]`` (unbiased covariance)."""
  x = np.asarray(features, np.float64)
  return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _psd_sqrt(s):
  w, v = np.linalg.eigh((s + s.T) / 2)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(s1, s2) -> float:
  """tr((S1 S2)^{1/2}) for PSD S1, S2, including singular ones.

  S1 S2 has the same non-zero eigenvalues as the symmetric PSD M = S1^{1/2} S2 S1^{1/2}, so the
  trace is the sum of sqrt(eigvalsh(M)): no non-symmetric sqrtm, no complex parts, no
  regularising epsilon.
  """
  h = _psd_sqrt(np.asarray(s1, np.float64))
  m = h @ np.asarray(s2, np.float64) @ h
  return float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None))))


def frechet_distance(mu1, s1, mu2, s2) -> float:
  """Fréchet distance between N(mu1, S1) and N(mu2, S2)."""
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  s1, s2 = np.atleast_2d(np.asarray(s1, np.float64)), np.atleast_2d(np.asarray(s2, np.float64))
  value = float(np.sum(np.square(mu1 - mu2)) + np.trace(s1) + np.trace(s2)
                - 2.0 * trace_sqrt_product(s1, s2))
  return max(value, 0.0)


def fd(real_features, fake_features) -> float:
  return frechet_distance(*gaussian_stats(real_features), *gaussian_stats(fake_features))


@jax.jit
def _mmd2_unbiased(x, y):
  d = x.shape[1]
  k = lambda a, b: (a @ b.T / d + 1.0) ** 3
  m = x.shape[0]
  kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
  off = lambda a: (jnp.sum(a) - jnp.trace(a)) / (m * (m - 1))
  return off(kxx) + off(kyy) - 2.0 * jnp.mean(kxy)


def kid(real_features, fake_features, subset_size: int = 1000, num_subsets: int = 100,
        seed: int = 0):
  """(mean, std) of the unbiased MMD^2 over ``num_subsets`` random subsets of each set."""
  x = jnp.asarray(real_features, jnp.float32)
  y = jnp.asarray(fake_features, jnp.float32)
  m = min(subset_size, x.shape[0], y.shape[0])
  rng = np.random.RandomState(seed)
  values = []
  for _ in range(num_subsets):
    i = rng.choice(x.shape[0], m, replace=False)
    j = rng.choice(y.shape[0], m, replace=False)
    values.append(float(_mmd2_unbiased(x[i], y[j])))
  return float(np.mean(values)), float(np.std(values))


def _sq_dists(a, b):
  d2 = (jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None, :] - 2.0 * a @ b.T)
  return jnp.maximum(d2, 0.0)


@functools.partial(jax.jit, static_argnums=2)
def _kth_sq_dist(rows, points, k):
  """Squared distance from each row to its k-th nearest point (index 0: the row itself)."""
  return -jax.lax.top_k(-_sq_dists(rows, points), k + 1)[0][:, k]


@jax.jit
def _balls_holding(rows, centers, sq_radii):
  """For each row, how many balls (centers, squared radii) contain it."""
  return jnp.sum(_sq_dists(rows, centers) <= sq_radii[None, :], axis=1)


@jax.jit
def _nearest_sq_dist(rows, points):
  return jnp.min(_sq_dists(rows, points), axis=1)


def _by_chunks(fn, rows, *args, size=1024):
  """``fn(rows[chunk], *args)`` over chunks of rows, concatenated (bounds the [chunk, N] matrix)."""
  rows = jnp.asarray(rows, jnp.float32)
  return np.concatenate([np.asarray(fn(rows[i:i + size], *args))
                         for i in range(0, len(rows), size)])


def knn_radii(features, k: int) -> np.ndarray:
  """Squared distance from each row to its k-th nearest other row."""
  x = jnp.asarray(features, jnp.float32)
  return _by_chunks(_kth_sq_dist, x, x, k)


def _ball_counts(points, centers, radii):
  """For each point, how many balls (centers, squared radii) contain it."""
  return _by_chunks(_balls_holding, points, jnp.asarray(centers, jnp.float32),
                    jnp.asarray(radii, jnp.float32))


def precision_recall(real_features, fake_features, k: int = 3) -> Dict[str, float]:
  real_r = knn_radii(real_features, k)
  fake_r = knn_radii(fake_features, k)
  return {'precision': float(np.mean(_ball_counts(fake_features, real_features, real_r) > 0)),
          'recall': float(np.mean(_ball_counts(real_features, fake_features, fake_r) > 0))}


def density_coverage(real_features, fake_features, k: int = 5) -> Dict[str, float]:
  real_r = knn_radii(real_features, k)
  inside = _ball_counts(fake_features, real_features, real_r)  # per fake: real balls holding it
  # Coverage: a real ball is covered when its nearest fake lies inside it.
  nn_fake = _by_chunks(_nearest_sq_dist, real_features, jnp.asarray(fake_features, jnp.float32))
  return {'density': float(np.sum(inside) / (k * len(inside))),
          'coverage': float(np.mean(nn_fake <= real_r))}


def classifier_score(logits) -> float:
  """exp E_x KL(p(y|x) || p(y)), with p(y) the mean prediction over the set."""
  logp = jax.nn.log_softmax(jnp.asarray(logits, jnp.float32), axis=-1)
  log_py = jnp.log(jnp.mean(jnp.exp(logp), axis=0))
  kl = jnp.sum(jnp.exp(logp) * (logp - log_py[None, :]), axis=-1)
  return float(jnp.exp(jnp.mean(kl)))


def class_histogram(logits, min_share: float = 0.1) -> Dict:
  """Predicted-class histogram: classes holding >= ``min_share`` of a uniform share (1 % of the
  samples for 10 classes) count as covered; KL(histogram || uniform) in nats."""
  logits = np.asarray(logits)
  k = logits.shape[1]
  hist = np.bincount(np.argmax(logits, 1), minlength=k) / len(logits)
  nz = hist > 0
  return {'classes_covered': int(np.sum(hist >= min_share / k)),
          'class_kl_uniform': float(np.sum(hist[nz] * np.log(hist[nz] * k))),
          'class_histogram': [round(float(h), 4) for h in hist]}


def all_metrics(real_logits, real_features, fake_logits, fake_features,
                kid_subsets: int = 100) -> Dict:
  """Every metric of a generated set against a real one (same feature net), with the Ns."""
  kid_mean, kid_std = kid(real_features, fake_features, num_subsets=kid_subsets)
  out = {'fd': fd(real_features, fake_features), 'score': classifier_score(fake_logits),
         'kid': kid_mean, 'kid_std': kid_std}
  out.update(precision_recall(real_features, fake_features))
  out.update(density_coverage(real_features, fake_features))
  out.update(class_histogram(fake_logits))
  out.update({'num_real': int(len(real_features)), 'num_fake': int(len(fake_features))})
  return out
