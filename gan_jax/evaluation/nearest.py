"""Exact k-nearest-neighbour search in feature space: the memorisation check.

    dist, idx = nearest_neighbours(sample_features, train_features, k=5)

``dist[i, j]`` is the Euclidean distance from query ``i`` to its ``j``-th nearest point,
``idx[i, j]`` that point's row; ascending in ``j``. The search is one jitted ``lax.scan`` over
chunks of points that keeps a running top-k, so memory is ``[queries, chunk]`` however many points
there are (60 000 training images), and queries go through in chunks too.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import UserError

# Candidates kept beyond k: the scan ranks by |a|^2 + |b|^2 - 2 a.b (one matmul per chunk),
# whose float32 rounding can swap near-ties; the kept candidates are re-ranked by the exact
# sum((a - b)^2), which is 0 for a copy.
_EXTRA = 4


@functools.partial(jax.jit, static_argnames=('k', 'chunk'))
def _knn(queries, points, k: int, chunk: int):
  """(squared distances, indices), ``[n, k]`` each, ascending, exact; ``k <= len(points)``."""
  m, d = points.shape
  keep = min(k + _EXTRA, m)
  pad = (-m) % chunk
  pts = jnp.pad(points, ((0, pad), (0, 0))).reshape(-1, chunk, d)
  valid = (jnp.arange(m + pad) < m).reshape(-1, chunk)
  offsets = jnp.arange(pts.shape[0]) * chunk
  q_sq = jnp.sum(queries * queries, axis=1, keepdims=True)

  def scan_chunk(best, xs):
    best_d, best_i = best
    p, ok, offset = xs
    d2 = q_sq + jnp.sum(p * p, axis=1)[None, :] - 2.0 * queries @ p.T
    d2 = jnp.where(ok[None, :], jnp.maximum(d2, 0.0), jnp.inf)
    cand_d = jnp.concatenate([best_d, d2], axis=1)
    cand_i = jnp.concatenate(
        [best_i, jnp.broadcast_to(offset + jnp.arange(chunk), d2.shape)], axis=1)
    neg, pos = jax.lax.top_k(-cand_d, keep)
    return (-neg, jnp.take_along_axis(cand_i, pos, axis=1)), None

  n = queries.shape[0]
  init = (jnp.full((n, keep), jnp.inf, queries.dtype), jnp.full((n, keep), -1, jnp.int32))
  (_, idx), _ = jax.lax.scan(scan_chunk, init, (pts, valid, offsets))
  exact = jnp.sum((queries[:, None, :] - points[idx]) ** 2, axis=-1)
  order = jnp.argsort(exact, axis=1, stable=True)[:, :k]
  return jnp.take_along_axis(exact, order, axis=1), jnp.take_along_axis(idx, order, axis=1)


def nearest_neighbours(queries, points, k: int = 5, chunk: int = 4096, query_chunk: int = 1024):
  """The ``k`` nearest ``points`` of each query, by Euclidean distance.

  Args:
    queries: ``[n, d]`` features (e.g. of generated samples).
    points: ``[m, d]`` features to search (e.g. of the training set).
    k: neighbours per query, ``1 <= k <= m``.
    chunk: points compared per scan step (bounds the ``[query_chunk, chunk]`` distance block).
    query_chunk: queries per compiled call.

  Returns:
    ``(dist [n, k] float32, idx [n, k] int32)`` as numpy, ascending distance per row. A query
    equal to a point finds it at distance exactly 0.
  """
  queries = jnp.asarray(queries, jnp.float32)
  points = jnp.asarray(points, jnp.float32)
  m = points.shape[0]
  if not 1 <= k <= m:
    raise UserError(f'--k={k} must lie in [1, {m}] (the number of training images searched)')
  chunk = min(chunk, m)
  dists, idxs = [], []
  for start in range(0, queries.shape[0], query_chunk):
    d2, idx = _knn(queries[start:start + query_chunk], points, k, chunk)
    dists.append(np.sqrt(np.asarray(d2)))
    idxs.append(np.asarray(idx))
  return np.concatenate(dists), np.concatenate(idxs)
