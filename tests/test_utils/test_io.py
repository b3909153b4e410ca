"""The shared file helpers: one truncated-image rule for every reader, first_line."""
import cv2
import numpy as np
import pytest

from rscotr.apis.image_io import ImageReadError, read_image
from rscotr.datasets.checks import DataError, check_file_complete
from rscotr.datasets.converters.common import ConversionError, decode_image
from rscotr.utils.io import IMAGE_END_WINDOW, first_line, truncated_image_problem

CUT_JPEG = 'truncated JPEG (no end-of-image marker)'
CUT_PNG = 'truncated PNG (no IEND chunk at the end)'


def _encoded(ext, size=48):
    img = np.random.RandomState(0).randint(0, 256, (size, size, 3)).astype(np.uint8)
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def _problems(tmp_path, name, data):
    """What each of the three readers says of the same file (None: it reads it)."""
    path = tmp_path / name
    path.write_bytes(data)
    found = dict(bytes=truncated_image_problem(data), file=truncated_image_problem(path))
    for key, call, error in (('dataset', check_file_complete, DataError),
                             ('converter', lambda p: decode_image(data, p), ConversionError),
                             ('inference', read_image, ImageReadError)):
        try:
            call(str(path))
            found[key] = None
        except error as err:
            found[key] = str(err)
    return found


@pytest.mark.parametrize('ext, message', [('.jpg', CUT_JPEG), ('.png', CUT_PNG)])
def test_every_reader_applies_the_same_truncation_rule(tmp_path, ext, message):
    data = _encoded(ext)
    # complete, and complete with appended bytes after the end marker
    for name, good in (('whole', data), ('trailer', data + b'\x01' * 100)):
        assert set(_problems(tmp_path, name + ext, good).values()) == {None}, name
    cut = _problems(tmp_path, 'cut' + ext, data[:-40])
    assert cut['bytes'] == cut['file'] and cut['bytes'].startswith(message)
    for reader in ('dataset', 'converter', 'inference'):
        assert cut[reader] == f'{tmp_path / ("cut" + ext)}: {cut["bytes"]}', reader


def test_end_marker_is_looked_for_at_the_end_only():
    data = _encoded('.jpg', size=160)
    assert len(data) > 2 * IMAGE_END_WINDOW
    # an end marker far from the end (an embedded thumbnail's) does not count
    far = data + b'\x01' * IMAGE_END_WINDOW
    assert truncated_image_problem(far).startswith(CUT_JPEG)
    assert truncated_image_problem(b'GIF89a' + b'\x00' * 10) is None  # other formats


def test_first_line():
    assert first_line(ValueError('bad value\nmore detail')) == 'bad value'
    assert first_line(RuntimeError('  \n')) == 'RuntimeError'
    assert first_line(KeyError('no such key')) == 'no such key'  # without str()'s quotes
    assert str(KeyError('no such key')) == "'no such key'"
