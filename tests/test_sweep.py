"""``python -m gan_jax.sweep``: grid parsing, the ranked table, the curves, resuming, bad grids."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, subprocess_env, write_idx_fixture
from gan_jax import config_base, sweep
from gan_jax.errors import UserError

# A tiny MLP GAN on an IDX fixture (no real MNIST needed), with an in-training FD at steps 3
# and 6; the persistent compilation cache lets the runs after the first skip most compiling.
TINY = ['--config=experiments/mnist_mlp.py:smoke', '--config.data.source=idx',
        '--config.batch_size=16', '--config.model.g_hidden=(32,32)',
        '--config.model.d_hidden=(32,32)', '--config.eval_num=32', '--num=64']


def _cli(module, args, cache=None):
  extra = {} if cache is None else {'JAX_COMPILATION_CACHE_DIR': cache,
                                    'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS': '0'}
  return subprocess.run([sys.executable, '-m', module] + args, cwd=REPO, text=True,
                        env=subprocess_env(**extra), capture_output=True, timeout=600)


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return write_idx_fixture(str(tmp_path_factory.mktemp('idx')))


def test_grid_values_take_the_type_of_the_config_field():
  c = config_base.base_config()
  axes = sweep.parse_grid(' optim.g_lr=1e-4, 2e-4 ; n_critic=1,2;feature_matching=true,False;'
                          'loss=ns,rsgan', c)
  assert axes == [('optim.g_lr', [('1e-4', 1e-4), ('2e-4', 2e-4)]),
                  ('n_critic', [('1', 1), ('2', 2)]),
                  ('feature_matching', [('true', True), ('False', False)]),
                  ('loss', [('ns', 'ns'), ('rsgan', 'rsgan')])]
  assert all(type(v) is t for (_, vals), t in zip(axes, (float, int, bool, str)) for _, v in vals)
  points = sweep.grid_points(axes)
  assert len(points) == 16 and points[0]['point'] == \
      'optim.g_lr=1e-4,n_critic=1,feature_matching=true,loss=ns'
  assert points[1]['overrides'] == {'optim.g_lr': 1e-4, 'n_critic': 1, 'feature_matching': True,
                                    'loss': 'rsgan'}  # the last axis varies fastest
  cfg = sweep.point_config(c, points[1]['overrides'], 0)
  assert cfg.optim.g_lr == 1e-4 and cfg.loss == 'rsgan' and c.loss == 'ns'  # base untouched
  assert sweep.dir_name('data.dir=/a b') == 'data.dir=_a_b'
  assert len(sweep.dir_name('x=' + 'y' * 300)) == 119


@pytest.mark.parametrize('grid,message', [
    ('optim.glr=1e-4', "the config has no key 'optim.glr'; did you mean 'optim.g_lr'?"),
    ('optim.zzzzzz=1', "the config has no key 'optim.zzzzzz'; keys under optim: b1, b2,"),
    ('g_lr=1', "the config has no key 'g_lr'; did you mean 'optim.g_lr'?"),
    ('loss.x=1', "the config has no key 'loss.x': config.loss is a value, not a group"),
    ('optim=1', "'optim' is a group of keys (b1, b2, d_lr, decay_start, g_lr, schedule, warmup_steps)"),
    ('n_critic=1,2.5', "n_critic='2.5' does not parse as int (config.n_critic is 1)"),
    ('ema_decay=0.9,0.90', 'ema_decay=0.90 repeats a value'),
    ('loss=ns,', "axis 'loss=ns,' has an empty value"),
    ('loss', "axis 'loss' is not key=v1,v2"),
    ('loss=ns;loss=hinge', "key 'loss' has two axes"),
    ('data.mirrors=a', 'the grid takes keys whose value is a bool, int, float or str'),
    (' ; ', '--grid is empty'),
])
def test_bad_grids_name_the_axis_and_what_is_valid(grid, message):
  with pytest.raises(UserError) as e:
    sweep.parse_grid(grid, config_base.base_config())
  assert message in str(e.value) and '\n' not in str(e.value)


def test_rank_puts_the_lowest_fd_first_and_fully_diverged_points_last():
  def row(name, fd):
    return {'point': name, 'summary': {} if fd is None else {'fd': {'mean': fd, 'sd': 0.0}}}
  key, rows = sweep.rank([row('a', 9.0), row('gone', None), row('b', 3.0)])
  assert key == 'fd' and [r['point'] for r in rows] == ['b', 'a', 'gone']
  key, _ = sweep.rank([{'point': 't', 'summary': {'kl_uniform': {'mean': 0.1, 'sd': 0}}}])
  assert key == 'kl_uniform'
  curves = [[[1.0, 3, 10.0], [2.0, 6, 8.0]], [[3.0, 3, 20.0], [5.0, 6, 10.0], [7.0, 9, 1.0]]]
  assert sweep.mean_curve(curves) == [[2.0, 3, 15.0], [3.5, 6, 9.0]]  # steps both seeds have


def test_reproduce_command_is_the_seeds_tool_with_the_points_overrides():
  argv = ['--config=experiments/mnist.py', '--config.batch_size', '32', '--config.loss=hinge',
          '--grid=loss=ns,rsgan', '--config.data.dir=/a b', '--seeds=2']
  over = sweep._user_overrides(argv, {'loss'})  # pylint: disable=protected-access
  assert over == ['--config.batch_size=32', '--config.data.dir=/a b']  # the grid sets loss
  point = {'dir': 'loss=rsgan', 'overrides': {'loss': 'rsgan'}}
  args = {'config': 'experiments/mnist.py', 'overrides': over, 'seeds': 2, 'num': 10000,
          'root': 'runs/s', 'budget_s': 600.0}
  assert sweep.reproduce_command(point, args) == (
      "python -m gan_jax.seeds --config=experiments/mnist.py --config.batch_size=32 "
      "'--config.data.dir=/a b' --config.loss=rsgan --config.time_budget_s=600 --seeds=2 "
      "--num=10000 --root=runs/s_repro/loss=rsgan")


def test_tb_curve_counts_time_across_launches_without_the_gap(tmp_path):
  from tensorboardX.proto import event_pb2, summary_pb2
  from tensorboardX.record_writer import RecordWriter
  os.makedirs(tmp_path / 'tb')
  # Two launches 500 s apart (the second resumed at step 4, logging it again): 10 s of running
  # each, and the 490 s between them idle.
  for launch, (t0, steps) in enumerate(((1000.0, [2, 4]), (1500.0, [4, 6]))):
    w = RecordWriter(str(tmp_path / 'tb' / f'events.out.tfevents.{launch}'))
    w.write(event_pb2.Event(wall_time=t0, file_version='brain.Event:2').SerializeToString())
    for s in steps:
      value = summary_pb2.Summary.Value(tag='eval/fd', simple_value=10.0 * s + launch)
      w.write(event_pb2.Event(wall_time=t0 + s, step=s, summary=summary_pb2.Summary(
          value=[value])).SerializeToString())
    w.write(event_pb2.Event(wall_time=t0 + 10).SerializeToString())
    w.close()
  assert sweep.tb_curve(str(tmp_path), 'eval/fd') == [[2.0, 2, 20.0], [14.0, 4, 41.0],
                                                      [16.0, 6, 61.0]]


@pytest.mark.slow
def test_two_points_two_seeds_give_a_ranked_table_of_their_runs(tmp_path, data_dir):
  root, cache = str(tmp_path / 'sweep'), str(tmp_path / 'jax_cache')
  # The worse learning rate first, so that the table's order is the sweep's doing.
  base = TINY + [f'--config.data.dir={data_dir}', "--grid=optim.g_lr=1e-2,1e-4", f'--root={root}']
  r = _cli('gan_jax.sweep', base + ['--seeds=1'], cache)  # seed 0 of each point
  assert r.returncode == 0, r.stderr[-3000:]
  r = _cli('gan_jax.sweep', base + ['--seeds=2'], cache)  # adds seed 1, keeps seed 0
  assert r.returncode == 0, r.stderr[-3000:]
  assert r.stdout.count('ended before (num_steps') == 2, r.stdout
  assert '[2/4] optim.g_lr=1e-2 seed 1: training into' in r.stdout
  assert '[4/4] optim.g_lr=1e-4 seed 1: 6 steps in' in r.stdout
  last = json.loads(r.stdout.strip().splitlines()[-1])
  assert last['sweep'] == os.path.join(root, 'sweep.json') and last['rank_key'] == 'fd'
  out = json.load(open(last['sweep']))
  points = out['points']
  means = [p['summary']['fd']['mean'] for p in points]
  assert sorted(p['point'] for p in points) == ['optim.g_lr=1e-2', 'optim.g_lr=1e-4']
  assert means == sorted(means)
  for p in points:
    fds = [p['per_seed'][s]['fd'] for s in ('0', '1')]
    assert p['summary']['fd']['mean'] == pytest.approx(np.mean(fds))
    assert p['summary']['fd']['sd'] == pytest.approx(np.std(fds, ddof=1))
    assert all(p['per_seed'][s]['step'] == 6 and p['per_seed'][s]['train_wall_s'] > 0
               for s in ('0', '1'))
    assert '--config.optim.g_lr=' in p['command'] and 'gan_jax.seeds' in p['command']
  # sweep.md: one row per point, in the JSON's order, with its FD mean.
  rows = [l for l in open(os.path.join(root, 'sweep.md')) if l.startswith('| 1 ') or
          l.startswith('| 2 ')]
  assert [l.split(' | ')[1] for l in rows] == [p['point'] for p in points]
  assert [float(l.split(' | ')[2].split(' ± ')[0]) for l in rows] == \
      pytest.approx(means, rel=1e-3)
  assert os.path.getsize(os.path.join(root, 'sweep_fd_vs_time.png')) > 10_000
  # The numbers are those of the runs: the best point's seed 1 evaluated on its own...
  best = os.path.join(root, points[0]['dir'], 'seed1')
  e = _cli('gan_jax.evaluate', [f'--workdir={best}', '--num=64'])
  assert e.returncode == 0, e.stderr[-3000:]
  assert json.loads(e.stdout.strip().splitlines()[-1])['fd'] == \
      pytest.approx(points[0]['per_seed']['1']['fd'], rel=1e-6)
  # ...and its in-training curve is the FD that training logged, at wall times that increase.
  logged = [json.loads(l) for l in open(os.path.join(best, 'metrics.jsonl'))]
  curve = points[0]['curves']['1']
  assert [c[1] for c in curve] == [3, 6]
  assert [c[2] for c in curve] == pytest.approx([m['eval/fd'] for m in logged if 'eval/fd' in m])
  assert 0 < curve[0][0] < curve[1][0]


@pytest.mark.slow
@pytest.mark.skipif(sweep.BUDGET_KEY not in config_base.base_config(),
                    reason=f'config.{sweep.BUDGET_KEY} (the time budget of train.py) not there yet')
def test_a_budget_ends_each_run_and_the_run_is_not_resumed(tmp_path, data_dir):
  root = str(tmp_path / 'sweep')
  args = TINY + [f'--config.data.dir={data_dir}', '--grid=loss=ns', f'--root={root}',
                 '--budget_min=0.1', '--config.num_steps=10000000',
                 '--config.checkpoint_every=1000000', '--config.eval_every=1000000']
  r = _cli('gan_jax.sweep', args)
  assert r.returncode == 0, r.stderr[-3000:]
  marker = json.load(open(os.path.join(root, 'loss=ns', 'seed0', sweep.MARKER)))
  assert marker['stopped_by'] == 'budget' and 0 < marker['steps'] < 10_000_000
  assert marker['train_wall_s'] >= 6
  r = _cli('gan_jax.sweep', args)
  assert r.returncode == 0 and 'ended before (budget' in r.stdout, r.stderr[-3000:]


def test_bad_grid_on_the_command_line_is_one_line_and_exit_2():
  r = _cli('gan_jax.sweep', ['--config=experiments/toy2d.py:smoke', '--grid=optim.glr=1e-4'])
  assert r.returncode == 2
  assert r.stderr.strip() == ("error: --grid: the config has no key 'optim.glr'; did you mean "
                              "'optim.g_lr'?")
  if sweep.BUDGET_KEY not in config_base.base_config():
    r = _cli('gan_jax.sweep', ['--config=experiments/toy2d.py:smoke', '--grid=loss=ns',
                               '--budget_min=10'])
    assert r.returncode == 2 and r.stderr.strip().startswith(
        f'error: --budget_min=10 needs config.{sweep.BUDGET_KEY}'), r.stderr
