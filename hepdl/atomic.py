"""Atomic outputs: a file appears complete under its name, or not at all (DESIGN.md's stage contract).

An output that cannot be written (read-only file system, full disk, a parent that is a file)
raises :class:`~hepdl.errors.OutputError` ``cannot write PATH: cause``, nothing left behind.

Every JSON, scores file, plot, model, BDT and ONNX file of hepdl is written through
:func:`atomic_path`, every shard directory (prepared, autoencoder features) through
:func:`atomic_dir`; ROOT files through :class:`hepdl.io.TreeWriter`.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from hepdl.errors import InputError, OutputError

# Errors that only writing can cause, whichever file the OSError names.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG}


def os_error_cause(err: OSError) -> str:
    """``'read-only file system'`` from ``[Errno 30] Read-only file system: '/x'``."""
    cause = err.strerror or str(err) or type(err).__name__
    return cause[:1].lower() + cause[1:]


def output_error(path: str | os.PathLike, err: OSError) -> OutputError:
    """The one-line error for an output that cannot be written: the path and the cause."""
    return OutputError(f"cannot write {os.fspath(path)}: {os_error_cause(err)}")


def is_write_error(err: OSError, *temporaries: str | os.PathLike) -> bool:
    """Whether ``err`` came from writing: a write-only errno, or a file under one of ``temporaries``
    (an input that cannot be read must keep its own message)."""
    if err.errno in _WRITE_ERRNOS:
        return True
    if err.filename is None:
        return False
    name = os.path.abspath(os.fspath(err.filename))
    return any(name.startswith(os.path.abspath(os.fspath(t))) for t in temporaries)


def _make_parent(path: str, directory: str) -> None:
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as err:
        raise output_error(path, err) from None


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """A temporary name beside ``path``, renamed over ``path`` when the block ends without error.

    The temporary file is hidden (leading dot) in the same directory, so the rename is atomic
    and a glob for outputs never sees it; ``suffix`` ends its name for writers that choose the
    format by extension (``np.savez`` adds ``.npz``, XGBoost reads ``.json``). On an error the
    temporary file is removed and an older ``path`` stays as it was. The directory is created.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    _make_parent(path, directory)
    if os.path.isdir(path):
        raise OutputError(f"cannot write {path}: it is a directory")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if isinstance(err, OutputError) or not is_write_error(err, tmp, path):
            raise
        raise output_error(path, err) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> str:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
    return os.fspath(path)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[str]:
    """A hidden temporary directory beside ``path``, which replaces ``path`` when the block ends
    without error; on an error it is removed and an older ``path`` stays as it was.

    An existing directory at ``path`` is renamed aside, the new one renamed in, then the old one
    removed: readers see the old shard or the new one, never a mixture.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"{path}: exists and is not a directory")
    parent = os.path.dirname(os.path.abspath(path))
    _make_parent(path, parent)
    tmp = os.path.join(parent, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        os.makedirs(tmp)
    except OSError as err:
        raise output_error(path, err) from None
    try:
        yield tmp
        if os.path.isdir(path):
            trash = os.path.join(parent, f".{os.path.basename(path)}.old-{os.getpid()}")
            os.replace(path, trash)
            os.replace(tmp, path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as err:
        if isinstance(err, OutputError) or not is_write_error(err, tmp, path):
            raise
        raise output_error(path, err) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
