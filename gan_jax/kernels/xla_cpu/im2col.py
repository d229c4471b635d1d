"""The patch geometry of a 4x4, stride-2, padding-1 window, shared by the conv and its transpose.

``conv4x4s2_patches`` is the im2col of ``Conv(4, s2, p1)`` (and the cotangent gather of the
transposed conv); ``overlap_add`` is its adjoint, the col2im (and the transposed conv's tap-form
forward). Per spatial axis, input pixel ``i`` and kernel tap ``k`` meet output pixel
``o = 2 i - 1 + k`` of the transposed conv, equivalently patch row ``i`` of the conv reads input
pixel ``2 i - 1 + k``.
"""

import jax
import jax.numpy as jnp

# Per output phase of the tap-plane form: (first tap row in the 1-padded tap grid, kernel index
# of each of its 2 taps). Per axis, y[2m] = t[m-1, k=3] + t[m, k=1] and
# y[2m+1] = t[m, k=2] + t[m+1, k=0].
_TAPS = ((0, (3, 1)), (1, (2, 0)))


def shift2d(p, dh: int, dw: int):
  """``p [B, H, W, C] -> q`` with ``q[:, m, n] = p[:, m + dh, n + dw]`` (zero outside ``p``),
  ``dh, dw`` in {-1, 0, 1}: a slice and a pad of one plane, which XLA fuses into the consumer."""
  _, h, w, _ = p.shape
  p = p[:, max(dh, 0):h + min(dh, 0), max(dw, 0):w + min(dw, 0), :]
  return jnp.pad(p, ((0, 0), (max(-dh, 0), max(dh, 0)), (max(-dw, 0), max(dw, 0)), (0, 0)))


def overlap_add(t):
  """``t [B, H, W, 4, 4, C] -> [B, 2H, 2W, C]``: ``y[2i - 1 + kh, 2j - 1 + kw] += t[b, i, j, kh,
  kw]`` (taps falling outside are dropped), summed per output phase from four shifted tap
  planes. The col2im of a 4x4 stride-2 padding-1 conv, and the tap form's last step.

  Each tap plane is shifted on its own (``shift2d``) rather than slicing one zero-padded copy
  of ``t``: XLA:CPU materialised that padded copy (1.65x the bytes of ``t``), and the whole
  col2im ran 3.4 ms instead of 0.75 at ``[64, 7, 7, 4, 4, 128]`` (bit-identical results)."""
  b, h, w, _, _, c = t.shape
  rows = []
  for ra, ka in _TAPS:
    cols = []
    for rc, kc in _TAPS:
      cols.append(sum(shift2d(t[:, :, :, ka[i], kc[j], :], ra + i - 1, rc + j - 1)
                      for i in range(2) for j in range(2)))
    rows.append(jnp.stack(cols, axis=3))  # [B, H, W, 2 (col phase), C]
  return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, c)  # interleave the phases


def conv4x4s2_patches(x):
  """``x [B, 2H, 2W, C] -> [B*H*W, 16 C]``: the patches of a 4x4, stride 2, padding 1 conv
  (im2col), ordered (kh, kw, C). The transposed conv's ``tap_cotangent`` is the same array.

  One pass: with the 1-padded input viewed as ``[B, 2H+2, W+1, 2C]`` (column pairs), a patch
  row is 8 runs of ``2C`` contiguous elements, ``(kh, kw // 2)`` -> padded row ``2i + kh``,
  column pair ``j + kw // 2``. The 8 strided slices are stacked on the second-to-last axis,
  which XLA:CPU emits as one loop fusion copying whole runs: at ``[64, 14, 14, 128]`` 2.4 ->
  0.7 ms against the space-to-depth transpose of four block-shifted slices (and 16 slices +
  a concatenate before that: three passes). The barrier keeps the producer of ``x`` out of the
  fusion, where its elementwise work would run once per patch entry (4x). bf16 ``x`` is moved
  as its uint16 bits: XLA:CPU widens bf16 data movement to float32 and rounds back."""
  b, hh, ww, c = x.shape
  h, w = hh // 2, ww // 2
  bits = x.dtype == jnp.bfloat16
  u = jax.lax.bitcast_convert_type(x, jnp.uint16) if bits else x
  u = jax.lax.optimization_barrier(u)
  s = jnp.pad(u, ((0, 0), (1, 1), (1, 1), (0, 0)))  # bits 0 are +0.0 in bf16
  s = s.reshape(b, hh + 2, w + 1, 2 * c)
  runs = [s[:, kh:kh + hh:2, a:a + w, :] for kh in range(4) for a in range(2)]
  p = jnp.stack(runs, axis=-2).reshape(b * h * w, 16 * c)
  return jax.lax.bitcast_convert_type(p, jnp.bfloat16) if bits else p


def conv4x4s2_patches_t(x):
  """``x [B, 2H, 2W, C] -> [16 C, B*H*W]``: ``conv4x4s2_patches(x).T``, built in that layout
  (channels to the front first, then 16 strided slices stacked on the leading axis), so no
  transpose of the patches is written out. Cheap where ``C`` is small (G's last layer: 1)."""
  b, hh, ww, c = x.shape
  h, w = hh // 2, ww // 2
  bits = x.dtype == jnp.bfloat16
  u = jax.lax.bitcast_convert_type(x, jnp.uint16) if bits else x
  up = jnp.pad(u.transpose(3, 0, 1, 2), ((0, 0), (0, 0), (1, 1), (1, 1)))  # [C, B, 2H+2, 2W+2]
  rows = [up[:, :, kh:kh + 2 * h:2, kw:kw + 2 * w:2] for kh in range(4) for kw in range(4)]
  p = jnp.stack(rows).reshape(16 * c, b * h * w)
  return jax.lax.bitcast_convert_type(p, jnp.bfloat16) if bits else p
