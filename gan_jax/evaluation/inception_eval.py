"""FID (and KID, precision/recall, density/coverage) of generated RGB images against a real set,
with the FID Inception network: the RGB counterpart of ``suite.Evaluator``.

    ev = InceptionEvaluator.for_rgb_data(real_uint8)   # None (said once) without the weights
    ev.quick(fake)     # {'fd': FID}: what training logs every eval_every steps
    ev(fake)           # FID, KID, precision/recall, density/coverage and the Ns

Real images are uint8 ``[N, H, W(, C)]``, C = 1 or 3; fakes are floats in [-1, 1] (or uint8).
Both go through ``inception.preprocess`` with the evaluator's network's ``resize`` (``'clean'``
unless the ``InceptionFeatures`` says otherwise: fakes are quantized to uint8, then resized
with PIL's bicubic, as clean-fid does). The real features and their mean and covariance are
computed once. FID depends on N: compare numbers only at the same N and the same ``resize``.
"""

import os
from typing import Callable, Dict, Optional

import numpy as np

from gan_jax.errors import UserError
from gan_jax.evaluation import inception, metrics

PROGRESS_OVER = 2000  # sets larger than this show a tqdm bar while their features are computed

_said_weights_missing = False  # for_rgb_data says the missing-weights line once per process


def frechet_distance_to(real_stats, fake_features) -> float:
  """``metrics.fd`` with the real side given as ``(mean, covariance)`` (``metrics.gaussian_stats``).

  With n fakes, S_f = B^T B for the centred rows B = (X - mu_f) / sqrt(n - 1) ``[n, d]``. When
  n < d, S_r S_f = (S_r B^T) B has the non-zero eigenvalues of the PSD ``[n, n]`` matrix
  B S_r B^T, so tr((S_r S_f)^{1/2}) = sum sqrt(eigvalsh(B S_r B^T)): exact, and no d x d
  eigendecomposition (seconds at d = 2048 on a CPU). Otherwise it is ``metrics.frechet_distance``.
  """
  mu_r, s_r = (np.asarray(a, np.float64) for a in real_stats)
  x = np.asarray(fake_features, np.float64)
  n, d = x.shape
  if n < 2:
    raise UserError(f'{n} generated image(s): FD needs at least 2 for a covariance')
  mu_f = x.mean(0)
  b = (x - mu_f) / np.sqrt(n - 1)
  if n >= d:
    return metrics.frechet_distance(mu_r, s_r, mu_f, b.T @ b)
  m = b @ s_r @ b.T
  tr_sqrt = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None))))
  value = float(np.sum(np.square(mu_r - mu_f)) + np.trace(s_r) + np.sum(b * b) - 2.0 * tr_sqrt)
  return max(value, 0.0)


class InceptionEvaluator:
  """The FID Inception network and the real reference features of one dataset."""

  def __init__(self, net: inception.InceptionFeatures, real_images, batch_size: int = 50):
    """``real_images``: uint8 ``[N, H, W(, C)]``, C = 1 or 3, N >= 2."""
    real = np.asarray(real_images)
    if real.dtype != np.uint8 or real.ndim not in (3, 4) or len(real) < 2:
      raise UserError(f'real images of dtype {real.dtype} and shape {list(real.shape)}: '
                      'expected uint8 [N, H, W] or [N, H, W, C] in [0, 255], N >= 2')
    self.net = net
    self.batch_size = batch_size
    self.real_features = self.features(real)
    self.real_stats = metrics.gaussian_stats(self.real_features)  # (mean, covariance), once

  @classmethod
  def for_rgb_data(cls, real_images, weights_path: Optional[str] = None,
                   say: Callable[[str], None] = print,
                   batch_size: int = 50) -> Optional['InceptionEvaluator']:
    """The evaluator, or None when the weights file is missing. ``real_images``: uint8
    images, or a function returning them (called only when the weights exist).

    ``weights_path`` defaults to ``inception.default_weights_path()``
    (``$GAN_JAX_CACHE/inception_fid.npz``, else ``~/.cache/gan_jax/inception_fid.npz``). A missing
    file is not an error, because training runs without FID: ``say`` gets one line naming the
    path and the conversion command, once per process. A file that exists but is not valid
    weights is a UserError.
    """
    global _said_weights_missing
    path = weights_path or inception.default_weights_path()
    if not os.path.isfile(path):
      if not _said_weights_missing:
        _said_weights_missing = True
        say(f'in-training FID is off: no Inception weights at {path}; convert them with '
            f'{inception.convert_command(path)}')
      return None
    if callable(real_images):  # read only when there are weights to use them with
      real_images = real_images()
    return cls(inception.InceptionFeatures.load(path), real_images, batch_size)

  def features(self, images) -> np.ndarray:
    """pool3 features ``[N, 2048]`` (contract: ``inception.preprocess``), batched."""
    return self.net.features(images, self.batch_size, progress=len(images) > PROGRESS_OVER)

  def quick(self, fake, labels=None) -> Dict[str, float]:
    """``{'fd': FID}`` of ``fake`` (floats in [-1, 1] or uint8). ``labels`` is accepted for
    ``suite.Evaluator`` compatibility and ignored: the Inception features carry no classes of
    the dataset, so there is no ``score`` or ``class_acc``."""
    del labels
    return {'fd': frechet_distance_to(self.real_stats, self.features(fake))}

  def __call__(self, fake, kid_subsets: int = 100, labels=None) -> Dict:
    """FID, KID (mean, std over ``kid_subsets`` subsets of up to 1000), precision/recall (k = 3),
    density/coverage (k = 5), the Ns and the resize. ``labels`` is ignored (see ``quick``)."""
    del labels
    feats = self.features(fake)
    kid_mean, kid_std = metrics.kid(self.real_features, feats, num_subsets=kid_subsets)
    out = {'fd': frechet_distance_to(self.real_stats, feats), 'kid': kid_mean, 'kid_std': kid_std}
    out.update(metrics.precision_recall(self.real_features, feats))
    out.update(metrics.density_coverage(self.real_features, feats))
    out.update({'num_real': int(len(self.real_features)), 'num_fake': int(len(feats)),
                'resize': self.net.resize})
    return out
