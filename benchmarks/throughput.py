"""Throughput of our train step against the PyTorch peer, same net, same batch, same run.

  python benchmarks/throughput.py                 # DCGAN, batch 64 and 256
  python benchmarks/throughput.py --mlp           # the MLP GAN of Goodfellow et al. (2014)
  python benchmarks/throughput.py --quick         # fewer steps and repeats (< 5 min here)
  python benchmarks/throughput.py --kernels flax,xla_cpu   # a row per config.model.kernels

Ours and the peer (shared/bench/peer_dcgan_torch.py, PyTorch, --threads = our cores) run back
to back, alternating, ``--repeats`` times; the median is reported. Our DCGAN is
experiments/mnist_dcgan_classic.py (the peer's nets, batch, optimizer and one-G-forward
algorithm, fixed whatever the default experiments/mnist.py becomes); ``--mlp`` times
experiments/mnist_mlp.py:paper. Ours is the full compiled train step of launch.py (data drawn on
device, D step, G step, EMA), timed after compilation, with no per-step host sync. The peer
times its own loop after 20 warm-up steps.

``--kernels`` (default 'auto', the experiment's setting) takes a comma list of
``config.model.kernels`` values (gan_jax/kernels: 'flax', 'xla_cpu', 'auto'); each gets its own
row, timed in the same alternation against the same peer runs.

Prints a table and one JSON line per configuration (prefixed ``JSON``) with model, config,
kernels, batch_size, ours/peer steps/s, ratio, compile_s, flops_per_step (XLA cost analysis of
the compiled step), achieved FLOP/s and the fraction of the matmul roofline measured in the same
run.
"""

import argparse
import ast
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# $GAN_JAX_COMMIT first: a copy of the tree sent to another machine can carry a stale .git.
COMMIT = os.environ.get('GAN_JAX_COMMIT') or subprocess.run(
    ['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, capture_output=True,
    text=True).stdout.strip() or 'unknown'
sys.path.insert(0, REPO)

from gan_jax import allocator  # noqa: E402

# Ours and the peer (a child process, so it inherits LD_PRELOAD) both run under tcmalloc where
# it is installed: the same allocator for both. GAN_JAX_TCMALLOC=0 measures glibc's malloc.
allocator.reexec_with_tcmalloc()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from gan_jax import run  # noqa: E402

PEER = os.path.join(os.path.dirname(REPO), 'shared', 'bench', 'peer_dcgan_torch.py')
PEER_WARMUP = 20
OURS_WARMUP = 2  # untimed steps of ours before each timed repeat
# MNIST's IDX folder: $GAN_JAX_DATA_DIR_MNIST, else $GAN_JAX_DATA_DIR/mnist, else the shared one.
DATA_DIR = os.environ.get('GAN_JAX_DATA_DIR_MNIST') or os.path.join(
    os.environ.get('GAN_JAX_DATA_DIR', os.path.join(os.path.dirname(REPO), 'shared', 'datasets')),
    'mnist')


def config_name(mlp: bool) -> str:
  """The experiment the benchmarks time: the classic MNIST DCGAN, or with ``mlp`` the paper's MLP
  GAN as the peer trains it (experiments/mnist_mlp.py:paper).

  Not the defaults of experiments/mnist.py and mnist_mlp.py: their recipes changed (issue #22),
  while the speed comparison needs the peer's nets, batch and algorithm, which these keep."""
  return 'mnist_mlp:paper' if mlp else 'mnist_dcgan_classic'


def load_config(name):
  """``experiments/<file>.py``'s config; ``name`` is ``file`` or ``file:variant``."""
  import importlib.util
  name, _, variant = name.partition(':')
  path = os.path.join(REPO, 'experiments', f'{name}.py')
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def matmul_roofline(dtype, n=2048, reps=5):
  """FLOP/s of a large square matmul: the practical peak of this machine for dense work.

  bf16 is measured as bf16 operands with float32 accumulation and output
  (``preferred_element_type``): the form of the bf16 units (AVX512-BF16, AMX, tensor cores), and
  the one ``model.matmul_dtype=bfloat16`` uses. On XLA:CPU a bf16-output dot is far slower.
  """
  a = jax.random.normal(jax.random.key(0), (n, n)).astype(dtype)
  f = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
  f(a, a).block_until_ready()
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    f(a, a).block_until_ready()
    times.append(time.perf_counter() - t)
  return 2 * n ** 3 / min(times)


def _flops(cost):
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float((cost or {}).get('flops', float('nan')))


class Ours:
  def __init__(self, config_name, batch_size, data_dir, overrides=(), run_step=True):
    c = load_config(config_name)
    c.batch_size = batch_size
    c.data.dir = data_dir
    for item in overrides:  # 'key=value', e.g. share_g_forward=True
      key, value = item.split('=', 1)
      node = c
      *path, leaf = key.split('.')
      for part in path:
        node = node[part]
      try:
        node[leaf] = ast.literal_eval(value)
      except (ValueError, SyntaxError):  # a bare word: compute_dtype=bfloat16
        node[leaf] = value
    self.exp = run.Experiment(c)
    self.arrays = self.exp.device_arrays()
    self.state, self.health = self.exp.init_state(), self.exp.new_health()
    t = time.perf_counter()
    lowered = self.exp.step_fn.lower(self.state, self.arrays, self.health)
    # FLOPs of the step as written (XLA's analysis of the lowered HLO): the same on every
    # backend. The compiled module's count is kept too, but on GPU it leaves out the cuDNN
    # convolutions (custom calls), so it undercounts a DCGAN step several times over.
    self.flops = _flops(lowered.cost_analysis())
    self.flops_source = 'lowered'
    if not run_step:
      return
    compiled = lowered.compile()
    self.compile_s = time.perf_counter() - t
    self.flops_compiled = _flops(compiled.cost_analysis())
    self.state, m, self.health = self.exp.step_fn(self.state, self.arrays, self.health)  # warm-up
    jax.block_until_ready(m)

  def steps_per_s(self, n):
    t = time.perf_counter()
    for _ in range(n):
      self.state, m, self.health = self.exp.step_fn(self.state, self.arrays, self.health)
    jax.block_until_ready(m)
    return n / (time.perf_counter() - t)


def flops_on_cpu(mlp, sizes, data_dir, overrides):
  """{batch: FLOPs per step} from the same step lowered for the CPU, in a child process
  (``JAX_PLATFORMS=cpu``). Where the accelerator's plugin has no cost analysis of the lowered
  module (jax 0.11.2 with CUDA 13 gives none), this is the model's count: lowering does not
  depend on the backend's kernels."""
  cmd = [sys.executable, os.path.abspath(__file__), '--flops-only', '--no-peer', '--data-dir',
         data_dir, '--batch-sizes', ','.join(map(str, sizes))] + (['--mlp'] if mlp else [])
  for item in overrides:
    cmd += ['--set', item]
  r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  if r.returncode:
    print(f'warning: the FLOP count on CPU failed: {r.stderr[-500:]}', file=sys.stderr)
    return {}
  line = [l for l in r.stdout.splitlines() if l.startswith('FLOPS ')][-1]
  return {int(k): v for k, v in json.loads(line[6:]).items()}


def peer_steps_per_s(arch, batch_size, n, threads):
  with tempfile.TemporaryDirectory() as tmp:
    r = subprocess.run(
        [sys.executable, PEER, '--arch', arch, '--steps', str(PEER_WARMUP + n), '--batch-size',
         str(batch_size), '--threads', str(threads), '--n-samples', '10', '--log-every', '100000',
         '--out', os.path.join(tmp, 'peer.npz')], capture_output=True, text=True)
  if r.returncode:
    raise RuntimeError(f'peer failed: {r.stderr[-2000:]}')
  line = [l for l in r.stdout.splitlines() if l.startswith('{')][-1]
  return json.loads(line)['steps_per_s']


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument('--mlp', action='store_true', help='benchmark the MLP GAN instead of the DCGAN')
  ap.add_argument('--batch-sizes', default=None, help='comma list (default: 64,256; --mlp: 64)')
  ap.add_argument('--repeats', type=int, default=3)
  ap.add_argument('--steps', type=int, default=None, help='timed steps per repeat at batch 64')
  ap.add_argument('--quick', action='store_true')
  ap.add_argument('--no-peer', action='store_true')
  ap.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                  help='config override for our step, e.g. --set share_g_forward=True')
  ap.add_argument('--kernels', default='auto',
                  help="comma list of config.model.kernels values, a row each (auto | flax | "
                       "xla_cpu), e.g. --kernels flax,xla_cpu")
  ap.add_argument('--platform', default=None, help='informational: cpu | gpu | tpu')
  ap.add_argument('--data-dir', default=DATA_DIR)
  ap.add_argument('--flops-only', action='store_true',
                  help='print FLOPs per step of each batch size (lowering only) and exit')
  a = ap.parse_args()
  if a.platform and jax.default_backend() != a.platform:
    sys.exit(f'error: --platform={a.platform} but JAX runs on {jax.default_backend()}')
  arch = 'mlp' if a.mlp else 'dcgan'
  sizes = [int(s) for s in (a.batch_sizes or ('64' if a.mlp else '64,256')).split(',')]
  base_steps = a.steps or (10 if a.quick else 30) * (10 if a.mlp else 1)
  threads = os.cpu_count() or 1
  if a.flops_only:
    flops = {bs: Ours(config_name(a.mlp), bs, a.data_dir, a.set, run_step=False).flops for bs in sizes}
    print('FLOPS ' + json.dumps(flops))
    return
  device = jax.devices()[0]
  malloc = os.environ.get('LD_PRELOAD', '') or 'glibc malloc'
  print(f'device: {device.platform} {getattr(device, "device_kind", "")} x{jax.device_count()}, '
        f'host cores {threads}, jax {jax.__version__}, allocator {malloc}')
  # A 2048^2 matmul saturates a CPU; an accelerator needs a larger one to reach its peak.
  n_roof = 2048 if device.platform == 'cpu' else 8192
  roof32 = matmul_roofline(jnp.float32, n_roof)
  roof16 = matmul_roofline(jnp.bfloat16, n_roof)
  print(f'roofline ({n_roof}^2 matmul): f32 {roof32 / 1e9:.1f} GFLOP/s, bf16 {roof16 / 1e9:.1f} '
        'GFLOP/s')
  kernel_sets = [k.strip() for k in a.kernels.split(',') if k.strip()]
  results = []
  for bs in sizes:
    n = max(3, base_steps * 64 // bs)
    runs = {}
    for kern in kernel_sets:
      overrides = list(a.set) + [f'model.kernels={kern}']
      ours = Ours(config_name(a.mlp), bs, a.data_dir, overrides)
      if ours.flops != ours.flops and device.platform != 'cpu':  # nan: no count from this backend
        ours.flops = flops_on_cpu(a.mlp, [bs], a.data_dir, overrides).get(bs, float('nan'))
        ours.flops_source = 'lowered for cpu'
      runs[kern] = (ours, overrides, [])
    # The bf16 roofline where the step's big matmuls take bf16 operands: by compute_dtype or by
    # model.matmul_dtype, set by --set or by the experiment's own defaults (mnist_mlp.py).
    c = next(iter(runs.values()))[0].exp.config
    bf16 = 'bfloat16' in (c.get('compute_dtype', 'float32'), c.model.get('matmul_dtype', 'float32'))
    # The host's speed drifts (shared machine): measure the peak again next to this row and keep
    # the highest seen, so the fraction is never flattered by a slow roofline run.
    roof32 = max(roof32, matmul_roofline(jnp.float32, n_roof))
    roof16 = max(roof16, matmul_roofline(jnp.bfloat16, n_roof))
    roof = roof16 if bf16 else roof32
    peer_runs = []
    for _ in range(a.repeats):
      for ours, _, ours_runs in runs.values():
        # Untimed steps first, as the peer leaves out its first PEER_WARMUP: right after the
        # peer's process our first step pays for caches and pages the peer took over.
        ours.steps_per_s(OURS_WARMUP)
        ours_runs.append(ours.steps_per_s(n))
      if not a.no_peer:
        peer_runs.append(peer_steps_per_s(arch, bs, n, threads))
    p = statistics.median(peer_runs) if peer_runs else float('nan')
    for kern, (ours, overrides, ours_runs) in runs.items():
      o = statistics.median(ours_runs)
      achieved = ours.flops * o
      row = dict(model=arch, config=config_name(a.mlp), kernels=kern, batch_size=bs,
                 platform=device.platform,
                 device=getattr(device, 'device_kind', ''), ours_steps_per_s=round(o, 3),
                 peer_steps_per_s=round(p, 3), ratio=round(o / p, 3),
                 ours_images_per_s=round(o * bs, 1), peer_images_per_s=round(p * bs, 1),
                 compile_s=round(ours.compile_s, 2), flops_per_step=ours.flops,
                 flops_source=ours.flops_source, flops_compiled=ours.flops_compiled,
                 achieved_gflops=round(achieved / 1e9, 2),
                 roofline_gflops_f32=round(roof32 / 1e9, 1),
                 roofline_gflops_bf16=round(roof16 / 1e9, 1),
                 roofline_fraction=round(achieved / roof, 3),
                 roofline_dtype='bf16' if bf16 else 'f32',
                 peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                 allocator=malloc, overrides=overrides, commit=COMMIT, timed_steps=n,
                 repeats=a.repeats, ours_runs=[round(x, 3) for x in ours_runs],
                 peer_runs=peer_runs)
      results.append(row)
      print(f'{arch} batch {bs:4d} kernels {kern:7s}: ours {o:7.2f} steps/s ({o * bs:8.1f} img/s)  '
            f'peer {p:7.2f} steps/s ({p * bs:8.1f} img/s)  ratio {o / p:5.2f}  compile '
            f'{ours.compile_s:5.1f}s  {ours.flops / 1e9:6.2f} GFLOP/step  {achieved / 1e9:6.1f} '
            f'GFLOP/s ({achieved / roof:5.1%} of {"bf16" if bf16 else "f32"} roofline)  peak RSS '
            f'{row["peak_rss_mb"]:.0f} MB', flush=True)
  for row in results:
    print('JSON ' + json.dumps(row))


if __name__ == '__main__':
  main()
