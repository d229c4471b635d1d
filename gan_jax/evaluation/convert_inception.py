"""Converts pytorch-fid's FID Inception weights (.pth) into our .npz, once, offline.

  python -m gan_jax.evaluation.convert_inception \
      --src pt_inception-2015-12-05-6726825d.pth --out ~/.cache/gan_jax/inception_fid.npz

Get the .pth on a machine with internet from pytorch-fid's GitHub release (``inception.PTH_URL``);
nothing here downloads. Reading it needs PyTorch (``pip install torch``, CPU is enough); using
the converted file does not.

The mapping, for every BasicConv2d ``<name>`` of the state_dict (``<name>`` like
``Conv2d_1a_3x3`` or ``Mixed_6b.branch7x7_2``, dots becoming slashes):

  <name>.conv.weight     [O, I, kh, kw] -> params/<name>/conv/kernel   [kh, kw, I, O]
  <name>.bn.weight       [O]            -> params/<name>/bn/scale
  <name>.bn.bias         [O]            -> params/<name>/bn/bias
  <name>.bn.running_mean [O]            -> batch_stats/<name>/bn/mean
  <name>.bn.running_var  [O]            -> batch_stats/<name>/bn/var

``fc.*`` (the 1008-way ImageNet logits), ``AuxLogits.*`` and ``*.num_batches_tracked`` are
dropped: pool3 needs none of them. Any other key, any missing one and any shape that differs
from ``inception.FIDInceptionV3`` is an error naming it; a file name carrying a hash prefix
(``...-6726825d.pth``, torch.hub's convention) must match the file's SHA-256. The last stdout
line is a JSON summary.
"""

import hashlib
import json
import os
import re
from typing import Dict, Mapping

import numpy as np

from gan_jax.errors import UserError
from gan_jax.evaluation import inception

_LEAVES = {  # torch suffix -> (collection, our suffix)
    'conv.weight': ('params', 'conv/kernel'),
    'bn.weight': ('params', 'bn/scale'),
    'bn.bias': ('params', 'bn/bias'),
    'bn.running_mean': ('batch_stats', 'bn/mean'),
    'bn.running_var': ('batch_stats', 'bn/var'),
}
_DROPPED = re.compile(r'^(fc|AuxLogits)\.|\.num_batches_tracked$')


def our_name(torch_key: str):
  """``'Mixed_5b.branch1x1.conv.weight'`` -> ``'params/Mixed_5b/branch1x1/conv/kernel'`` (None if
  the key is not a BasicConv2d tensor)."""
  for suffix, (collection, ours) in _LEAVES.items():
    if torch_key.endswith('.' + suffix):
      return f'{collection}/{torch_key[:-len(suffix) - 1].replace(".", "/")}/{ours}'
  return None


def torch_name(name: str) -> str:
  """The inverse of ``our_name``."""
  collection, rest = name.split('/', 1)
  for suffix, (coll, ours) in _LEAVES.items():
    if coll == collection and rest.endswith('/' + ours):
      return f'{rest[:-len(ours) - 1].replace("/", ".")}.{suffix}'
  raise ValueError(name)


def from_state_dict(state_dict: Mapping, where: str = 'state_dict') -> Dict[str, np.ndarray]:
  """pytorch-fid state_dict (tensors or arrays) -> our flat float32 dict, strictly checked."""
  want = inception.expected_shapes()
  flat, unknown = {}, []
  for key, value in state_dict.items():
    if _DROPPED.search(key):
      continue
    name = our_name(key)
    if name is None or name not in want:
      unknown.append(key)
      continue
    array = value.detach().cpu().numpy() if hasattr(value, 'detach') else np.asarray(value)
    flat[name] = np.asarray(array.transpose(2, 3, 1, 0) if array.ndim == 4 else array, np.float32)
  missing = sorted(torch_name(k) for k in set(want) - set(flat))
  if unknown or missing:
    raise UserError(f'{where} is not the pytorch-fid FID Inception state_dict: {len(missing)} '
                    f'missing keys {missing[:3]}, {len(unknown)} unexpected keys '
                    f'{sorted(unknown)[:3]}; expected the {len(want)} keys of '
                    f'{inception.PTH_NAME} (e.g. Conv2d_1a_3x3.conv.weight)')
  for name in sorted(want):
    if flat[name].shape != want[name]:
      got, exp = flat[name].shape, want[name]
      if len(exp) == 4:  # report in the file's own OIHW layout
        got, exp = tuple(np.array(got)[[3, 2, 0, 1]]), tuple(np.array(exp)[[3, 2, 0, 1]])
      raise UserError(f'{where}: {torch_name(name)} has shape {[int(d) for d in got]}, '
                      f'expected {[int(d) for d in exp]} (FID InceptionV3)')
  return flat


def _sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      h.update(block)
  return h.hexdigest()


def _read_pth(src: str) -> Mapping:
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise UserError(f'--src={src}: reading a .pth needs PyTorch; pip install torch (CPU is '
                    'enough) and run the converter again') from None
  try:
    state = torch.load(src, map_location='cpu', weights_only=True)
  except Exception as e:  # pylint: disable=broad-except  # torch raises many kinds for bad files
    detail = ' '.join(str(e).split()).split('. ')[0][:100]  # its first sentence
    raise UserError(f'--src={src} is not a readable PyTorch file ({type(e).__name__}: '
                    f'{detail}); pass {inception.PTH_NAME}') from None
  if not isinstance(state, Mapping):
    raise UserError(f'--src={src} holds a {type(state).__name__}, not a state_dict; pass '
                    f'{inception.PTH_NAME}')
  return state


def convert(src: str, out: str) -> Dict:
  """Reads ``src`` (.pth), writes ``out`` (our .npz); returns a summary dict."""
  if not src:
    raise UserError(f'--src is empty; pass the path of {inception.PTH_NAME} (from '
                    f'{inception.PTH_URL}, downloaded on a machine with internet)')
  if not os.path.isfile(src):
    raise UserError(f'--src={src} does not exist; download {inception.PTH_NAME} from '
                    f'{inception.PTH_URL} on a machine with internet and pass its path')
  if not out:
    raise UserError('--out is empty; pass the .npz to write, e.g. '
                    f'{inception.default_weights_path()}')
  digest = _sha256(src)
  promised = re.search(r'-([0-9a-f]{8,64})\.[A-Za-z]+$', os.path.basename(src))
  if promised and not digest.startswith(promised.group(1)):
    raise UserError(f'--src={src}: its SHA-256 starts with {digest[:len(promised.group(1))]} but '
                    f'the name promises {promised.group(1)}; the download is corrupt or truncated')
  flat = from_state_dict(_read_pth(src), f'--src={src}')
  inception.save_weights(flat, out, source=os.path.basename(src), source_sha256=digest)
  return {'out': out, 'src': src, 'src_sha256': digest, 'tensors': len(flat),
          'parameters': int(sum(v.size for v in flat.values()))}


def main(argv):
  from absl import flags  # pylint: disable=import-outside-toplevel
  del argv
  summary = convert(flags.FLAGS.src, os.path.expanduser(flags.FLAGS.out))
  print(f'wrote {summary["out"]}: {summary["tensors"]} tensors, '
        f'{summary["parameters"] / 1e6:.2f} M parameters from {summary["src"]}')
  print(json.dumps(summary))


if __name__ == '__main__':
  from absl import flags  # pylint: disable=g-import-not-at-top
  from gan_jax import cli  # pylint: disable=g-import-not-at-top
  # Defined here, not at import: importing this module must not claim flag names.
  flags.DEFINE_string('src', '', f'pytorch-fid weights ({inception.PTH_NAME}).')
  flags.DEFINE_string('out', inception.default_weights_path(), 'Our .npz to write.')
  cli.run(main)
