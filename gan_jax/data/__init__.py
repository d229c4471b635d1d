"""Datasets as device-resident arrays plus a pure, jittable sampler.

    source = load_source(config.data)                # Source(arrays, draw, info)
    arrays = jax.device_put(source.arrays)           # once; images stay uint8 on device
    batch = source.draw(arrays, key, batch_size=64)  # inside jit, batch_size static
    # batch['image']: float32 [64, H, W, C] in [-1, 1]; batch['label']: int32 [64]

Backends: local IDX files (`idx`), prepared TFDS datasets without TensorFlow (`tfds`),
checksummed MNIST-family downloads (`download`, also a CLI:
`python -m gan_jax.data.download mnist`), and 2-D Gaussian mixtures (`toy2d`).
"""

from gan_jax.data.core import Source, draw_image_batch, make_image_source
from gan_jax.data.idx import load_idx_dataset, read_idx
from gan_jax.data.loader import SOURCES, load_source
from gan_jax.data.toy2d import MIXTURES as TOY2D_MIXTURES

__all__ = [
    'SOURCES',
    'Source',
    'TOY2D_MIXTURES',
    'draw_image_batch',
    'load_idx_dataset',
    'load_source',
    'make_image_source',
    'read_idx',
]
