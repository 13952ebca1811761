"""Atomic outputs: a file appears complete under its name, or not at all (DESIGN.md's stage contract).

Every JSON, scores file, plot, model, BDT and ONNX file of hepdl is written through
:func:`atomic_path`, every shard directory (prepared, autoencoder features) through
:func:`atomic_dir`; ROOT files through :class:`hepdl.io.TreeWriter`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from hepdl.errors import InputError


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
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
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
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        yield tmp
        if os.path.isdir(path):
            trash = os.path.join(parent, f".{os.path.basename(path)}.old-{os.getpid()}")
            os.replace(path, trash)
            os.replace(tmp, path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
