"""Class-conditional GANs: cBN + projection D, the concat cGAN, labels in the steps, the trainer.

Tiny widths (ngf = ndf = 8) keep the nets fast. Tests marked slow (integration: the Experiment
sampling API, the trainer on real MNIST, the classifier on real MNIST, the other step paths) stay
out of ``-m 'not slow'``.
"""

import functools
import json
import os

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from PIL import Image

from conftest import REPO, needs_mnist, shared_datasets_dir
from test_configs import _load
from gan_jax import data, models, steps, train
from gan_jax import run as run_lib
from gan_jax.data.core import make_image_source
from gan_jax.errors import ConfigError, UserError
from gan_jax.evaluation import suite
from gan_jax.models import cond, dcgan
from gan_jax.state import GANState, ModelState, create_state

K = 10
LATENT = 16


def _nets(name, **kw):
  mc = ml_collections.ConfigDict({'name': name, 'ngf': 8, 'ndf': 8, **kw})
  return models.build_models(mc, (28, 28, 1), num_classes=K)


# Variables are drawn with numpy from the shapes ``init`` would make (jax.eval_shape): the
# same nets as after ``init``, without compiling JAX's random initialisers (seconds on CPU).
def _variables(module, *args, seed=0, scale=0.05):
  """Random variables of ``module``: BN/cBN scales 1 + noise, other params noise of ``scale``
  (so per-class tables differ between classes, as after training), BN statistics (0, 1)."""
  rs = np.random.RandomState(seed)
  shapes = jax.eval_shape(functools.partial(module.init, train=False), jax.random.key(0), *args)

  def fill(path, leaf):
    name = path[-1].key
    if name == 'var':
      return jnp.ones(leaf.shape, leaf.dtype)
    if name == 'mean':
      return jnp.zeros(leaf.shape, leaf.dtype)
    base = 1.0 if name in ('scale', 'gamma') else 0.0
    return jnp.asarray(base + scale * rs.normal(size=leaf.shape), leaf.dtype)
  return jax.tree_util.tree_map_with_path(fill, shapes)


def _state(name='dcgan_cbn_proj', seed=0):
  """A GANState (Adam, EMA on) with numpy-drawn params; see ``_variables``."""
  g, d = _nets(name)
  gv = _variables(g, jnp.zeros((2, LATENT)), seed=seed)
  dv = _variables(d, jnp.zeros((2, 28, 28, 1)), seed=seed + 1)
  gs = ModelState.create(apply_fn=g.apply, params=gv['params'], tx=optax.adam(1e-3, 0.5),
                         batch_stats=gv['batch_stats'])
  ds = ModelState.create(apply_fn=d.apply, params=dv['params'], tx=optax.adam(1e-3, 0.5),
                         batch_stats=dv['batch_stats'])
  zero = jnp.zeros((), jnp.int32)
  return GANState(g=gs.replace(step=zero), d=ds.replace(step=zero),
                  ema_params=jax.tree.map(jnp.copy, gs.params))


def _images(seed, n):
  return jnp.asarray(np.random.RandomState(seed).uniform(-1, 1, (n, 28, 28, 1)), jnp.float32)


def test_projection_logit_is_psi_plus_embedding_inner_product():
  _, d = _nets('dcgan_cbn_proj')
  x = _images(1, 6)
  y = jnp.array([0, 3, 9, 3, 5, 1])
  v = _variables(d, x)
  apply = jax.jit(functools.partial(d.apply, train=False, return_features=True))
  logits, h = apply(v, x, y)
  chex.assert_shape(h, (6, 7 * 7 * 16))
  p = v['params']
  e = np.asarray(p['embed']['kernel'])             # [K, 784]: row k is embed(k)
  w = np.asarray(p['psi']['kernel'])[:, 0]         # psi(h) = <w, h>
  hn = np.asarray(h, np.float64)
  want = hn @ w + np.sum(e[np.asarray(y)] * hn, axis=1)
  np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-5)
  # h does not depend on the label; only the projection term does.
  logits2, h2 = apply(v, x, (y + 1) % K)
  np.testing.assert_allclose(h2, h, rtol=0, atol=0)
  np.testing.assert_allclose(logits2 - logits,
                             np.sum((e[(np.asarray(y) + 1) % K] - e[np.asarray(y)]) * hn, axis=1),
                             rtol=1e-4, atol=1e-5)


def test_conditional_batchnorm_shares_statistics_and_picks_the_class_affine():
  bn = cond.ConditionalBatchNorm(num_classes=3)
  x = jnp.asarray(np.random.RandomState(0).normal(1, 2, (6, 2, 2, 4)), jnp.float32)
  y = jnp.array([0, 1, 2, 2, 1, 0])
  v = _variables(bn, x, y)
  out, upd = bn.apply(v, x, y, train=True, mutable=['batch_stats'])
  mean = np.mean(np.asarray(x), axis=(0, 1, 2))
  var = np.var(np.asarray(x), axis=(0, 1, 2))
  gamma, beta = np.asarray(v['params']['gamma']), np.asarray(v['params']['beta'])
  x_hat = (np.asarray(x) - mean) / np.sqrt(var + 1e-5)
  want = gamma[np.asarray(y)][:, None, None] * x_hat + beta[np.asarray(y)][:, None, None]
  np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)
  # One set of running statistics for all classes: momentum 0.9 from (0, 1).
  stats = upd['batch_stats']['BatchNorm_0']
  np.testing.assert_allclose(stats['mean'], 0.1 * mean, rtol=1e-4, atol=1e-6)
  chex.assert_shape(gamma, (3, 4))


def test_cbn_generator_output_depends_on_the_label():
  g, _ = _nets('dcgan_cbn_proj')
  z = jnp.asarray(np.random.RandomState(0).normal(size=(4, LATENT)), jnp.float32)
  v = _variables(g, z)
  apply = jax.jit(functools.partial(g.apply, train=False))
  a = apply(v, z, jnp.array([0, 1, 2, 3]))
  b = apply(v, z, jnp.array([0, 1, 2, 3]))
  c = apply(v, z, jnp.array([4, 5, 6, 7]))
  d = apply(v, z, jnp.array([0, 1, 2, 2]))
  chex.assert_shape(a, (4, 28, 28, 1))
  np.testing.assert_array_equal(a, b)  # same z, same labels -> same images
  per_sample = np.max(np.abs(np.asarray(a) - np.asarray(c)), axis=(1, 2, 3))
  assert np.all(per_sample > 1e-4), per_sample  # same z, other class -> other image
  # Eval-mode G treats samples independently: only the relabelled sample changes.
  np.testing.assert_allclose(d[:3], a[:3], atol=1e-6)
  assert np.max(np.abs(np.asarray(d[3]) - np.asarray(a[3]))) > 1e-4
  with pytest.raises(ValueError, match=r'class-conditional \(num_classes=\d+\): pass labels'):
    g.apply(v, z, train=False)


def test_concat_cgan_shapes_and_values():
  g, d = _nets('dcgan_concat')
  z = jnp.asarray(np.random.RandomState(0).normal(size=(3, LATENT)), jnp.float32)
  y = jnp.array([2, 7, 7])
  gv = _variables(g, z)
  dv = _variables(d, _images(3, 3))
  chex.assert_shape(gv['params']['net']['Dense_0']['kernel'], (LATENT + K, 7 * 7 * 32))
  chex.assert_shape(dv['params']['net']['Conv_0']['kernel'], (4, 4, 1 + K, 8))
  x = g.apply(gv, z, y, train=False)
  chex.assert_shape(x, (3, 28, 28, 1))
  # G is the plain DCGAN G on [z, one_hot(y)] ...
  plain_g = dcgan.Generator(ngf=8)
  inp = jnp.concatenate([z, jax.nn.one_hot(y, K)], axis=1)
  np.testing.assert_allclose(x, plain_g.apply({c: gv[c]['net'] for c in gv}, inp, train=False),
                             atol=1e-6)
  # ... and D the plain DCGAN D on x with K label planes.
  logits = d.apply(dv, x, y, train=False)
  chex.assert_shape(logits, (3,))
  planes = jnp.broadcast_to(jax.nn.one_hot(y, K)[:, None, None, :], (3, 28, 28, K))
  plain_d = dcgan.Discriminator(ndf=8)
  np.testing.assert_allclose(
      logits, plain_d.apply({c: dv[c]['net'] for c in dv}, jnp.concatenate([x, planes], -1),
                            train=False), atol=1e-5)
  assert not np.allclose(d.apply(dv, x, jnp.array([0, 1, 2]), train=False), logits)


def _changed(a, b):
  return jax.tree.leaves(jax.tree.map(lambda u, v: bool(jnp.any(u != v)), a, b))


@pytest.mark.parametrize('name,share', [
    ('dcgan_cbn_proj', False),
    pytest.param('dcgan_concat', True, marks=pytest.mark.slow)])
def test_conditional_train_step_updates_both_nets_and_is_deterministic(name, share):
  state = _state(name)
  cfg = steps.StepConfig(latent_dim=LATENT, num_classes=K, ema_decay=0.9, share_g_forward=share)
  reals = _images(1, 8)[None]
  labels = jnp.arange(8, dtype=jnp.int32)[None] % K
  f = jax.jit(functools.partial(steps.train_step, cfg=cfg))
  a, ma = f(state, reals, jax.random.key(5), labels=labels)
  b, mb = f(state, reals, jax.random.key(5), labels=labels)
  chex.assert_trees_all_equal(jax.tree.leaves((a, ma)), jax.tree.leaves((b, mb)))
  assert all(_changed(a.g.params, state.g.params))
  assert all(_changed(a.d.params, state.d.params))
  assert int(a.g.step) == 1 and int(a.d.step) == 1
  assert all(np.isfinite(float(v)) for v in ma.values())
  # The real labels matter: other labels for the same images give another D update.
  c, _ = f(state, reals, jax.random.key(5), labels=(labels + 1) % K)
  assert any(_changed(c.d.params, a.d.params))
  with pytest.raises(ValueError, match='needs the real labels'):
    steps.train_step(state, reals, jax.random.key(5), cfg)


@pytest.mark.slow
def test_n_critic_scan_threads_each_batch_its_labels():
  state = _state()
  cfg = steps.StepConfig(latent_dim=LATENT, num_classes=K, n_critic=2)
  reals = _images(1, 16).reshape(2, 8, 28, 28, 1)
  labels = (jnp.arange(16, dtype=jnp.int32) % K).reshape(2, 8)
  new, m = jax.jit(functools.partial(steps.train_step, cfg=cfg))(
      state, reals, jax.random.key(0), labels=labels)
  assert int(new.d.step) == 2 and int(new.g.step) == 1 and np.isfinite(float(m['loss_D']))
  with pytest.raises(ValueError, match=r'labels have shape \(8,\); expected \(2, 8\)'):
    steps.train_step(state, reals, jax.random.key(0), cfg, labels=labels[0])


class _SpyG(nn.Module):
  """G(z, y) = a constant -1 image; records the labels it is asked for."""
  num_classes: int = K

  @nn.compact
  def __call__(self, z, labels=None, train=True):
    w = self.param('w', jax.nn.initializers.zeros, (self.num_classes,))
    if labels is None:
      labels = jnp.zeros((z.shape[0],), jnp.int32)
    else:
      jax.debug.callback(lambda y: SEEN['g'].append(np.asarray(y)), labels)
    # -1 everywhere (so D can tell fakes from the all-ones reals); w keeps a gradient path.
    return jnp.full((z.shape[0], 28, 28, 1), -1.0) + 0.0 * w[labels][:, None, None, None]


class _SpyD(nn.Module):
  """D(x, y) = w[y]; records (labels, which: +1 real / -1 fake) for every call."""
  num_classes: int = K

  @nn.compact
  def __call__(self, x, labels=None, train=True, return_features=False):
    w = self.param('w', jax.nn.initializers.zeros, (self.num_classes,))
    if labels is None:
      labels = jnp.zeros((x.shape[0],), jnp.int32)
    else:
      jax.debug.callback(lambda y, s: SEEN['d'].append((np.asarray(y), float(s))), labels,
                         jnp.sign(x[0, 0, 0, 0]))
    return w[labels] + 0.01 * jnp.mean(x.reshape(x.shape[0], -1), axis=1)


SEEN = {'g': [], 'd': []}


def test_fake_labels_are_the_ones_g_made_in_range_and_uniform():
  SEEN['g'].clear(), SEEN['d'].clear()
  state = create_state(_SpyG(), _SpyD(), optax.sgd(0.1), optax.sgd(0.1), LATENT, (28, 28, 1),
                       jax.random.key(0))
  cfg = steps.StepConfig(latent_dim=LATENT, num_classes=K)
  n = 5000
  real = jnp.ones((n, 28, 28, 1))
  real_labels = jnp.asarray(np.random.RandomState(0).randint(0, K, n), jnp.int32)
  jax.jit(functools.partial(steps.d_step, cfg=cfg))(state, real, jax.random.key(1),
                                                    real_labels=real_labels)
  jax.effects_barrier()
  (y_g,) = SEEN['g']
  reals_seen = [y for y, s in SEEN['d'] if s > 0]
  fakes_seen = [y for y, s in SEEN['d'] if s < 0]
  np.testing.assert_array_equal(reals_seen[0], real_labels)  # reals with their own labels
  np.testing.assert_array_equal(fakes_seen[0], y_g)          # fakes with the labels G used
  assert y_g.min() >= 0 and y_g.max() < K
  counts = np.bincount(y_g, minlength=K)
  # Uniform: each class n/K = 500 +- 5 sd (sd = sqrt(n p (1-p)) = 21.2).
  assert np.all(np.abs(counts - n / K) < 5 * np.sqrt(n * 0.1 * 0.9)), counts
  np.testing.assert_array_equal(y_g, steps.fake_labels(jax.random.key(1), n, cfg))
  # The G step draws its own labels and D judges its fakes with them.
  SEEN['g'].clear(), SEEN['d'].clear()
  jax.jit(functools.partial(steps.g_step, batch_size=n, cfg=cfg))(state, jax.random.key(2))
  jax.effects_barrier()
  (y_g2,) = SEEN['g']
  np.testing.assert_array_equal(SEEN['d'][0][0], y_g2)
  assert not np.array_equal(y_g2, y_g)


def _unlabelled_source(cfg, split='train'):
  del cfg, split
  x = np.zeros((32, 28, 28, 1), np.uint8)
  return make_image_source(x, None, name='faces', source='idx', num_classes=None)


def test_conditional_model_on_unlabelled_data_is_a_config_error(monkeypatch):
  c = _load(os.path.join(REPO, 'experiments', 'mnist_cond.py'), 'smoke')
  c.data.clusters_per_class = 0  # labels = classes (sub-clusters: test_clusters_in_classes.py)
  monkeypatch.setattr(data, 'load_source', _unlabelled_source)
  with pytest.raises(ConfigError, match=r"config.model.name='dcgan_concat_proj' is class-conditional "
                     r"but config.data.name='mnist' has no class labels; use a labelled dataset "
                     r'or an unconditional model \(dcgan, mlp'):
    run_lib.Experiment(c)
  with pytest.raises(ConfigError, match="config.model.name='dcgan_concat' is class-conditional"):
    models.build_models(ml_collections.ConfigDict({'name': 'dcgan_concat'}), (28, 28, 1))
  c.model.name = 'dcgan'  # an unconditional model trains on it, labels unused
  assert run_lib.Experiment(c).num_classes == 0


def test_registry_pairs_and_explicit_class_count():
  g, d = _nets('dcgan_concat_proj')
  assert isinstance(g, cond.ConcatGenerator) and isinstance(d, cond.ProjectionDiscriminator)
  assert g.num_classes == d.num_classes == K
  mc = ml_collections.ConfigDict({'name': 'dcgan_cbn_proj', 'num_classes': 3})
  assert models.build_models(mc, (28, 28, 1), num_classes=K)[0].num_classes == 3
  with pytest.raises(ConfigError, match=r'config.model.name=dcgan_concat takes 28x28 images'):
    models.build_models(ml_collections.ConfigDict({'name': 'dcgan_concat'}), (32, 32, 3),
                        num_classes=K)
  with pytest.raises(ConfigError, match=r'valid: dcgan, mlp.*; class-conditional: '
                     r'dcgan_cbn_proj, dcgan_concat, dcgan_concat_proj'):
    models.build_models(ml_collections.ConfigDict({'name': 'cgan'}), (28, 28, 1))


@pytest.mark.slow
def test_experiment_sampling_api_for_conditional_runs():
  """What ``gan_jax.sample --mode=classes`` calls: exp.num_classes, exp.generate_fn(..., labels=)."""
  c = _load(os.path.join(REPO, 'experiments', 'mnist_cond.py'), 'smoke')
  c.data.clusters_per_class = 0  # labels = classes (sub-clusters: test_clusters_in_classes.py)
  c.model.ngf = c.model.ndf = 8
  exp = run_lib.Experiment(c, data_shape=(28, 28, 1), num_classes=K)
  assert exp.num_classes == K and exp.cfg.num_classes == K
  state = exp.init_state()
  z = jax.random.normal(jax.random.key(0), (K, c.model.latent_dim))
  labels = np.arange(K)
  x = exp.generate_fn(state, z, use_ema=True, labels=labels)
  chex.assert_shape(x, (K, 28, 28, 1))
  # Eval-mode G: sample i depends on (z_i, y_i) alone, so permuting the pairs permutes the images.
  np.testing.assert_allclose(
      exp.generate_fn(state, z[::-1], use_ema=True, labels=labels[::-1])[::-1], x, atol=1e-6)
  with pytest.raises(UserError, match=r'class-conditional \(10 classes\): pass labels'):
    exp.generate_fn(state, z)
  with pytest.raises(UserError, match=r'labels must lie in \[0, 10\); got values 0..10'):
    exp.generate_fn(state, z, labels=np.arange(K) + np.eye(K, dtype=int)[-1])
  # sample() defaults to balanced, cyclic labels; each chunk gets its own slice of the labels.
  np.testing.assert_array_equal(exp.class_labels(23), np.arange(23) % K)
  key = jax.random.key(3)
  a = exp.sample(state, 20, key=key, chunk=10)
  np.testing.assert_allclose(a, exp.sample(state, 20, key=key, chunk=10,
                                           labels=np.arange(20) % K), atol=1e-6)
  z1 = jax.random.normal(jax.random.fold_in(key, 1), (10, c.model.latent_dim))
  np.testing.assert_allclose(a[10:], exp.generate_fn(state, z1, labels=np.arange(10)), atol=1e-6)
  b = exp.sample(state, 20, key=key, chunk=10, labels=np.zeros(20, int))
  assert not np.allclose(a[1:10], b[1:10])
  with pytest.raises(UserError, match=r'labels have shape \(3,\); expected \(20,\)'):
    exp.sample(state, 20, labels=np.zeros(3, int))
  # The training picture: one row per class, the same latent down each column.
  zg, yg, cols = exp.grid_inputs(c.num_grid)
  assert cols == 2 and zg.shape == (20, c.model.latent_dim)
  np.testing.assert_array_equal(yg, np.repeat(np.arange(K), 2))
  np.testing.assert_array_equal(zg[0::2], np.broadcast_to(zg[0], (K, c.model.latent_dim)))
  # An unconditional run refuses labels.
  u = _load(os.path.join(REPO, 'experiments', 'mnist_dcgan_classic.py'), 'smoke')
  u.model.ngf = u.model.ndf = 8
  uexp = run_lib.Experiment(u, data_shape=(28, 28, 1))
  assert uexp.num_classes == 0 and uexp.class_labels(5) is None
  with pytest.raises(UserError, match='unconditional'):
    uexp.generate_fn(None, z, labels=labels)  # refused before G runs


@pytest.mark.slow
@needs_mnist
def test_class_accuracy_of_real_images_is_the_classifier_accuracy():
  cfg = suite.data_config('mnist', source='idx',
                          directory=os.path.join(shared_datasets_dir(), 'mnist'))
  x, y = suite.load_images(cfg, 'test', 500, seed=3, with_labels=True)
  ev = suite.Evaluator.for_dataset('mnist', 500, cfg)
  right = ev.quick(x, labels=y)['class_acc']
  wrong = ev.quick(x, labels=(y + 1) % K)['class_acc']
  assert right >= 0.97 and wrong <= 0.03, (right, wrong)
  assert 'class_acc' not in ev.quick(x)
  with pytest.raises(UserError, match='labels of shape'):
    ev.quick(x, labels=y[:10])


@pytest.mark.slow
@needs_mnist
def test_conditional_smoke_run_logs_class_accuracy(tmp_path):
  c = _load(os.path.join(REPO, 'experiments', 'mnist_cond.py'), 'smoke')
  c.data.clusters_per_class = 0  # labels = classes (sub-clusters: test_clusters_in_classes.py)
  c.data.source = 'idx'
  c.data.dir = os.path.join(shared_datasets_dir(), 'mnist')
  c.model.ngf = c.model.ndf = 8
  c.batch_size = 16
  c.eval_num = 20
  wd = str(tmp_path / 'run')
  state = train.train_and_evaluate(c, wd)
  assert int(state.step) == c.num_steps
  assert os.listdir(os.path.join(wd, 'checkpoints'))
  rows = [json.loads(line) for line in open(os.path.join(wd, 'metrics.jsonl'))]
  evals = [r for r in rows if 'eval/class_acc' in r]
  assert [r['step'] for r in evals] == [3, 6]
  for r in evals:
    assert 0.0 <= r['eval/class_acc'] <= 1.0 and np.isfinite(r['eval/fd'])
    # 20 samples, 2 per class: the accuracy is a multiple of 1/20.
    assert abs(r['eval/class_acc'] * 20 - round(r['eval/class_acc'] * 20)) < 1e-9
  # The final picture: 10 rows (classes) x 2 columns of 28x28 cells, 2 px padding, scale 2.
  pic = np.asarray(Image.open(os.path.join(wd, 'samples', 'final.png')))
  assert pic.shape[:2] == ((K * 30 + 2) * 2, (2 * 30 + 2) * 2)
  # The run restores with its classes (read from data_info.json), and evaluate reports class_acc.
  _, _, exp, restored = run_lib.restore_run(wd)
  assert exp.num_classes == K
  chex.assert_trees_all_equal(jax.tree.leaves(jax.device_get(restored.g.params)),
                              jax.tree.leaves(jax.device_get(state.g.params)))
  from gan_jax import evaluate  # pylint: disable=g-import-not-at-top
  result = evaluate.evaluate_run(wd, 20)
  assert result['num_classes'] == K and 0.0 <= result['class_acc'] <= 1.0
