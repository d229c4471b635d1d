"""The feature network for 28x28 grayscale datasets: a small CNN classifier we train ourselves.

No pretrained network can be downloaded here, so FD, KID, precision/recall and the class-based
score use this classifier's 128-d penultimate layer (features) and its logits. Train it with

  python -m gan_jax.evaluation.train_classifier --dataset mnist           # ~99.4 % test accuracy
  python -m gan_jax.evaluation.train_classifier --dataset fashion_mnist   # ~92-93 %

which writes ``classifier_<dataset>.msgpack`` (+ ``.json`` with its test accuracy) to
``$GAN_JAX_CACHE`` or ``~/.cache/gan_jax``. ``load`` looks there first, then in the weights that
ship inside the package (``gan_jax/evaluation/weights/``, produced by the same command).
"""

import json
import os
from typing import Dict, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from gan_jax.errors import UserError

FEATURE_DIM = 128
CACHE_ENV = 'GAN_JAX_CACHE'
PACKAGED = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'weights')


class Classifier(nn.Module):
  """``x [B, 28, 28, 1] in [-1, 1] -> (logits [B, K], features [B, 128])``."""
  num_classes: int = 10

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.astype(jnp.float32)
    for width in (32, 64, 128):  # 28 -> 14 -> 7 -> 3
      x = nn.relu(nn.Conv(width, (3, 3))(x))
      x = nn.max_pool(x, (2, 2), (2, 2))
    x = nn.Dropout(0.25, deterministic=not train)(x.reshape(x.shape[0], -1))
    features = nn.relu(nn.Dense(FEATURE_DIM)(x))
    logits = nn.Dense(self.num_classes)(nn.Dropout(0.5, deterministic=not train)(features))
    return logits, features


def cache_dir() -> str:
  return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser('~'), '.cache', 'gan_jax')


def weight_path(dataset: str, directory: Optional[str] = None) -> str:
  return os.path.join(directory or cache_dir(), f'classifier_{dataset}.msgpack')


class FeatureNet(NamedTuple):
  """A trained classifier: ``apply(x) -> (logits, features)`` (jitted, any batch size)."""
  dataset: str
  params: Dict
  info: Dict
  apply: callable

  def __call__(self, images, batch: int = 1000):
    """(logits, features) as numpy float32 for images ``[N, 28, 28, 1]`` in [-1, 1]."""
    logits, feats = [], []
    for i in range(0, len(images), batch):
      lo, fe = self.apply(self.params, jnp.asarray(images[i:i + batch]))
      logits.append(np.asarray(lo))
      feats.append(np.asarray(fe))
    return np.concatenate(logits), np.concatenate(feats)


def save(params, info: Dict, path: str):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + '.tmp'
  with open(tmp, 'wb') as f:
    f.write(serialization.msgpack_serialize(jax.device_get(params)))
  os.replace(tmp, path)
  with open(path[:-len('.msgpack')] + '.json', 'w') as f:
    json.dump(info, f, indent=1, sort_keys=True)


def load(dataset: str) -> FeatureNet:
  """The classifier for ``dataset``: from the cache, else the packaged weights.

  Raises UserError saying how to make the weights when neither exists (never skips silently).
  """
  from gan_jax.data import names
  dataset = names.canonical_name(dataset)
  candidates = [weight_path(dataset), weight_path(dataset, PACKAGED)]
  path = next((p for p in candidates if os.path.exists(p)), None)
  if path is None:
    raise UserError(f'no feature classifier for dataset {dataset!r} (looked in {candidates[0]} and '
                    f'{candidates[1]}); make it with `python -m gan_jax.evaluation.train_classifier '
                    f'--dataset {dataset}`')
  with open(path[:-len('.msgpack')] + '.json') as f:
    info = json.load(f)
  model = Classifier(num_classes=info['num_classes'])
  template = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))['params']
  with open(path, 'rb') as f:
    params = serialization.from_bytes(template, f.read())
  info['path'] = path
  apply = jax.jit(lambda p, x: model.apply({'params': p}, x, train=False))
  return FeatureNet(dataset, params, info, apply)
