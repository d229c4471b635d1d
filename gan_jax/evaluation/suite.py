"""All metrics of a set of generated images against a dataset's test split, in one object.

    ev = Evaluator.for_dataset('mnist', num=10_000)
    ev(fake_images)          # FD, score, KID, P/R, density/coverage, class histogram, Ns
    ev.quick(fake_images)    # FD and score only (what training logs every eval_every steps)
    ev.quick(fake_images, labels=y)   # + class_acc of a class-conditional G's samples

The real reference is ``num`` images of the test split (all of them when the split is smaller)
passed through the evaluation classifier once. Fake images are float ``[N, 28, 28, 1]`` in
[-1, 1]; compare numbers only at the same N.
"""

from typing import Dict, Optional

import ml_collections
import numpy as np

from gan_jax import data
from gan_jax.data import names
from gan_jax.errors import UserError
from gan_jax.evaluation import classifier, metrics


def data_config(dataset: str, source: str = 'auto', directory: str = ''):
  return ml_collections.ConfigDict({'source': source, 'name': names.canonical_name(dataset),
                                    'dir': directory, 'tfds_data_dir': '', 'mirrors': ()})


def load_images(cfg, split: str, num: Optional[int] = None, seed: int = 0,
                with_labels: bool = False):
  """``num`` images (all if None or fewer exist) of ``split`` as float32 in [-1, 1] (and their
  labels with ``with_labels``)."""
  arrays = data.load_source(cfg, split).arrays
  x, y = arrays['image'], arrays['label']
  if num is not None and num < len(x):
    idx = np.sort(np.random.RandomState(seed).choice(len(x), num, replace=False))
    x, y = x[idx], y[idx]
  x = x.astype(np.float32) / 127.5 - 1.0
  return (x, y) if with_labels else x


def class_accuracy(logits, labels) -> float:
  """Class accuracy of conditional samples: the fraction whose classifier argmax is the class
  they were generated for, ``mean_i 1[argmax_k logits[i, k] = labels[i]]``.

  Chance is 1/K for a G that ignores its labels; a good conditional G approaches the
  classifier's test accuracy (real images, the ceiling).

  Args:
    logits: the evaluation classifier's logits ``[N, K]``.
    labels: the requested classes, int ``[N]``.
  """
  logits, labels = np.asarray(logits), np.asarray(labels)
  if labels.shape != logits.shape[:1]:
    raise UserError(f'{len(logits)} samples but labels of shape {labels.shape}; pass one label '
                    'per sample')
  return float(np.mean(np.argmax(logits, axis=-1) == labels))


class Evaluator:
  """The feature net and the real reference features of one dataset."""

  def __init__(self, net: classifier.FeatureNet, real_images: np.ndarray):
    self.net = net
    self.real_images = real_images
    self.real_logits, self.real_features = net(real_images)

  @classmethod
  def for_dataset(cls, dataset: str, num: int = 10_000, cfg=None) -> 'Evaluator':
    cfg = cfg if cfg is not None else data_config(dataset)
    net = classifier.load(cfg.name)
    return cls(net, load_images(cfg, 'test', num))

  def _features(self, fake):
    fake = np.asarray(fake, np.float32)
    if fake.ndim == 3:
      fake = fake[..., None]
    if fake.shape[1:] != self.real_images.shape[1:]:
      raise UserError(f'generated images have shape {fake.shape[1:]}, the {self.net.dataset} '
                      f'classifier takes {self.real_images.shape[1:]}')
    return self.net(fake)

  def quick(self, fake, labels=None) -> Dict[str, float]:
    """FD and score; with ``labels`` (the classes the samples were made for) also
    ``class_acc``."""
    logits, feats = self._features(fake)
    out = {'fd': metrics.fd(self.real_features, feats),
           'score': metrics.classifier_score(logits)}
    if labels is not None:
      out['class_acc'] = class_accuracy(logits, labels)
    return out

  def __call__(self, fake, kid_subsets: int = 100, labels=None) -> Dict:
    """Every metric; with ``labels`` also ``class_acc`` (see ``class_accuracy``)."""
    logits, feats = self._features(fake)
    out = metrics.all_metrics(self.real_logits, self.real_features, logits, feats, kid_subsets)
    if labels is not None:
      out['class_acc'] = class_accuracy(logits, labels)
    out['dataset'] = self.net.dataset
    out['classifier_test_accuracy'] = self.net.info.get('test_accuracy')
    return out
