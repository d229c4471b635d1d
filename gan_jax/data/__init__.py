"""Datasets as device-resident arrays plus a pure, jittable sampler.

    source = load_source(config.data)                # Source(arrays, draw, info)
    arrays = jax.device_put(source.arrays)           # once; images stay uint8 on device
    batch = source.draw(arrays, key, batch_size=64)  # inside jit, batch_size static
    # batch['image']: float32 [64, H, W, C] in [-1, 1]; batch['label']: int32 [64]

Backends: local IDX files (`idx`), prepared TFDS datasets without TensorFlow (`tfds`),
checksummed MNIST-family downloads (`download`, also a CLI:
`python -m gan_jax.data.download mnist`), and 2-D Gaussian mixtures (`toy2d`).

Image folders (`folder`), `.npz`/`.npy` files (`npz`) and TFDS datasets are also random-access
record sources (`load_records`): read whole onto the device when they fit
(`records_source`), else streamed by grain (`gan_jax.data.stream`).
"""

from gan_jax.data.core import Source, draw_image_batch, make_image_source
from gan_jax.data.idx import load_idx_dataset, read_idx
from gan_jax.data.loader import (RECORD_SOURCES, SOURCES, load_records, load_source,
                                 records_source, uses_records)
from gan_jax.data.toy2d import MIXTURES as TOY2D_MIXTURES

__all__ = [
    'RECORD_SOURCES',
    'SOURCES',
    'Source',
    'TOY2D_MIXTURES',
    'draw_image_batch',
    'load_idx_dataset',
    'load_records',
    'load_source',
    'records_source',
    'uses_records',
    'make_image_source',
    'read_idx',
]
