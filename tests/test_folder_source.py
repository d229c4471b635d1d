"""Tests for the random-access record sources and `imaging.to_square`.

The image folder is drawn by `image_folder_fixture` (known colour per class, mixed sizes, formats
and PIL modes, one truncated file), so pixel values are checked, not only shapes. TFDS runs
under `tfds.testing.mock_data`: no TensorFlow, no prepared data, no network.
"""

import os
import pickle

import numpy as np
import pytest
from PIL import Image, ImageFile

from gan_jax.data import imaging
from gan_jax.data.array_file import ArrayRecords
from gan_jax.data.folder import BadImageError, FolderRecords
from gan_jax.data.tfds_records import TfdsRecords
from gan_jax.errors import DataError
from image_folder_fixture import luma, write_image_folder

# JPEG/WebP are lossy; in the flat middle of a shape they stay within a few levels.
TOL = 12


def one_line(excinfo) -> str:
  message = str(excinfo.value)
  assert '\n' not in message, message
  return message


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  return write_image_folder(tmp_path_factory.mktemp('images'))


def records_by_path(records) -> dict:
  return {records.path(i): i for i in range(len(records))}


# ---------------------------------------------------------------------------------------------
# FolderRecords.


def test_folder_lists_labels_and_info(folder):
  records = FolderRecords(folder['root'], resolution=16)
  assert len(records) == folder['num_files'] == 4 * 60 + 1  # Hidden + .txt files skipped.
  info = records.info
  assert info['class_names'] == ['blue', 'green', 'red', 'yellow'] == folder['classes']
  assert info['num_classes'] == 4 and info['shape'] == (16, 16, 3)
  assert info['source'] == 'folder' and info['num_examples'] == len(records)
  assert info['dir'] == folder['root'] and info['name'] == os.path.basename(folder['root'])
  index = records_by_path(records)
  assert not any('/.' in path for path in index)
  for f in folder['files'][::7]:
    record = records[index[f['path']]]
    assert record['label'].dtype == np.int32
    assert record['label'] == folder['classes'].index(f['class'])


def test_folder_sorted_and_deterministic(folder):
  first = [FolderRecords(folder['root'], 8).path(i) for i in range(20)]
  assert first == sorted(first)
  assert first == [FolderRecords(folder['root'], 8, labels='none').path(i) for i in range(20)]


@pytest.mark.parametrize('resolution', [9, 32])  # Down- and upscaling.
def test_folder_pixels_match_class_colours(folder, resolution):
  records = FolderRecords(folder['root'], resolution)
  index = records_by_path(records)
  centre = resolution // 2
  for f in folder['files']:
    image = records[index[f['path']]]['image']
    assert image.shape == (resolution, resolution, 3) and image.dtype == np.uint8
    got = image.astype(int)
    np.testing.assert_allclose(got[centre, centre], f['centre'], atol=TOL, err_msg=str(f))
    np.testing.assert_allclose(got[0, 0], f['corner'], atol=TOL, err_msg=str(f))
    np.testing.assert_allclose(got[-1, -1], f['corner'], atol=TOL, err_msg=str(f))


# Saved mode -> the mode PIL opens it in, so the conversion under test really happens.
_OPENED = {'L': 'L', 'I;16': 'I;16', 'RGBA': 'RGBA', 'LA': 'LA', 'P': 'P', 'PT': 'P',
           'CMYK': 'CMYK'}


@pytest.mark.parametrize('channels', [1, 3])
@pytest.mark.parametrize('mode', sorted(_OPENED))
def test_folder_mode_conversions(folder, mode, channels):
  records = FolderRecords(folder['root'], 12, channels=channels)
  index = records_by_path(records)
  files = [f for f in folder['files'] if f['mode'] == mode and f['format'] == 'png'] or [
      f for f in folder['files'] if f['mode'] == mode]
  assert len(files) >= 4
  for f in files:
    with Image.open(f['path']) as img:
      assert img.mode == _OPENED[mode], (f, img.mode)
      assert (mode == 'PT') == ('transparency' in img.info)
    image = records[index[f['path']]]['image'].astype(int)
    assert image.shape == (12, 12, channels)
    centre, corner = f['centre'], f['corner']  # Transparent corners must come out white.
    if channels == 1:
      centre, corner = (luma(centre),), (luma(corner),)
    np.testing.assert_allclose(image[6, 6], centre, atol=TOL, err_msg=str(f))
    np.testing.assert_allclose(image[0, 0], corner, atol=TOL, err_msg=str(f))


def test_folder_label_modes(folder, tmp_path):
  none = FolderRecords(folder['root'], 8, labels='none')
  assert none.info['num_classes'] is None and none.info['class_names'] is None
  assert all(none[i]['label'] == 0 for i in range(0, len(none), 50))
  flat = tmp_path / 'flat'
  flat.mkdir()
  for i in range(3):
    Image.new('RGB', (10, 10), (i, 0, 0)).save(flat / f'{i}.PNG')  # Upper-case suffix.
  (flat / 'only').mkdir()
  Image.new('RGB', (10, 10)).save(flat / 'only' / 'x.jpeg')
  auto = FolderRecords(flat, 8)  # Images at the top level too: unlabelled.
  assert len(auto) == 4 and auto.info['num_classes'] is None
  with pytest.raises(DataError, match="labels='folders'") as e:
    FolderRecords(flat, 8, labels='folders')
  assert str(flat) in one_line(e) and '0.PNG' in str(e.value)
  single = FolderRecords(flat / '..', 8, labels='auto')  # One sub-folder ('flat'): unlabelled.
  assert single.info['num_classes'] is None
  one_class = FolderRecords(tmp_path, 8, labels='folders')
  assert one_class.info['class_names'] == ['flat'] and one_class[3]['label'] == 0
  with pytest.raises(DataError, match=r"labels='classes' is not valid.*'auto', 'none'"):
    FolderRecords(flat, 8, labels='classes')


def test_folder_truncated_file_raises_bad_image_error(folder):
  assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # Else PIL would pad it and pass it.
  records = FolderRecords(folder['root'], 16)
  with pytest.raises(BadImageError) as e:
    records[records_by_path(records)[folder['truncated']]]
  message = one_line(e)
  assert folder['truncated'] in message and 'truncated' in message
  assert 'set config.data.skip_bad_files=True to skip such files' in message
  assert e.value.path == folder['truncated'] and isinstance(e.value, DataError)


def test_folder_not_an_image_raises_bad_image_error(tmp_path):
  for name, payload in (('a.png', b'not a png at all'), ('b.jpg', b'')):
    (tmp_path / name).write_bytes(payload)
  records = FolderRecords(tmp_path, 8)
  for i in range(2):
    with pytest.raises(BadImageError, match='cannot read image') as e:
      records[i]
    assert records.path(i) in one_line(e)


def test_bad_image_error_pickles():
  error = BadImageError('/data/x.png', 'OSError: image file is\ntruncated')
  clone = pickle.loads(pickle.dumps(error))
  assert type(clone) is BadImageError and isinstance(clone, DataError)
  assert clone.path == '/data/x.png' and str(clone) == str(error)
  assert '\n' not in str(clone) and 'skip_bad_files=True' in str(clone)


def test_folder_missing_empty_and_no_images(tmp_path):
  for root in (tmp_path / 'missing', tmp_path):
    with pytest.raises(DataError) as e:
      FolderRecords(root, 8)
    message = one_line(e)
    assert str(root) in message and '.png' in message and '.webp' in message
  (tmp_path / 'notes.txt').write_text('x')
  (tmp_path / '.hidden').mkdir()
  Image.new('RGB', (4, 4)).save(tmp_path / '.hidden' / 'x.png')
  Image.new('RGB', (4, 4)).save(tmp_path / '.dot.png')
  with pytest.raises(DataError, match='has no .png'):
    FolderRecords(tmp_path, 8)


def test_folder_bad_options(folder):
  for kwargs, valid in (({'crop': 'middle'}, "'center', 'none'"), ({'channels': 2}, '[1, 3]'),
                        ({'resolution': 0}, 'positive int'), ({'crop_size': -1}, '>= 0'),
                        ({'crop': 'none', 'crop_size': 8}, "crop='center'")):
    args = {'resolution': 8, **kwargs}
    with pytest.raises(DataError, match=list(kwargs)[-1]) as e:
      FolderRecords(folder['root'], **args)
    assert valid in one_line(e)


def test_folder_pickles(folder):
  records = FolderRecords(folder['root'], 10, channels=1, labels='none')
  clone = pickle.loads(pickle.dumps(records))
  assert len(clone) == len(records) and clone.info == records.info
  for i in (0, 57, len(records) - 1):
    np.testing.assert_array_equal(clone[i]['image'], records[i]['image'])


# ---------------------------------------------------------------------------------------------
# imaging.to_square.


def thirds(width=90, height=30) -> Image.Image:
  """A wide image: left third red, middle green, right third blue."""
  array = np.zeros((height, width, 3), np.uint8)
  array[:, :width // 3] = (255, 0, 0)
  array[:, width // 3:2 * width // 3] = (0, 255, 0)
  array[:, 2 * width // 3:] = (0, 0, 255)
  return Image.fromarray(array)


def test_center_crop_drops_the_sides_and_none_keeps_them():
  centre = imaging.to_square(thirds(), 12, 3, crop='center')
  assert (np.abs(centre.astype(int) - (0, 255, 0)) <= 1).all()
  whole = imaging.to_square(thirds(), 12, 3, crop='none').astype(int)
  np.testing.assert_allclose(whole[:, 0], [[255, 0, 0]] * 12, atol=2)
  np.testing.assert_allclose(whole[:, 6], [[0, 255, 0]] * 12, atol=2)
  np.testing.assert_allclose(whole[:, -1], [[0, 0, 255]] * 12, atol=2)


def test_crop_size():
  array = np.zeros((40, 60, 3), np.uint8)
  array[10:30, 20:40] = 200  # A centred 20x20 square on black.
  img = Image.fromarray(array)
  inner = imaging.to_square(img, 20, 3, crop_size=20)
  assert (inner == 200).all()
  short = imaging.to_square(img, 40, 3)  # crop_size=0: the 40x40 centre, black border kept.
  np.testing.assert_array_equal(short, array[:, 10:50])
  with pytest.raises(DataError, match=r'crop_size=41 is larger than the image \(60x40\)'):
    imaging.to_square(img, 20, 3, crop_size=41)


def test_resize_is_antialiased_bicubic():
  checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
  small = imaging.to_square(Image.fromarray(checker), 8, 1)
  assert small.shape == (8, 8, 1) and np.abs(small.astype(int) - 127.5).max() <= 2  # Flat grey.
  ramp = Image.fromarray(np.tile(np.arange(0, 250, 10, dtype=np.uint8), (25, 1)))
  expected = np.asarray(ramp.resize((10, 10), Image.Resampling.BICUBIC))
  np.testing.assert_array_equal(imaging.to_square(ramp, 10, 1)[:, :, 0], expected)
  same = np.random.default_rng(0).integers(0, 256, (7, 7, 3), dtype=np.uint8)
  np.testing.assert_array_equal(imaging.to_square(Image.fromarray(same), 7, 3), same)


def test_wide_gray_modes_and_alpha_compositing():
  sixteen = Image.fromarray(np.array([[0, 32896, 65535]], np.uint16))
  assert sixteen.mode == 'I;16'
  np.testing.assert_array_equal(imaging.to_mode(sixteen, 1), [[0, 128, 255]])
  floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32))
  np.testing.assert_array_equal(imaging.to_mode(floats, 1), [[0, 128, 255]])
  ints = Image.fromarray(np.array([[0, 100, 255]], np.int32))
  np.testing.assert_array_equal(imaging.to_mode(ints, 1), [[0, 100, 255]])
  half_red = Image.new('RGBA', (2, 2), (200, 0, 0, 128))  # 128/255 red over white.
  np.testing.assert_allclose(np.asarray(imaging.to_mode(half_red, 3))[0, 0],
                             np.array([200, 0, 0]) * 128 / 255 + 255 * 127 / 255, atol=1)


# ---------------------------------------------------------------------------------------------
# ArrayRecords.


def test_npy_round_trip_memory_mapped(tmp_path):
  images = np.random.default_rng(0).integers(0, 256, (30, 12, 10, 3), dtype=np.uint8)
  np.save(tmp_path / 'faces.npy', images)
  records = ArrayRecords(tmp_path / 'faces.npy')
  assert len(records) == 30 and records.info['shape'] == (12, 10, 3)
  assert records.info['memory_mapped'] and records.info['value_range'] == 'uint8'
  assert records.info['num_classes'] is None and records.info['name'] == 'faces'
  for i in (0, 29):
    np.testing.assert_array_equal(records[i]['image'], images[i])
    assert records[i]['label'] == 0 and records[i]['label'].dtype == np.int32
  blob = pickle.dumps(records)
  assert len(blob) < images.nbytes // 4  # The memory map is not pickled.
  np.testing.assert_array_equal(pickle.loads(blob)[7]['image'], images[7])
  resized = ArrayRecords(tmp_path / 'faces.npy', resolution=8, channels=1)
  assert resized[3]['image'].shape == (8, 8, 1) and resized.info['shape'] == (8, 8, 1)


@pytest.mark.parametrize('compressed', [False, True])
def test_npz_round_trip_with_labels(tmp_path, compressed):
  images = np.random.default_rng(1).integers(0, 256, (9, 6, 6), dtype=np.uint8)
  labels = np.arange(9) % 5
  (np.savez_compressed if compressed else np.savez)(tmp_path / 'd.npz', x=images, y=labels)
  records = ArrayRecords(tmp_path / 'd.npz')
  assert records.info['memory_mapped'] is (not compressed)
  assert records.info['shape'] == (6, 6, 1) and records.info['num_classes'] == 5
  clone = pickle.loads(pickle.dumps(records))
  for i in range(9):
    np.testing.assert_array_equal(clone[i]['image'][:, :, 0], images[i])
    assert clone[i]['label'] == labels[i]
  rgb = ArrayRecords(tmp_path / 'd.npz', channels=3)[2]['image']
  assert rgb.shape == (6, 6, 3) and (rgb == images[2][:, :, None]).all()


@pytest.mark.parametrize('value_range,to_float', [
    ('[0, 1]', lambda u: u / 255.0),
    ('[-1, 1]', lambda u: u / 127.5 - 1.0),
])
def test_float_arrays_are_converted(tmp_path, value_range, to_float):
  uint8 = np.random.default_rng(2).integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
  uint8[0, 0, 0] = (0, 255, 128)  # Both ends of the range are present.
  np.savez(tmp_path / 'f.npz', images=to_float(uint8).astype(np.float32))
  records = ArrayRecords(tmp_path / 'f.npz')
  assert records.info['value_range'] == value_range
  for i in range(5):
    image = records[i]['image']
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, uint8[i])


def test_array_file_errors(tmp_path):
  def fails(array, match, **save):
    path = tmp_path / 'bad.npz'
    np.savez(path, **({'image': array} if array is not None else {}), **save)
    with pytest.raises(DataError, match=match) as e:
      ArrayRecords(path)
    return one_line(e)

  assert 'uint8 [N, H, W, C]' in fails(np.zeros((2, 4, 4, 3), np.int16), 'int16')
  assert 'uint8 [N, H, W, C]' in fails(np.zeros((2, 4, 4, 2), np.uint8), r'\(2, 4, 4, 2\)')
  assert '[0, 1] or [-1, 1]' in fails(np.linspace(0, 3, 32).reshape(2, 4, 4), r'\[0, 3\]')
  assert "'image', 'images', 'x'" in fails(None, 'none named', pixels=np.zeros(3))
  fails(np.zeros((3, 4, 4), np.uint8), r'labels of shape \(2,\)', label=np.zeros(2, int))
  for path, match in ((tmp_path / 'nope.npy', 'does not exist'),
                      (tmp_path / 'x.png', 'must end in .npy or .npz')):
    with pytest.raises(DataError, match=match):
      ArrayRecords(path)


# ---------------------------------------------------------------------------------------------
# TfdsRecords (mocked).


@pytest.mark.parametrize('name,shape', [('mnist', (28, 28, 1)), ('cifar10', (32, 32, 3))])
def test_tfds_records_mock(name, shape):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  with tfds.testing.mock_data(num_examples=7):
    records = TfdsRecords(name, 'train')
    assert len(records) == 7 and records.info['shape'] == shape
    assert records.info['num_classes'] == 10 and len(records.info['class_names']) == 10
    record = records[6]
    assert record['image'].shape == shape and record['image'].dtype == np.uint8
    assert record['label'].dtype == np.int32 and 0 <= record['label'] < 10
    with pytest.raises(IndexError):
      records[7]
    clone = pickle.loads(pickle.dumps(records))
    assert clone._source is None  # pylint: disable=protected-access
    np.testing.assert_array_equal(clone[3]['image'], records[3]['image'])
    resized = TfdsRecords(name, 'test', resolution=16, channels=3)
    image = resized[0]['image']
    assert image.shape == (16, 16, 3) == resized.info['shape'] and image.dtype == np.uint8


def test_tfds_records_unknown_name():
  with pytest.raises(DataError, match="unknown TFDS dataset 'cifar_10'.*cifar10"):
    TfdsRecords('cifar_10', 'train')
