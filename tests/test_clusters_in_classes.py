"""Clusters within the classes of labelled data (``config.data.clusters_per_class``): each
class split by k-means, the nets conditioned on the sub-cluster, while every sample keeps its
class for the class accuracy and the per-class pictures."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import write_idx_fixture
from gan_jax import config_base, evaluate, train
from gan_jax import run as run_lib
from gan_jax.data import clusters
from gan_jax.data.core import make_image_source
from gan_jax.errors import ConfigError, DataError
from test_clusters import _blobs


def test_each_class_is_split_into_its_own_clusters():
  # Class 0 = blobs 0 and 1, class 1 = blobs 2 and 3: two shapes per class.
  images, blob = _blobs([30, 10, 20, 40])
  labels = blob // 2
  src = make_image_source(images, labels, name='blobs', source='idx', num_classes=2)
  out = clusters.split_classes(src, 2, seed=0)
  ids = out.arrays['label']
  assert out.info['num_classes'] == 4 and out.info['labels'] == 'kmeans_in_classes'
  assert out.info['cluster_classes'] == [0, 0, 1, 1]
  # Every cluster lies inside its class, and every blob is one whole cluster of its own.
  np.testing.assert_array_equal(ids // 2, labels)
  for b in range(4):
    assert len(set(ids[blob == b])) == 1
  assert len(set(ids)) == 4
  np.testing.assert_allclose(out.info['label_probs'],
                             np.bincount(ids, minlength=4) / len(ids))
  assert sorted(out.info['label_probs']) == sorted([0.3, 0.1, 0.2, 0.4])
  np.testing.assert_array_equal(out.arrays['image'], images)


def test_split_classes_refuses_unlabelled_data_and_too_many_clusters():
  images, blob = _blobs([5, 3])
  unlabelled = make_image_source(images, None, name='blobs', source='idx', num_classes=None)
  with pytest.raises(DataError, match='has no class labels: use config.data.clusters instead'):
    clusters.split_classes(unlabelled, 2)
  labelled = make_image_source(images, blob, name='blobs', source='idx', num_classes=2)
  with pytest.raises(DataError, match=r'clusters_per_class=4 is more than the 3 images of class '
                                      r'1; use at most 3'):
    clusters.split_classes(labelled, 4)


def _config(data_dir, per_class=2):
  c = config_base.conditional_dcgan('in_classes', 'mnist', 'dcgan_concat_proj', 'smoke',
                                    'test', {})
  c.data.source, c.data.dir = 'idx', data_dir
  c.model.ngf = c.model.ndf = 8
  c.batch_size = 16
  c.data.clusters_per_class = per_class
  return c


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return write_idx_fixture(str(tmp_path_factory.mktemp('idx')))


def test_experiment_maps_clusters_to_classes_for_accuracy_and_pictures(data_dir):
  exp = run_lib.Experiment(_config(data_dir, per_class=3))
  assert exp.num_classes == 30 and exp.cluster_classes == tuple(j // 3 for j in range(30))
  assert not exp.labels_are_classes
  labels = exp.class_labels(900)  # the clusters' shares
  np.testing.assert_array_equal(exp.classes_of(labels), labels // 3)
  # One row per class; the columns cycle through that class's clusters.
  rows = exp.row_labels(4).reshape(10, 4)
  np.testing.assert_array_equal(rows // 3, np.repeat(np.arange(10)[:, None], 4, 1))
  np.testing.assert_array_equal(rows[:, 3], rows[:, 0])
  assert len(set(rows[2, :3])) == 3
  z, grid_labels, cols = exp.grid_inputs(40)
  assert cols == 4 and z.shape[0] == 40
  np.testing.assert_array_equal(grid_labels, exp.row_labels(4))
  # Label-free clusters have no classes; the data's own classes are their own.
  free = _config(data_dir, per_class=0)
  free.data.clusters = 4
  assert run_lib.Experiment(free).classes_of(np.arange(4)) is None


def test_clusters_per_class_config_errors(data_dir):
  c = _config(data_dir)
  c.data.clusters = 5
  with pytest.raises(ConfigError, match='config.data.clusters=5 and config.data.clusters_per_class'
                                        '=2 are two ways of choosing the labels'):
    config_base.validate_config(c)
  c = _config(data_dir)
  c.model.name = 'dcgan'
  with pytest.raises(ConfigError, match="clusters_per_class=2 conditions the nets on clusters, "
                                        "but config.model.name='dcgan' is unconditional"):
    config_base.validate_config(c)
  c = _config(data_dir, per_class=-1)
  with pytest.raises(ConfigError, match='clusters_per_class=-1 must be an integer >= 0'):
    config_base.validate_config(c)


@pytest.mark.slow
def test_a_run_restores_its_cluster_classes_and_reports_class_accuracy(tmp_path, data_dir):
  c = _config(data_dir)
  c.eval_num = 20
  c.num_grid = 20  # 10 classes x 2 columns
  wd = str(tmp_path / 'run')
  train.train_and_evaluate(c, wd)
  rows = [json.loads(line) for line in open(os.path.join(wd, 'metrics.jsonl'))]
  assert [r['step'] for r in rows if 'eval/class_acc' in r] == [3, 6]
  info = json.load(open(os.path.join(wd, 'data_info.json')))
  assert info['cluster_classes'] == [j // 2 for j in range(20)]
  _, _, exp, _ = run_lib.restore_run(wd)
  assert exp.num_classes == 20 and exp.cluster_classes == tuple(info['cluster_classes'])
  result = evaluate.evaluate_run(wd, 20)
  assert result['num_classes'] == 20 and 0.0 <= result['class_acc'] <= 1.0
  # The final picture: one row per class (10), 2 columns, 28x28 cells, 2 px padding, scale 2.
  pic = np.asarray(Image.open(os.path.join(wd, 'samples', 'final.png')))
  assert pic.shape[:2] == ((10 * 30 + 2) * 2, (2 * 30 + 2) * 2)
