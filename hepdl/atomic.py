"""Atomic outputs: a file appears complete under its name, or not at all (DESIGN.md's stage contract).

Every JSON, scores file, plot, model and BDT file of hepdl is written through :func:`atomic_path`;
ROOT files through :class:`hepdl.io.TreeWriter`, prepared shards as whole directories.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


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
