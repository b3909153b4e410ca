"""File helpers: atomic output, the first check of an input file, and of an output folder.

Atomic output: a kill at any moment leaves the previous file intact. Every
writer goes through a temporary file in the destination folder and
``os.replace`` (atomic on POSIX within one file system). On failure the
temporary file is removed and the previous file, if any, is untouched.
"""
import os
import os.path as osp
import tempfile
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Union

#: A file path: a string or an ``os.PathLike`` (``pathlib.Path``).
PathLike = Union[str, 'os.PathLike[str]']

#: Bytes at the end of a PNG / JPEG file searched for its end marker (data
#: after the marker, padding or appended metadata, is allowed).
IMAGE_END_WINDOW = 4096

__all__ = ['PathLike', 'first_line', 'truncated_image_problem', 'atomic_write_bytes',
           'atomic_write_text', 'atomic_output', 'atomic_symlink',
           'atomic_save_checkpoint', 'read_file_head', 'output_dir_problem']


def read_file_head(path: str, size: int, error: Callable[[str, str], Exception], kind: str,
                   missing_error: Optional[Callable[[str, str], Exception]] = None) -> bytes:
    """The first ``size`` bytes of an input file, after the checks every reader makes.

    Args:
        path: The file.
        size: Bytes to read.
        error: ``error(path, problem)`` builds the exception to raise.
        kind: What the file should be, for the message (``'an image file'``).
        missing_error: The exception for a missing file (default: ``error``).

    Raises:
        The exception of ``error`` (or ``missing_error``): no such file, a
        folder, a file that cannot be opened, an empty file.
    """
    if not osp.exists(path):
        raise (missing_error or error)(path, 'no such file')
    if osp.isdir(path):
        raise error(path, f'is a folder, not {kind}')
    try:
        with open(path, 'rb') as f:
            head = f.read(size)
    except OSError as err:
        raise error(path, f'cannot open ({err.strerror or err})') from None
    if not head:
        raise error(path, 'empty file')
    return head


def truncated_image_problem(source: Union[bytes, PathLike]) -> Optional[str]:
    """Why a PNG or JPEG (a file, or its encoded bytes) is cut short; None if it is not.

    A PNG must end with its ``IEND`` chunk and a JPEG with its end-of-image
    marker (``FF D9``), found among the last :data:`IMAGE_END_WINDOW` bytes:
    decoders fill the rest of a cut image in silently (libjpeg with only a
    warning). Other formats are not looked at (their readers fail on cut data).

    Raises:
        OSError: The file cannot be read.
    """
    if isinstance(source, (bytes, bytearray)):
        head, tail = bytes(source[:8]), bytes(source[-IMAGE_END_WINDOW:])
    else:
        with open(source, 'rb') as f:
            head = f.read(8)
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - IMAGE_END_WINDOW))
            tail = f.read()
    if head.startswith(b'\x89PNG') and b'IEND' not in tail:
        return 'truncated PNG (no IEND chunk at the end): the file is cut short or corrupt'
    if head.startswith(b'\xff\xd8') and b'\xff\xd9' not in tail:
        return 'truncated JPEG (no end-of-image marker): the file is cut short or corrupt'
    return None


def first_line(err: BaseException) -> str:
    """The first line of an error's message, for one-line reports.

    A ``KeyError``'s key without the quotes ``str`` adds; the error's type
    name when the message is empty.
    """
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    text = text.strip()
    return text.splitlines()[0] if text else type(err).__name__


def output_dir_problem(path: PathLike) -> Optional[str]:
    """Why files cannot be written into the folder ``path`` (None: they can).

    The folder, or the nearest folder above it that exists (the tools create
    the missing ones), must be a folder in which a file can be created: a
    test file is created and removed there, so that a read-only file system
    is found also when running as root. Nothing else is created.
    """
    path = os.fspath(path) or '.'
    existing = path
    while not osp.exists(existing):
        parent = osp.dirname(osp.abspath(existing))
        if parent == osp.abspath(existing):
            break
        existing = parent
    if not osp.isdir(existing):
        return f'{existing} is a file, not a folder'
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix='.write_test_')
    except OSError as err:
        return f'{existing} is not writable ({err.strerror or err})'
    os.close(fd)
    os.remove(probe)
    return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path: PathLike) -> Iterator[str]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    The caller writes the complete file to the yielded path (by any means).
    """
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        if osp.lexists(tmp):
            os.remove(tmp)
        raise


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``.

    Readers never see a partly written file; on failure nothing is left behind.
    """
    with atomic_output(path) as tmp:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode('utf-8'))


def atomic_symlink(target: str, link: PathLike) -> None:
    """Point the symlink ``link`` at ``target`` atomically (new link, then ``os.replace``)."""
    link = os.fspath(link)
    folder = osp.dirname(osp.abspath(link))
    tmp = osp.join(folder, f'.{osp.basename(link)}.{os.getpid()}.tmp')
    if osp.lexists(tmp):
        os.remove(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        if osp.lexists(tmp):
            os.remove(tmp)
        raise


def atomic_save_checkpoint(save_fn: Callable[[str], None], path: PathLike) -> None:
    """Run ``save_fn(tmp_path)`` (e.g. mmcv's ``save_checkpoint``) and move the result to ``path``.

    Args:
        save_fn: Writes the whole checkpoint to the path it is given.
        path: The checkpoint's final path.
    """
    with atomic_output(path) as tmp:
        save_fn(tmp)
