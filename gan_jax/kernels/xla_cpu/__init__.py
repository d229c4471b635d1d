"""Hand-written kernels for XLA:CPU, behind drop-in flax layers (``modules``).

  matmul.py          bf16 matmuls with f32 accumulation, bf16 rounding, written-out
                     transposes, ``apart`` (a function compiled as a computation of its own)
  im2col.py          the 4x4 stride-2 patch geometry: im2col and its adjoint col2im
  conv_transpose.py  ConvTranspose(4, s2, p1): window forward, tap-form custom VJP
  conv.py            Conv(4, s2, p1) as im2col matmuls; a whole-input VALID conv as a matmul
  batch_norm.py      training-mode BatchNorm with a hand-written VJP
  modules.py         Conv, ConvTranspose, BatchNorm, Dense: flax's layers, using the above
                     where they cover the shape

Each kernel computes the function of the flax layer it replaces (tests/test_kernels_xla_cpu.py);
benchmarks/README.md has the measurements that chose them.
"""

from gan_jax.kernels.xla_cpu.modules import BatchNorm, Conv, ConvTranspose, Dense

__all__ = ['BatchNorm', 'Conv', 'ConvTranspose', 'Dense']
