"""Images/s of the streaming folder pipeline against the train step's, at 64, 128 and 256 px.

  python benchmarks/input_pipeline.py                       # 64,128,256 px; 0, 1, 2 workers
  python benchmarks/input_pipeline.py --resolutions 64 --workers 2 --no-step

The pipeline is the one a streamed run reads (gan_jax/data/stream.py over
gan_jax/data/folder.py): JPEG decode, centered square crop, antialiased bicubic resize to R,
random flip, batch of 64, through grain worker processes (0 = in the main process). Its input is
a folder of ``--num_images`` JPEGs (quality 90) of side ``--source_scale`` x R, written to a
temporary folder first: photos are usually bigger than the training resolution (CelebA 178x218
for 64 px, FFHQ 1024 for 256 px). Timed after two warm-up batches (worker start-up).

The train step is the compiled step of launch.py (the DCGAN scaled to R, experiments/folder.py,
batch ``--step_batch``, data on the device) on this machine's CPU, timed after compilation; its FLOPs are
XLA's cost analysis of the lowered step. ``--gpu_tflops`` (default: the bf16 matmul roofline
measured on an H100 in benchmarks/README.md) and ``--gpu_efficiency`` turn the FLOPs into a
paper estimate of a GPU's images/s, and so of how many hosts' pipelines one GPU consumes.

Prints a table and one JSON line per measurement (prefixed ``JSON``).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

COMMIT = os.environ.get('GAN_JAX_COMMIT') or subprocess.run(
    ['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, capture_output=True,
    text=True).stdout.strip() or 'unknown'


def write_photos(directory, n, side, seed=0):
  """``n`` JPEGs of ``side`` x ``side``: smooth random colour fields with some edges, so that the
  JPEG sizes and decode costs resemble photos rather than noise or flat colour."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.RandomState(seed)
  for i in range(n):
    small = rng.randint(0, 256, (8, 8, 3), np.uint8)
    img = Image.fromarray(small).resize((side, side), Image.Resampling.BICUBIC)
    arr = np.asarray(img).copy()
    arr[rng.randint(side):, rng.randint(side):] //= 2
    Image.fromarray(arr).save(os.path.join(directory, f'{i:05d}.jpg'), quality=90)


def time_pipeline(directory, resolution, workers, batch, batches):
  from gan_jax.data import folder, stream  # pylint: disable=g-import-not-at-top
  records = folder.FolderRecords(directory, resolution, channels=3)
  elements = stream.element_dataset(records, seed=0, global_batch=batch, flip=True)
  local = stream.LocalBatches(elements, batch, workers=workers, prefetch=batch)
  for _ in range(2):
    local.next()
  t0 = time.perf_counter()
  for _ in range(batches):
    out = local.next()
  seconds = time.perf_counter() - t0
  local.close()
  assert out['image'].shape == (batch, resolution, resolution, 3)
  return batches * batch / seconds


def time_step(resolution, batch, steps):
  """(images/s, GFLOP per image) of the compiled train step at ``resolution`` on this CPU."""
  import jax  # pylint: disable=g-import-not-at-top
  from gan_jax import run  # pylint: disable=g-import-not-at-top
  from experiments import folder as folder_config  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'images.npy')
    np.save(path, np.random.RandomState(0).randint(0, 256, (256, resolution, resolution, 3),
                                                   np.uint8))
    c = folder_config.get_config()
    c.data.source, c.data.path, c.data.pipeline = 'npz', path, 'device'
    c.data.resolution = resolution
    c.batch_size = batch
    c.num_devices = 1
    exp = run.Experiment(c)
    state, arrays, health = exp.init_state(), exp.device_arrays(), exp.new_health()
    lowered = exp.step_fn.lower(state, arrays, health)
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float((cost or {}).get('flops', float('nan')))
    step = lowered.compile()
    state, _, health = step(state, arrays, health)
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    for _ in range(steps):
      state, _, health = step(state, arrays, health)
    jax.block_until_ready(state)
    seconds = time.perf_counter() - t0
  return steps * batch / seconds, flops / batch / 1e9


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--resolutions', default='64,128,256')
  p.add_argument('--workers', default='0,1,2')
  p.add_argument('--num_images', type=int, default=320)
  p.add_argument('--source_scale', type=float, default=2.0)
  p.add_argument('--batch', type=int, default=64)
  p.add_argument('--batches', type=int, default=4)
  p.add_argument('--step_steps', type=int, default=2)
  p.add_argument('--step_batch', type=int, default=16,
                 help='batch of the timed train step (small: a 256 px step is slow on a CPU)')
  p.add_argument('--no-step', dest='step', action='store_false')
  p.add_argument('--gpu_tflops', type=float, default=618.0,
                 help='bf16 matmul roofline of the GPU (H100, benchmarks/README.md: 618-722)')
  p.add_argument('--gpu_efficiency', type=float, default=0.15,
                 help='fraction of the roofline a GAN step reaches (DCGAN, batch 1024: 17 %%)')
  args = p.parse_args()
  resolutions = [int(r) for r in args.resolutions.split(',')]
  workers = [int(w) for w in args.workers.split(',')]
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for res in resolutions:
      directory = os.path.join(tmp, str(res))
      t = time.perf_counter()
      write_photos(directory, args.num_images, int(res * args.source_scale))
      print(f'{res} px: wrote {args.num_images} JPEGs of {int(res * args.source_scale)} px in '
            f'{time.perf_counter() - t:.1f}s', flush=True)
      row = {'resolution': res, 'batch': args.batch, 'commit': COMMIT,
             'cpus': os.cpu_count(), 'source_side': int(res * args.source_scale)}
      for w in workers:
        ips = time_pipeline(directory, res, w, args.batch, args.batches)
        row[f'pipeline_images_per_s_{w}w'] = round(ips, 1)
        print(f'  pipeline, {w} workers: {ips:8.1f} images/s', flush=True)
      if args.step:
        ips, gflop = time_step(res, args.step_batch, args.step_steps)
        row['step_images_per_s_cpu'] = round(ips, 2)
        row['gflop_per_image'] = round(gflop, 3)
        gpu = args.gpu_tflops * 1e3 * args.gpu_efficiency / gflop
        row['gpu_images_per_s_estimate'] = round(gpu)
        best = max(row[f'pipeline_images_per_s_{w}w'] for w in workers)
        row['hosts_per_gpu_estimate'] = round(gpu / best, 1)
        print(f'  train step on this CPU: {ips:.2f} images/s, {gflop:.2f} GFLOP/image; a GPU at '
              f'{args.gpu_efficiency:.0%} of {args.gpu_tflops:.0f} TFLOP/s: ~{gpu:,.0f} images/s '
              f'= {gpu / best:.1f}x this host\'s best pipeline', flush=True)
      rows.append(row)
      print('JSON ' + json.dumps(row), flush=True)
  cols = [f'pipeline_images_per_s_{w}w' for w in workers]
  print('\n| px | ' + ' | '.join(f'pipeline, {w} workers (img/s)' for w in workers) +
        ' | train step, this CPU (img/s) | GFLOP/image | GPU estimate (img/s) | hosts per GPU |')
  print('|---' * (len(workers) + 5) + '|')
  for r in rows:
    print(f'| {r["resolution"]} | ' + ' | '.join(str(r[c]) for c in cols) +
          f' | {r.get("step_images_per_s_cpu", "-")} | {r.get("gflop_per_image", "-")} | '
          f'{r.get("gpu_images_per_s_estimate", "-")} | {r.get("hosts_per_gpu_estimate", "-")} |')


if __name__ == '__main__':
  main()
