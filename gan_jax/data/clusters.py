"""Label-free pseudo-classes: k-means clusters of the training images, for self-conditioning.

An unconditional G must map one Gaussian onto a data distribution made of separate modes
(digits, garment types); a small G spends most of a short run drawing shapes between them. A
class-conditional G with the same nets is far better (experiments/mnist_cond.py). Self-
conditioned GANs (Liu et al., 2020, "Diverse Image Generation via Self-Conditioned GANs") get
that help without labels: they cluster the data and condition G and D on the cluster. We
cluster once, before training, in the space of the images' first principal components (no
labels and no pretrained net are used), and draw the fakes' clusters with the clusters' sizes,
so that the model of the data is still ``p(x) = sum_k p(k) p(x | k)``.

  ``kmeans(images, k, seed)``        cluster ids int32 [N] and cluster sizes
  ``relabel(source, k, seed)``       a Source whose labels are the cluster ids
  ``split_classes(source, m, seed)`` a Source whose labels are m clusters within each class

The last is for class-conditional runs (``config.data.clusters_per_class``): a class such as
"7" still holds several shapes (crossed, slanted, ...), and the sub-cluster tells G which one,
while each sub-cluster keeps its class (``info['cluster_classes']``) for sampling by class and
for the class accuracy.
"""

from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.data.core import Source
from gan_jax.errors import DataError

PCA_DIM = 50        # dimensions the images are clustered in
PCA_SAMPLE = 10000  # images the principal components are estimated from
ITERATIONS = 50     # Lloyd iterations after k-means++ seeding


@jax.jit
def _nearest(points, centres):
  """(index of the nearest centre, squared distance to it) for each point."""
  d = (jnp.sum(points ** 2, 1)[:, None] - 2 * points @ centres.T
       + jnp.sum(centres ** 2, 1)[None, :])
  return jnp.argmin(d, 1).astype(jnp.int32), jnp.maximum(jnp.min(d, 1), 0.0)


def _project(images: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
  """Images -> float32 [N, PCA_DIM]: centred pixels on their first principal components."""
  x = images.reshape(images.shape[0], -1).astype(np.float32) / 255.0
  x -= x.mean(0)
  sample = x[rng.choice(len(x), min(len(x), PCA_SAMPLE), replace=False)]
  _, _, vt = np.linalg.svd(sample, full_matrices=False)
  return x @ vt[:PCA_DIM].T


def seed_centres(points: np.ndarray, k: int, rng: np.random.RandomState) -> np.ndarray:
  """k-means++ seeding: each new centre drawn with probability ~ its squared distance to the
  nearest centre so far, a distance kept up to date point by point (O(kND))."""
  picked = [int(rng.choice(len(points)))]
  d2 = np.sum((points - points[picked[0]]) ** 2, 1, dtype=np.float64)
  for _ in range(1, k):
    p = d2 / d2.sum() if d2.sum() > 0 else None
    picked.append(int(rng.choice(len(points), p=p)))
    d2 = np.minimum(d2, np.sum((points - points[picked[-1]]) ** 2, 1, dtype=np.float64))
  return points[picked]


def kmeans(images: np.ndarray, k: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
  """k-means++ then Lloyd's iterations on the images' principal components.

  Args:
    images: uint8 [N, H, W, C].
    k: clusters, 1 <= k <= N.
    seed: the seeding's random state (a run uses its config.seed).

  Returns:
    ``(ids int32 [N] in [0, k), sizes float64 [k])``, ``sizes`` the clusters' shares of the
    images (summing to 1). An emptied cluster is re-seeded at the point farthest from its centre.
  """
  n = images.shape[0]
  if not 1 <= k <= n:
    raise DataError(f'config.data.clusters={k} must lie in [1, {n}] (the number of images)')
  rng = np.random.RandomState(seed)
  points = _project(images, rng)
  centres = seed_centres(points, k, rng)
  for _ in range(ITERATIONS):
    ids, d2 = (np.array(a) for a in _nearest(points, centres))  # writable copies
    counts = np.bincount(ids, minlength=k)
    sums = np.zeros_like(centres)
    np.add.at(sums, ids, points)
    new = sums / np.maximum(counts, 1)[:, None]
    for j in np.flatnonzero(counts == 0):
      far = int(np.argmax(d2))
      new[j], d2[far] = points[far], 0.0
    if np.allclose(new, centres):
      break
    centres = new
  ids = np.asarray(_nearest(points, centres)[0], np.int32)
  return ids, np.bincount(ids, minlength=k) / n


def relabel(source: Source, k: int, seed: int = 0) -> Source:
  """``source`` with its labels replaced by k-means cluster ids: ``info['num_classes'] = k``,
  ``info['label_probs']`` the clusters' shares, ``info['labels'] = 'kmeans'``."""
  if len(source.info['shape']) != 3:
    raise DataError(f'config.data.clusters={k} clusters images; {source.info["name"]!r} is not '
                    'an image dataset: set config.data.clusters=0')
  ids, sizes = kmeans(np.asarray(source.arrays['image']), k, seed)
  arrays = dict(source.arrays, label=ids)
  info = dict(source.info, num_classes=k, label_probs=[float(s) for s in sizes], labels='kmeans')
  return Source(arrays=arrays, draw=source.draw, info=info)


def split_classes(source: Source, per_class: int, seed: int = 0) -> Source:
  """``source`` with each class's images split into ``per_class`` k-means clusters.

  Label ``c * per_class + j`` is cluster ``j`` of class ``c``: ``info['num_classes']`` becomes
  ``C * per_class``, ``info['label_probs']`` the clusters' shares of all images,
  ``info['cluster_classes']`` the class of each cluster and ``info['labels'] =
  'kmeans_in_classes'``. Each class is clustered on its own principal components.
  """
  classes = source.info.get('num_classes')
  if not classes:
    raise DataError(f'config.data.clusters_per_class={per_class} splits the classes of a labelled '
                    f'dataset; {source.info["name"]!r} has no class labels: use '
                    'config.data.clusters instead')
  if len(source.info['shape']) != 3:
    raise DataError(f'config.data.clusters_per_class={per_class} clusters images; '
                    f'{source.info["name"]!r} is not an image dataset')
  images, labels = np.asarray(source.arrays['image']), np.asarray(source.arrays['label'])
  ids = np.empty(len(labels), np.int32)
  for c in range(classes):
    members = np.flatnonzero(labels == c)
    if len(members) < per_class:
      raise DataError(f'config.data.clusters_per_class={per_class} is more than the '
                      f'{len(members)} images of class {c}; use at most {len(members)}')
    ids[members] = c * per_class + kmeans(images[members], per_class, seed + c)[0]
  k = classes * per_class
  info = dict(source.info, num_classes=k, labels='kmeans_in_classes',
              label_probs=[float(s) for s in np.bincount(ids, minlength=k) / len(ids)],
              cluster_classes=[j // per_class for j in range(k)])
  return Source(arrays=dict(source.arrays, label=ids), draw=source.draw, info=info)
