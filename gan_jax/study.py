"""Mode-collapse study: objectives x seeds on a 2-D mixture, with a table and one figure.

  python -m gan_jax.study --config=experiments/toy2d.py:grid \
      --losses=minimax,ns,wgan_gp,hinge,ns_r1_sharp --seeds=5 --out=runs/study_grid

Every seed of one objective trains at once: the state is stacked over seeds and the step is
``jax.vmap``-ed, one compiled program per objective. Each entry of ``--losses`` is a preset of
``PRESETS`` (an objective plus its usual regulariser and optimiser settings, which may also
change the number of steps) or any name in ``gan_jax.losses.LOSSES``.
Writes ``<out>/study.md`` (mean ± sd over seeds of modes covered, high-quality share and KL to
uniform, on ``--num_samples`` samples of the EMA generator), ``<out>/study.json`` and
``<out>/study.png`` (one row per objective, one column per seed).
"""

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from ml_collections import config_flags

from gan_jax import cli, config_base, errors, losses, run, steps
from gan_jax.evaluation.modes import mode_metrics

FLAGS = flags.FLAGS


def define_flags():
  """The CLI's flags (defined only when run as a command, so that importing this module for
  ``preset_config`` / ``run_preset`` defines none and cannot clash with other modules' flags)."""
  config_flags.DEFINE_config_file('config', 'experiments/toy2d.py:grid', 'Base toy2d config.',
                                  lock_config=True)
  flags.DEFINE_list('losses', ['minimax', 'ns', 'wgan_gp', 'hinge', 'ns_r1_sharp'],
                    'Presets or losses.')
  flags.DEFINE_integer('seeds', 5, 'Seeds per objective (seed = config.seed + i).')
  flags.DEFINE_integer('num_samples', 2500, 'Generated points per seed for the metrics.')
  flags.DEFINE_string('out', 'runs/study', 'Output directory.')


def half_steps(base):
  """Half the base config's train steps: with ``n_critic`` 5 that is still 2.5x its D updates,
  and a WGAN-GP train step (5 critic steps, each with a double backward) costs ~4x an NS one."""
  return max(1, base.num_steps // 2)


# Config overrides per preset: the objective and the regulariser/optimiser it is used with. A
# value may be a function of the base config (e.g. ``half_steps``), resolved by preset_config.
PRESETS = {
    'minimax': {'loss': 'minimax'},
    'ns': {'loss': 'ns'},
    # Gulrajani et al. (2017), alg. 1: lr 1e-4 for both nets, Adam (0.5, 0.9), 5 critic steps per
    # G step, lambda = 10.
    'wgan_gp': {'loss': 'wgan_gp', 'n_critic': 5, 'penalty_weight': 10.0, 'optim.g_lr': 1e-4,
                'optim.d_lr': 1e-4, 'optim.b1': 0.5, 'optim.b2': 0.9, 'num_steps': half_steps},
    'hinge': {'loss': 'hinge'},
    'ns_r1': {'loss': 'ns', 'penalty': 'r1', 'penalty_weight': 0.1},
    # A weak R1 (Mescheder et al., 2018) keeps every mode of the 5x5 grid while leaving D sharp
    # enough to pull G's points onto the modes: 25/25 modes and >= 92 % high-quality samples in
    # each of seeds 0..4 at the grid's 16000 steps (gamma 0.1: 88 % at 12000 steps, 0.01: 91 %).
    'ns_r1_sharp': {'loss': 'ns', 'penalty': 'r1', 'penalty_weight': 0.01},
    'ns_mbstd': {'loss': 'ns', 'model.minibatch_std': True},
    'ragan': {'loss': 'ragan'},
    'lsgan': {'loss': 'lsgan'},
}


def preset_overrides(base, name):
  """The config overrides of preset (or plain loss) ``name``, with callables applied to ``base``."""
  if name not in PRESETS and name not in losses.LOSSES:
    raise errors.UserError(f'--losses entry {name!r} is neither a preset ({", ".join(PRESETS)}) '
                           f'nor a loss ({", ".join(sorted(losses.LOSSES))})')
  return {k: v(base) if callable(v) else v for k, v in PRESETS.get(name, {'loss': name}).items()}


def preset_config(base, name):
  c = base.copy_and_resolve_references()
  c.unlock()
  for key, value in preset_overrides(base, name).items():
    node = c
    *path, leaf = key.split('.')
    for p in path:
      node = node[p]
    node[leaf] = value
  c.lock()
  return c


def run_preset(config, seeds: int, num_samples: int):
  """Trains ``seeds`` runs of ``config`` at once; returns (per-seed metrics, samples [S, N, 2])."""
  exp = run.Experiment(config)
  if len(exp.data_shape) != 1:
    raise errors.UserError(f'the study needs 2-D toy data (source toy2d), not {exp.data_shape}')
  arrays = exp.device_arrays()
  seed_keys = jnp.stack([jax.random.key_data(jax.random.key(config.seed + i)) for i in range(seeds)])

  def init(kd):
    return exp.create_state(jax.random.fold_in(jax.random.wrap_key_data(kd), steps.RNG_INIT))

  def one_step(state, kd):
    train_key = jax.random.fold_in(jax.random.wrap_key_data(kd), steps.RNG_TRAIN)
    return steps.train_step_on_data(state, arrays, train_key, exp.cfg, draw=exp.source.draw,
                                    batch_size=config.batch_size, data_shape=exp.data_shape)[0]

  chunk = 250

  @jax.jit
  def run_chunk(states):
    body = lambda _, s: jax.vmap(one_step)(s, seed_keys)
    return jax.lax.fori_loop(0, chunk, body, states)

  states = jax.jit(jax.vmap(init))(seed_keys)
  for _ in range(-(-config.num_steps // chunk)):
    states = run_chunk(states)
  z = jax.random.normal(jax.random.key(12345), (num_samples, config.model.latent_dim))
  samples = np.asarray(jax.jit(jax.vmap(lambda s: steps.generate(s, z)))(states))
  info = exp.source.info
  return [mode_metrics(s, info['centers'], info['std']) for s in samples], samples, info


def _mean_sd(values):
  v = np.asarray(values, np.float64)
  return f'{v.mean():.2f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.2f}'


def main(argv):
  del argv
  base = cli.config_flag(FLAGS)
  if FLAGS.seeds < 1:
    raise errors.UserError(f'--seeds={FLAGS.seeds} must be >= 1')
  configs = {name: preset_config(base, name) for name in FLAGS.losses}
  for c in configs.values():
    config_base.validate_config(c)
  os.makedirs(FLAGS.out, exist_ok=True)
  results, all_samples, info = {}, {}, None
  for name, c in configs.items():
    t = time.time()
    per_seed, samples, info = run_preset(c, FLAGS.seeds, FLAGS.num_samples)
    results[name] = {'per_seed': per_seed, 'wall_s': round(time.time() - t, 1),
                     'num_steps': c.num_steps, 'n_critic': c.n_critic,
                     'overrides': preset_overrides(base, name)}
    all_samples[name] = samples
    print(f'{name:10s} modes {[m["modes_covered"] for m in per_seed]}  high-quality '
          f'{[round(m["high_quality"], 3) for m in per_seed]}  ({time.time() - t:.0f}s)', flush=True)
  k = info['centers'].shape[0]
  lines = [f'Mode-collapse study on {base.data.name} ({k} modes), {base.num_steps} steps unless '
           f'the table says otherwise, batch {base.batch_size}, {FLAGS.seeds} seeds, '
           f'{FLAGS.num_samples} samples per seed (EMA G).',
           '', f'| objective | steps (D steps) | modes covered (of {k}) | high-quality % | '
           f'KL to uniform | all modes and ≥ 90 % HQ | wall s |', '|---|---|---|---|---|---|---|']
  for name, r in results.items():
    ps = r['per_seed']
    ok = sum(m['modes_covered'] == k and m['high_quality'] >= 0.9 for m in ps)
    lines.append(f'| {name} | {r["num_steps"]} ({r["num_steps"] * r["n_critic"]}) | '
                 f'{_mean_sd([m["modes_covered"] for m in ps])} | '
                 f'{_mean_sd([100 * m["high_quality"] for m in ps])} | '
                 f'{_mean_sd([m["kl_uniform"] for m in ps])} | {ok}/{len(ps)} | {r["wall_s"]} |')
  table = '\n'.join(lines)
  print(table)
  with open(os.path.join(FLAGS.out, 'study.md'), 'w') as f:
    f.write(table + '\n')
  with open(os.path.join(FLAGS.out, 'study.json'), 'w') as f:
    json.dump({'config': json.loads(json.dumps(base.to_dict(), default=str)), 'results': results},
              f, indent=1)
  _figure(all_samples, info, os.path.join(FLAGS.out, 'study.png'))
  print(f'wrote {FLAGS.out}/study.md, study.json, study.png')


def _figure(all_samples, info, path):
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  rows, cols = len(all_samples), next(iter(all_samples.values())).shape[0]
  fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2 * rows), squeeze=False)
  lim = 1.25 * float(np.abs(info['centers']).max()) + 0.5
  for r, (name, samples) in enumerate(all_samples.items()):
    for s in range(cols):
      ax = axes[r][s]
      ax.scatter(info['centers'][:, 0], info['centers'][:, 1], s=12, c='0.6', marker='x')
      ax.scatter(samples[s, :, 0], samples[s, :, 1], s=1, c='tab:red', alpha=0.4)
      m = mode_metrics(samples[s], info['centers'], info['std'])
      ax.set_title(f'{m["modes_covered"]}/{m["num_modes"]}, {100 * m["high_quality"]:.0f}% HQ',
                   fontsize=7)
      ax.set_xlim(-lim, lim)
      ax.set_ylim(-lim, lim)
      ax.set_xticks([])
      ax.set_yticks([])
      if s == 0:
        ax.set_ylabel(name, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


if __name__ == '__main__':
  define_flags()
  cli.run(main)
