"""One process of tests/test_stream.py's 2-process test: reads one epoch of an index-coded
``.npy`` through ``StreamFeed`` under jax.distributed and writes what it saw as JSON.

  python tests/stream_worker.py NPY OUT_JSON COORDINATOR NUM_PROCESSES PROCESS_ID BATCH STEPS
"""

import json
import sys

import jax


def main(npy, out, coordinator, num_processes, process_id, batch, steps):
  jax.distributed.initialize(coordinator_address=coordinator, num_processes=int(num_processes),
                             process_id=int(process_id))
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  from gan_jax import parallel  # pylint: disable=g-import-not-at-top
  from gan_jax.data import array_file, stream  # pylint: disable=g-import-not-at-top
  records = array_file.ArrayRecords(npy)
  mesh = parallel.make_mesh()
  feed = stream.StreamFeed(records, mesh, seed=7, batch_size=int(batch), workers=1)
  local, global_ = [], []
  for _ in range(int(steps)):
    batch_arrays = feed.next()
    # This process's rows of the global batch, and the whole global batch gathered from all.
    rows = batch_arrays['image'].addressable_shards[0].data
    local.append([int(v) for v in jax.device_get(rows)[0, :, 0, 0, 0]])
    gathered = multihost_utils.process_allgather(batch_arrays['image'], tiled=True)
    global_.append([int(v) for v in gathered[0, :, 0, 0, 0]])
  feed.close()
  with open(out, 'w') as f:
    json.dump({'process': jax.process_index(), 'count': jax.process_count(),
               'devices': len(jax.devices()), 'local': local, 'global': global_}, f)


if __name__ == '__main__':
  main(*sys.argv[1:])
