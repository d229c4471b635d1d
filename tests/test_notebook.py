"""Executes notebooks/quickstart.ipynb end to end and checks that its GAN actually learned."""

import os
import re
import time

import nbclient
import nbformat
import pytest

from conftest import REPO, subprocess_env

NOTEBOOK_DIR = os.path.join(REPO, 'notebooks')
QUICKSTART = os.path.join(NOTEBOOK_DIR, 'quickstart.ipynb')
MIN_MODES = 6  # of the ring's 8; the notebook's 2000 steps reach 8/8


def _text_outputs(cell):
  """The stream and text/plain outputs of a code cell, joined."""
  parts = []
  for out in cell.get('outputs', []):
    if out.output_type == 'stream':
      parts.append(out.text)
    elif out.output_type in ('execute_result', 'display_data'):
      parts.append(out.data.get('text/plain', ''))
  return ''.join(parts)


def _execute(path):
  """Runs a notebook in a fresh `python3` kernel with cwd = its folder; returns it executed.

  The kernel gets a plain single-device CPU environment, without the 8 fake devices that
  conftest forces on this test process through XLA_FLAGS.

  Raises:
    nbclient.exceptions.CellExecutionError: if a cell raises.
  """
  nb = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(nb, timeout=300, kernel_name='python3',
                                   resources={'metadata': {'path': os.path.dirname(path)}})
  client.execute(env=subprocess_env())
  return nb


def _modes_covered(path):
  """Executes the notebook at `path` and checks that it ran cleanly and drew a plot.

  Returns:
    (K, N) from the `modes covered: K/N` line that the last code cell must print.
  """
  nb = _execute(path)
  code_cells = [c for c in nb.cells if c.cell_type == 'code']
  for cell in code_cells:
    errors = [o for o in cell.outputs if o.output_type == 'error']
    assert not errors, f'{cell.source[:80]!r}: {errors}'
  assert any('image/png' in o.get('data', {})
             for c in code_cells for o in c.outputs), 'no plot was produced'
  last = _text_outputs(code_cells[-1])
  match = re.search(r'^modes covered: (\d+)/(\d+)$', last, re.MULTILINE)
  assert match, f'the last code cell did not print "modes covered: K/N":\n{last}'
  return int(match.group(1)), int(match.group(2))


def test_quickstart_is_stored_without_outputs():
  nb = nbformat.read(QUICKSTART, as_version=4)
  nbformat.validate(nb)
  assert nb.nbformat == 4
  for cell in nb.cells:
    if cell.cell_type == 'code':
      assert not cell.outputs and cell.execution_count is None, cell.source[:80]


@pytest.mark.slow
def test_quickstart_runs_and_covers_modes():
  start = time.time()
  covered, total = _modes_covered(QUICKSTART)
  assert total == 8
  assert covered >= MIN_MODES, f'only {covered}/{total} modes covered after training'
  print(f'quickstart: modes covered {covered}/{total} in {time.time() - start:.0f}s')
