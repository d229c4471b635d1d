"""Trains the evaluation classifier for a 28x28 grayscale dataset and reports its test accuracy.

  python -m gan_jax.evaluation.train_classifier --dataset mnist
  python -m gan_jax.evaluation.train_classifier --dataset fashion_mnist --epochs 15

AdamW with cosine decay, dropout, and augmentation: random ±2-pixel shifts for MNIST, random
left-right flips otherwise (``--augment``). The data comes from the same sources as
training (``--source auto`` finds local IDX files via ``$GAN_JAX_DATA_DIR``, a prepared TFDS
dataset, or a download). Writes ``classifier_<dataset>.msgpack`` and ``.json`` (test accuracy,
epochs, seconds) to ``--out`` (default ``$GAN_JAX_CACHE`` or ``~/.cache/gan_jax``). The last
stdout line is a JSON summary.
"""

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import flags
from tqdm import tqdm

from gan_jax import cli, data
from gan_jax.data import names
from gan_jax.errors import UserError
from gan_jax.evaluation import classifier, suite

FLAGS = flags.FLAGS
flags.DEFINE_string('dataset', 'mnist', 'A 28x28 grayscale dataset: mnist, fashion_mnist, ...')
flags.DEFINE_string('source', 'auto', 'Data source: auto, idx, tfds or download.')
flags.DEFINE_string('data_dir', '', 'IDX folder (default: $GAN_JAX_DATA_DIR/<dataset>).')
flags.DEFINE_integer('epochs', 0, 'Epochs (0 = 6 for mnist, 15 otherwise).')
flags.DEFINE_integer('batch_size', 128, 'Batch size.')
flags.DEFINE_float('lr', 2e-3, 'Peak Adam learning rate (cosine decay to 0).')
flags.DEFINE_integer('seed', 0, 'Seed.')
flags.DEFINE_enum('augment', 'auto', ['auto', 'shift', 'flip', 'none'],
                  'Training augmentation: auto = shift for mnist (digits must not be mirrored), '
                  'flip (left-right) otherwise.')
flags.DEFINE_string('out', '', 'Output folder (default: $GAN_JAX_CACHE or ~/.cache/gan_jax).')


def _images(source):
  x = source.arrays['image']
  if tuple(x.shape[1:]) != (28, 28, 1):
    raise UserError(f'--dataset={source.info["name"]} has images of shape {tuple(x.shape[1:])}; '
                    'the evaluation classifier takes 28x28 grayscale (28, 28, 1)')
  if source.info.get('num_classes') is None:
    raise UserError(f'--dataset={source.info["name"]} has no labels; the classifier needs them')
  return x.astype(np.float32) / 127.5 - 1.0, source.arrays['label'].astype(np.int32)


def _shift(key, x):
  """Random translation by up to 2 pixels (zero padding in [-1, 1] space: -1)."""
  dx, dy = jax.random.randint(key, (2,), 0, 5)
  padded = jnp.pad(x, ((2, 2), (2, 2), (0, 0)), constant_values=-1.0)
  return jax.lax.dynamic_slice(padded, (dy, dx, 0), x.shape)


def _flip(key, x):
  return jnp.where(jax.random.bernoulli(key), x[:, ::-1], x)


def accuracy(net_apply, params, x, y, batch=1000) -> float:
  correct = 0
  for i in range(0, len(x), batch):
    logits, _ = net_apply(params, jnp.asarray(x[i:i + batch]))
    correct += int(np.sum(np.asarray(jnp.argmax(logits, -1)) == y[i:i + batch]))
  return correct / len(x)


def train(dataset: str, source: str = 'auto', data_dir: str = '', epochs: int = 0,
          batch_size: int = 128, lr: float = 2e-3, seed: int = 0, progress: bool = True,
          augment: str = 'auto'):
  """Trains the classifier; returns (params, info with 'test_accuracy')."""
  dataset = names.canonical_name(dataset)
  cfg = suite.data_config(dataset, source, data_dir)
  train_x, train_y = _images(data.load_source(cfg, 'train'))
  test_x, test_y = _images(data.load_source(cfg, 'test'))
  num_classes = int(max(train_y.max(), test_y.max())) + 1
  epochs = epochs or (6 if dataset == 'mnist' else 15)
  if augment == 'auto':
    augment = 'shift' if dataset == 'mnist' else 'flip'
  aug_fn = {'shift': _shift, 'flip': _flip, 'none': lambda k, x: x}[augment]
  steps = epochs * (len(train_x) // batch_size)
  model = classifier.Classifier(num_classes=num_classes)
  key = jax.random.key(seed)
  params = model.init(key, jnp.zeros((1, 28, 28, 1)))['params']
  tx = optax.adamw(optax.cosine_decay_schedule(lr, steps), weight_decay=1e-4)
  opt_state = tx.init(params)
  xs, ys = jnp.asarray(train_x), jnp.asarray(train_y)

  @jax.jit
  def step(params, opt_state, i):
    k = jax.random.fold_in(key, i)
    k_idx, k_shift, k_drop = jax.random.split(k, 3)
    idx = jax.random.randint(k_idx, (batch_size,), 0, xs.shape[0])
    x = jax.vmap(aug_fn)(jax.random.split(k_shift, batch_size), xs[idx])

    def loss_fn(p):
      logits, _ = model.apply({'params': p}, x, train=True, rngs={'dropout': k_drop})
      return optax.softmax_cross_entropy_with_integer_labels(logits, ys[idx]).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  t0 = time.time()
  for i in tqdm(range(steps), desc=f'classifier {dataset}', disable=not progress, mininterval=2):
    params, opt_state, loss = step(params, opt_state, i)
  apply = jax.jit(lambda p, x: model.apply({'params': p}, x, train=False))
  acc = accuracy(apply, params, test_x, test_y)
  info = {'dataset': dataset, 'num_classes': num_classes, 'test_accuracy': round(acc, 5),
          'epochs': epochs, 'steps': steps, 'augment': augment, 'batch_size': batch_size, 'lr': lr, 'seed': seed,
          'train_seconds': round(time.time() - t0, 1), 'num_train': len(train_x),
          'num_test': len(test_x), 'feature_dim': classifier.FEATURE_DIM,
          'final_train_loss': round(float(loss), 4)}
  return params, info


def main(argv):
  del argv
  if FLAGS.epochs < 0 or FLAGS.batch_size < 1 or FLAGS.lr <= 0:
    raise UserError(f'--epochs={FLAGS.epochs}, --batch_size={FLAGS.batch_size}, --lr={FLAGS.lr}: '
                    'need epochs >= 0, batch_size >= 1 and lr > 0')
  params, info = train(FLAGS.dataset, FLAGS.source, FLAGS.data_dir, FLAGS.epochs,
                       FLAGS.batch_size, FLAGS.lr, FLAGS.seed, augment=FLAGS.augment)
  path = classifier.weight_path(info['dataset'], FLAGS.out or None)
  classifier.save(params, info, path)
  print(f'{info["dataset"]}: test accuracy {100 * info["test_accuracy"]:.2f}% '
        f'({info["epochs"]} epochs, {info["train_seconds"]}s); wrote {path}')
  print(json.dumps({**info, 'path': path}))


if __name__ == '__main__':
  cli.run(main)
