"""Bad input gets one line on stderr naming the bad value, exit code 2, and nothing written.

Every case runs the real command line in a subprocess, as a user would.
"""

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, needs_mnist, subprocess_env, write_idx_fixture

TOY = '--config=experiments/toy2d.py:smoke'
MNIST = '--config=experiments/mnist.py:smoke'


def _idx(path, array):
  array = np.asarray(array, np.uint8)
  header = struct.pack('>HBB', 0, 8, array.ndim) + struct.pack('>' + 'I' * array.ndim, *array.shape)
  with gzip.open(path, 'wb') as f:
    f.write(header + array.tobytes())


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  """Good and broken IDX folders."""
  root = tmp_path_factory.mktemp('data')
  good = write_idx_fixture(str(root / 'good'), n_train=32, n_test=8)
  dirs = {'good': good}
  for name in ('magic', 'truncated', 'mismatch', 'shape48'):
    dirs[name] = str(root / name)
    shutil.copytree(good, dirs[name])
  with gzip.open(os.path.join(dirs['magic'], 'train-images-idx3-ubyte.gz'), 'wb') as f:
    f.write(b'\x12\x34\x08\x03' + b'\x00' * 64)
  path = os.path.join(dirs['truncated'], 'train-images-idx3-ubyte.gz')
  raw = open(path, 'rb').read()
  open(path, 'wb').write(raw[:len(raw) // 2])
  _idx(os.path.join(dirs['mismatch'], 'train-labels-idx1-ubyte.gz'), np.zeros(20))
  _idx(os.path.join(dirs['shape48'], 'train-images-idx3-ubyte.gz'), np.zeros((32, 48, 48)))
  # Sample files for `gan_jax.sample --samples`.
  nan = np.zeros((4, 28, 28), np.float32)
  nan[1, 2, 3] = np.nan
  for name, arrays in {'nan': {'samples': nan},
                       'shape': {'samples': np.zeros((4, 784), np.uint8)},
                       'dtype': {'samples': np.zeros((4, 28, 28), np.int64)},
                       'range': {'samples': np.full((4, 28, 28), 3.0, np.float32)},
                       'key': {'images': np.zeros((4, 28, 28), np.uint8)}}.items():
    dirs[f'npz_{name}'] = str(root / f'{name}.npz')
    np.savez(dirs[f'npz_{name}'], **arrays)
  dirs['npz_garbage'] = str(root / 'garbage.npz')
  open(dirs['npz_garbage'], 'w').write('not a zip file')
  dirs['empty'] = str(root / 'empty')
  os.makedirs(dirs['empty'])
  _idx(os.path.join(dirs['empty'], 'train-images-idx3-ubyte.gz'), np.zeros((0, 28, 28)))
  _idx(os.path.join(dirs['empty'], 'train-labels-idx1-ubyte.gz'), np.zeros(0))
  dirs['afile'] = str(root / 'afile')
  open(dirs['afile'], 'w').write('x')
  dirs['pngs'] = str(root / 'pngs')
  os.makedirs(dirs['pngs'])
  from PIL import Image  # pylint: disable=g-import-not-at-top
  for i in range(3):
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(os.path.join(dirs['pngs'], f'{i}.png'))
  # Config files that do not load.
  dirs['config_syntax'] = str(root / 'syntax_cfg.py')
  open(dirs['config_syntax'], 'w').write('def get_config(:\n  pass\n')
  dirs['config_raises'] = str(root / 'raises_cfg.py')
  open(dirs['config_raises'], 'w').write('def get_config():\n  raise ValueError("boom in get_config")\n')
  return dirs


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A finished 6-step toy2d run (for the sample tool's output-path cases)."""
  wd = str(tmp_path_factory.mktemp('trained') / 'run')
  r = subprocess.run([sys.executable, 'launch.py', TOY, f'--workdir={wd}'], cwd=REPO,
                     env=subprocess_env(), text=True, capture_output=True, timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  return wd


def _file(tmp):
  path = os.path.join(tmp, 'a_file')
  open(path, 'w').write('x')
  return path


def _unwritable(tmp):
  # Root may write anywhere chmod forbids, but not into sysfs.
  if os.geteuid() == 0:
    return '/sys/gan_jax_test_run'
  os.chmod(tmp, 0o500)
  return os.path.join(tmp, 'run')


def _garbage_config_run(tmp):
  """A workdir whose config.json is not JSON."""
  wd = os.path.join(tmp, 'garbage')
  os.makedirs(wd)
  open(os.path.join(wd, 'config.json'), 'w').write('{"name": "toy2d", garbage')
  json.dump({'name': 'ring', 'shape': [2]}, open(os.path.join(wd, 'data_info.json'), 'w'))
  return wd


def _changed_config_run(tmp):
  """A workdir whose config.json was written by a toy2d run with num_steps=6."""
  wd = os.path.join(tmp, 'old')
  os.makedirs(wd)
  sys.path.insert(0, os.path.join(REPO, 'experiments'))
  import toy2d  # pylint: disable=import-outside-toplevel
  sys.path.pop(0)
  cfg = toy2d.get_config('smoke').to_dict()
  cfg['optim']['g_lr'] = 0.123
  json.dump(json.loads(json.dumps(cfg, default=str)), open(os.path.join(wd, 'config.json'), 'w'))
  json.dump({'name': 'ring', 'shape': [2]}, open(os.path.join(wd, 'data_info.json'), 'w'))
  return wd


# (id, launch.py arguments or ('sample', arguments), substring of the one-line message)
CASES = [
    ('unknown_key', [TOY, '--config.num_stepz=3'], '--config.num_stepz: the config has no such key'),
    ('unknown_nested_key', [TOY, '--config.optim.lrr=1'], '--config.optim.lrr'),
    ('wrong_type_int', [TOY, '--config.num_steps=abc'], "--config.num_steps=abc"),
    ('wrong_type_float_for_int', [TOY, '--config.batch_size=1.5'], '--config.batch_size=1.5'),
    ('wrong_type_float', [TOY, '--config.optim.g_lr=fast'], '--config.optim.g_lr=fast'),
    ('zero_lr', [TOY, '--config.optim.g_lr=0'], 'config.optim.g_lr=0'),
    ('negative_lr', [TOY, '--config.optim.d_lr=-0.001'], 'config.optim.d_lr=-0.001'),
    ('zero_batch', [TOY, '--config.batch_size=0'], 'config.batch_size=0 must be an integer >= 1'),
    ('negative_batch', [TOY, '--config.batch_size=-8'], 'config.batch_size=-8'),
    ('zero_steps', [TOY, '--config.num_steps=0'], 'config.num_steps=0'),
    ('negative_steps', [TOY, '--config.num_steps=-5'], 'config.num_steps=-5'),
    ('unknown_loss', [TOY, '--config.loss=wgann'], "config.loss='wgann' is not a known objective; valid: hinge, lsgan, minimax, ns, ragan, rsgan, wgan, wgan_gp"),
    ('unknown_model', [TOY, '--config.model.name=resnet'], "config.model.name='resnet' is not a known model; valid: dcgan, mlp"),
    ('unknown_toy_dataset', [TOY, '--config.data.name=spiral'], "spiral"),
    ('unknown_source', [TOY, '--config.data.source=web'], "config.data.source='web'"),
    ('n_critic_zero', [TOY, '--config.n_critic=0'], 'config.n_critic=0'),
    ('n_critic_with_shared_forward', [MNIST, '--config.n_critic=2'],
     'config.share_g_forward=True needs config.n_critic=1 (got 2): with several D steps there '
     'is no single fake batch to share; add --config.share_g_forward=False'),
    ('ema_one', [TOY, '--config.ema_decay=1.0'], 'config.ema_decay=1.0 must lie in [0, 1)'),
    ('ema_negative', [TOY, '--config.ema_decay=-0.1'], 'config.ema_decay=-0.1'),
    ('adam_beta', [TOY, '--config.optim.b1=1.5'], 'config.optim.b1=1.5 must lie in [0, 1)'),
    ('negative_seed', [TOY, '--config.seed=-1'], 'config.seed=-1'),
    ('zero_log_every', [TOY, '--config.log_every=0'], 'config.log_every=0'),
    ('batch_not_divisible', [TOY, '--config.batch_size=12', 'DEVICES=8'],
     'config.batch_size=12 is not divisible by the 8 devices; use a multiple of 8, e.g. 8 or 16'),
    ('num_processes_vs_slurm', [TOY, '--num_processes=4', '--process_id=0',
                                '--coordinator_address=localhost:1', 'ENV=SLURM_NTASKS=2'],
     '--num_processes=4 does not match SLURM_NTASKS=2 of this job; pass --num_processes=2'),
    ('process_id_out_of_range', [TOY, '--num_processes=2', '--process_id=2',
                                 '--coordinator_address=localhost:1'],
     '--process_id=2 must lie in [0, 2) for 2 processes'),
    ('num_devices_too_many', [TOY, '--config.num_devices=9', 'DEVICES=8'],
     'config.num_devices=9 is not available: this job has 8 devices; use 0 (all) or 1..8'),
    ('eval_without_classifier', [MNIST, '--config.data.source=idx', 'DATA=good',
                                 '--config.data.name=kmnist', '--config.eval_num=100'],
     "no feature classifier for dataset 'kmnist'"),
    ('eval_num_one', [MNIST, '--config.eval_num=1'], 'config.eval_num=1 must be 0 (off) or'),
    ('missing_config_file', ['--config=experiments/nope.py'], 'cannot load the config file'),
    ('unknown_variant', ['--config=experiments/toy2d.py:bogus'], "unknown variant 'bogus'"),
    ('changed_config', [TOY, 'WORKDIR=changed'], 'optim.g_lr: 0.123 -> 0.001'),
    ('missing_data_dir', [MNIST, '--config.data.source=idx', '--config.data.dir=/nonexistent/mnist'],
     '/nonexistent/mnist'),
    ('idx_bad_magic', [MNIST, '--config.data.source=idx', 'DATA=magic'], 'magic'),
    ('idx_truncated_gz', [MNIST, '--config.data.source=idx', 'DATA=truncated'], 'train-images-idx3-ubyte.gz'),
    ('idx_label_count_mismatch', [MNIST, '--config.data.source=idx', 'DATA=mismatch'], '20'),
    ('image_shape_model_cannot_take', [MNIST, '--config.data.source=idx', 'DATA=shape48'],
     'config.model.name=dcgan_concat_proj takes 28x28 images (the template) or square 32x32, '
     '64x64, 128x128, 256x256 ones; the data has shape (48, 48, 1)'),
    ('tfds_unknown_name', [MNIST, '--config.data.source=tfds', '--config.data.name=mnistt'], 'mnistt'),
    ('workdir_is_a_file', [TOY, 'WORKDIR=file'], 'is a file, not a directory'),
    ('workdir_not_writable', [TOY, 'WORKDIR=unwritable'], 'pass a writable directory'),
    ('sample_missing_checkpoint', ('sample', ['WORKDIR=changed', '--out=x.npz']), 'has no checkpoint'),
    ('sample_missing_run', ('sample', ['--out=x.npz']), 'holds no run'),
    ('sample_num_zero', ('sample', ['--num=0', '--out=x.npz']), '--num=0 must be >= 1'),
    ('sample_num_negative', ('sample', ['--num=-3', '--out=x.npz']), '--num=-3 must be >= 1'),
    ('sample_out_in_missing_dir', ('sample', ['--out=/nonexistent_dir/x.npz']), '/nonexistent_dir does not exist'),
    ('sample_unknown_flag', ('sample', ['--nmu=3']), 'nmu'),
    ('samples_npz_nan', ('sample', ['SAMPLES=nan', '--grid=g.png']), 'holds 1 NaN/Inf values'),
    ('samples_npz_wrong_shape', ('sample', ['SAMPLES=shape', '--grid=g.png']),
     'holds a uint8 array of shape [4, 784]; expected uint8 [N,H,W]'),
    ('samples_npz_wrong_dtype', ('sample', ['SAMPLES=dtype', '--grid=g.png']),
     'holds a int64 array of shape [4, 28, 28]'),
    ('samples_npz_out_of_range', ('sample', ['SAMPLES=range', '--grid=g.png']), 'holds floats in [3, 3]'),
    ('samples_npz_missing_key', ('sample', ['SAMPLES=key', '--grid=g.png']), "has no array 'samples'"),
    ('samples_not_an_npz', ('sample', ['SAMPLES=garbage', '--grid=g.png']), 'is not a readable .npz'),
    ('samples_missing_file', ('sample', ['--samples=/nonexistent/s.npz', '--grid=g.png']),
     '--samples=/nonexistent/s.npz does not exist'),
    # Issue #24: an independent check found these crashing or misleading.
    ('idx_zero_images', [MNIST, '--config.data.source=idx', 'DATA=empty'], 'hold zero images'),
    ('model_width_zero', [MNIST, '--config.model.ngf=0'], 'config.model.ngf=0 must be an integer >= 1'),
    ('seed_overflow', [TOY, '--config.seed=99999999999999999999'],
     'config.seed=99999999999999999999 must be an integer in [0, 2**63)'),
    ('config_syntax_error', ['CONFIG=config_syntax'], 'syntax_cfg.py, line 1: SyntaxError'),
    ('config_get_config_raises', ['CONFIG=config_raises'],
     'ValueError: boom in get_config ('),
    ('garbage_config_json', [TOY, 'WORKDIR=garbage'], 'config.json is not valid JSON'),
    ('sample_garbage_config_json', ('sample', ['WORKDIR=garbage', '--out=x.npz']),
     'config.json is not valid JSON'),
    ('sample_out_unwritable', ('sample', ['WORKDIR=trained', '--out=/proc/gan_jax_test.npz']),
     'cannot write /proc/gan_jax_test.npz'),
    ('sample_grid_is_a_directory', ('sample', ['WORKDIR=trained', '--grid=/tmp']),
     '--grid=/tmp is a directory; pass a file path ending in .png'),
    ('sample_out_is_a_directory', ('sample', ['WORKDIR=trained', '--out=/tmp']),
     '--out=/tmp is a directory; pass a file path ending in .npz'),
    ('sample_out_not_npz', ('sample', ['WORKDIR=trained', '--out=x.txt']),
     '--out=x.txt does not end in .npz'),
    ('launch_extra_positional', [TOY, 'extra_arg'], "unexpected arguments ['extra_arg']"),
    ('launch_empty_workdir', [TOY, 'WORKDIR=empty'], '--workdir is empty'),
    ('warmup_negative', [TOY, '--config.optim.warmup_steps=-5'],
     'config.optim.warmup_steps=-5 must be an integer >= 0'),
    ('g_lr_inf', [TOY, '--config.optim.g_lr=inf'], 'config.optim.g_lr=inf must be a finite'),
    ('d_lr_nan', [TOY, '--config.optim.d_lr=nan'], 'config.optim.d_lr=nan must be a finite'),
    ('penalty_weight_inf', [TOY, '--config.penalty_weight=inf'],
     'config.penalty_weight=inf must be a finite number'),
    ('data_dir_is_a_file', [MNIST, '--config.data.source=idx', 'DATA=afile'],
     'is a file, not a directory'),
    ('data_dir_of_pngs_default_source', [MNIST, 'DATA=pngs'], 'lacks train-images-idx3-ubyte'),
]


@pytest.mark.parametrize('case,args,match', CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_line_and_exit_2(case, args, match, data, tmp_path, request):
  tool, args = args if isinstance(args, tuple) else ('launch', args)
  env = subprocess_env()
  workdir = str(tmp_path / 'run')
  argv = []
  for a in args:
    if a.startswith('DEVICES='):
      env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={a[8:]}'
    elif a.startswith('ENV='):
      k, v = a[4:].split('=')
      env[k] = v
    elif a.startswith('DATA='):
      argv.append(f'--config.data.dir={data[a[5:]]}')
    elif a.startswith('SAMPLES='):
      argv.append(f'--samples={data["npz_" + a[8:]]}')
    elif a.startswith('CONFIG='):
      argv.append(f'--config={data[a[7:]]}')
    elif a == 'WORKDIR=trained':
      workdir = request.getfixturevalue('trained')
    elif a.startswith('WORKDIR='):
      workdir = {'changed': _changed_config_run, 'file': _file, 'garbage': _garbage_config_run,
                 'empty': lambda tmp: '',
                 'unwritable': _unwritable}[a[8:]](str(tmp_path))
    else:
      argv.append(a)
  before = {p: open(p, 'rb').read() for p in _files(tmp_path)}
  cmd = ['launch.py'] if tool == 'launch' else ['-m', 'gan_jax.sample']
  r = subprocess.run([sys.executable] + cmd + [f'--workdir={workdir}'] + argv, cwd=str(tmp_path)
                     if tool == 'sample' else REPO, env=env, text=True, capture_output=True,
                     timeout=300)
  lines = r.stderr.strip().splitlines()
  assert r.returncode == 2, r.stderr[-3000:]
  assert len(lines) == 1 and lines[0].startswith('error: '), r.stderr[-3000:]
  assert match in lines[0], lines[0]
  print(f'\nBAD-INPUT {case}: {lines[0]}')
  assert 'Traceback' not in r.stderr
  after = {p: open(p, 'rb').read() for p in _files(tmp_path)}
  assert after == before  # nothing written or overwritten


def _files(root):
  return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)


def test_no_hyphen_spelling_negates_only_existing_boolean_flags():
  """``--no-ema`` (as the docs spell it) is absl's ``--noema``; unknown names stay unknown."""
  from gan_jax import cli  # pylint: disable=g-import-not-at-top
  assert cli._negations(['prog', '--no-verbose', '--no-such-flag', '--no-verbose=1', '--verbose']) \
      == ['prog', '--noverbose', '--no-such-flag', '--no-verbose=1', '--verbose']


@needs_mnist
def test_evaluate_warns_when_the_file_holds_fewer_samples_than_num(tmp_path):
  """FD at N = 10 is not comparable with FD at N = 1000: say so on stderr (and still evaluate)."""
  path = str(tmp_path / 's10.npz')
  np.savez(path, samples=np.zeros((10, 28, 28), np.uint8))
  r = subprocess.run([sys.executable, '-m', 'gan_jax.evaluate', '--dataset=mnist',
                      f'--samples={path}', '--num=1000'], cwd=REPO,
                     env=subprocess_env(), text=True, capture_output=True, timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  warnings = [l for l in r.stderr.splitlines() if l.startswith('warning:')]
  assert len(warnings) == 1 and 'holds 10 samples, fewer than --num=1000' in warnings[0]
  assert 'not comparable' in warnings[0]
  assert json.loads(r.stdout.strip().splitlines()[-1])['num_fake'] == 10
