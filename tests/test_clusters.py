"""Self-conditioning on k-means clusters (gan_jax/data/clusters.py and its wiring): the clusters
of known blobs, the fakes' label distribution, the sampling shares, the config checks, and a
trained run that restores with its cluster shares."""

import os
import types

import jax
import numpy as np
import pytest

from conftest import REPO, write_idx_fixture
from gan_jax import config_base, draws, train
from gan_jax import run as run_lib
from gan_jax.data import clusters
from gan_jax.data.core import make_image_source
from gan_jax.errors import ConfigError, DataError


def _blobs(sizes, seed=0):
  """uint8 [N, 8, 8, 1] images: group g is a bright square at its own place, plus noise."""
  rng = np.random.RandomState(seed)
  out, truth = [], []
  for g, n in enumerate(sizes):
    x = rng.randint(0, 30, (n, 8, 8, 1))
    r, c = divmod(g, 2)
    x[:, 4 * r:4 * r + 4, 4 * c:4 * c + 4] += 200
    out.append(x)
    truth += [g] * n
  return np.concatenate(out).astype(np.uint8), np.array(truth)


def test_kmeans_recovers_separated_groups_and_their_shares():
  images, truth = _blobs([50, 150, 100])
  ids, sizes = clusters.kmeans(images, 3, seed=0)
  assert ids.dtype == np.int32 and ids.shape == (300,)
  # the same partition up to a renaming of the clusters
  for g in range(3):
    assert len(set(ids[truth == g])) == 1
  assert len(set(ids)) == 3
  np.testing.assert_allclose(sorted(sizes), [50 / 300, 100 / 300, 150 / 300])
  # deterministic for a seed
  np.testing.assert_array_equal(clusters.kmeans(images, 3, seed=0)[0], ids)


def test_seeding_puts_one_centre_in_each_of_far_apart_tight_groups():
  # 6 groups of 40 points, each within 0.01 of its own corner 100 apart: k-means++ (each draw
  # ~ squared distance to the NEAREST centre so far) picks every group once; a distance to
  # a stale set of centres would draw from an already picked group with probability ~1/5.
  rng = np.random.RandomState(0)
  corners = 100.0 * np.eye(6, dtype=np.float32)
  points = np.repeat(corners, 40, 0) + 0.01 * rng.rand(240, 6).astype(np.float32)
  for seed in range(20):
    centres = clusters.seed_centres(points, 6, np.random.RandomState(seed))
    groups = np.argmin(((centres[:, None] - corners[None]) ** 2).sum(-1), 1)
    assert sorted(groups) == list(range(6)), (seed, groups)


def test_kmeans_refuses_k_outside_the_data():
  images, _ = _blobs([5, 5])
  with pytest.raises(DataError, match=r'config.data.clusters=11 must lie in \[1, 10\]'):
    clusters.kmeans(images, 11)


def test_relabel_replaces_labels_and_records_shares():
  images, truth = _blobs([40, 20])
  src = make_image_source(images, truth, name='blobs', source='idx', num_classes=2)
  out = clusters.relabel(src, 2, seed=1)
  assert out.info['num_classes'] == 2 and out.info['labels'] == 'kmeans'
  np.testing.assert_allclose(sorted(out.info['label_probs']), [1 / 3, 2 / 3])
  ids = out.arrays['label']
  assert set(ids[truth == 0]) != set(ids[truth == 1])
  np.testing.assert_array_equal(out.arrays['image'], images)


def test_fake_labels_follow_label_probs():
  probs = (0.7, 0.2, 0.1)
  y = np.asarray(draws.sample_labels(jax.random.key(0), 20000, 3, probs=probs))
  freq = np.bincount(y, minlength=3) / len(y)
  np.testing.assert_allclose(freq, probs, atol=0.015)
  # () keeps the uniform draw, unchanged
  u = draws.sample_labels(jax.random.key(0), 64, 3)
  np.testing.assert_array_equal(u, jax.random.randint(jax.random.key(0), (64,), 0, 3))


def _config(data_dir, **overrides):
  c = config_base.conditional_dcgan('clusters', 'mnist', 'dcgan_concat_proj', 'smoke',
                                    'test', {})
  c.data.source, c.data.dir = 'idx', data_dir
  c.model.ngf = c.model.ndf = 8
  c.batch_size = 16
  c.data.clusters = 4
  for k, v in overrides.items():
    c[k] = v
  return c


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return write_idx_fixture(str(tmp_path_factory.mktemp('idx')))


def test_cluster_shares_give_the_sampling_labels(data_dir):
  exp = run_lib.Experiment(_config(data_dir))
  probs = np.asarray(exp.label_probs)
  assert exp.num_classes == 4 and abs(probs.sum() - 1) < 1e-9
  assert exp.cfg.label_probs == exp.label_probs
  assert not exp.labels_are_classes
  labels = exp.class_labels(1000)
  counts = np.bincount(labels, minlength=4)
  assert counts.sum() == 1000 and np.all(np.abs(counts - 1000 * probs) < 1)
  np.testing.assert_array_equal(np.bincount(exp.source.arrays['label'], minlength=4) / 256, probs)


def test_clusters_need_a_conditional_model_and_a_count(data_dir):
  c = _config(data_dir)
  c.model.name = 'dcgan'
  with pytest.raises(ConfigError, match="config.data.clusters=4 conditions the nets on clusters, "
                                        "but config.model.name='dcgan' is unconditional"):
    config_base.validate_config(c)
  c = _config(data_dir)
  c.data.clusters = -1
  with pytest.raises(ConfigError, match='config.data.clusters=-1 must be an integer >= 0'):
    config_base.validate_config(c)


@pytest.mark.slow
def test_a_trained_run_restores_with_its_cluster_shares(tmp_path, data_dir):
  wd = str(tmp_path / 'run')
  train.train_and_evaluate(_config(data_dir), wd)
  _, _, exp, state = run_lib.restore_run(wd)
  trained = run_lib.Experiment(_config(data_dir))
  assert exp.num_classes == 4
  np.testing.assert_allclose(exp.label_probs, trained.label_probs)
  x = exp.sample(state, 10)
  assert x.shape == (10, 28, 28, 1) and np.isfinite(x).all()


def test_kmeans_with_more_clusters_than_distinct_images_reseeds_and_finishes():
  """Duplicated images leave clusters empty; each is re-seeded (this once raised on a read-only
  array) and every id stays in range."""
  images = np.repeat(_blobs([1, 1])[0], 5, axis=0)  # 10 images, 2 distinct
  ids, sizes = clusters.kmeans(images, 3, seed=0)
  assert ids.shape == (10,) and ids.min() >= 0 and ids.max() < 3
  assert abs(sizes.sum() - 1) < 1e-12


def test_sampling_labels_of_a_small_batch_follow_the_shares_not_the_largest_clusters():
  """64 samples of 500 clusters (a training picture) must not all come from the biggest ones."""
  # 50 clusters of share 0.015 (75 % of the data), then 50 of share 0.005 (25 %).
  exp = types.SimpleNamespace(num_classes=100, label_probs=(0.015,) * 50 + (0.005,) * 50)
  labels = run_lib.Experiment.class_labels(exp, 10)
  assert labels.dtype == np.int32 and np.all(np.diff(labels) > 0)  # cluster order, no repeats
  assert np.sum(labels >= 50) in (2, 3)  # a quarter of 10, up to one; largest-first gave 0
  for n in (7, 100, 1001):
    counts = np.bincount(run_lib.Experiment.class_labels(exp, n), minlength=100)
    assert counts.sum() == n and np.all(np.abs(counts - n * np.asarray(exp.label_probs)) < 1)
