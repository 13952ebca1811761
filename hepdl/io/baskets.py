"""Find the first basket of TTree branches that fails to decompress or deserialise, and name it.

Used by ``hepdl inspect --check`` (:mod:`hepdl.io.check`) and by the readers when a chunk
fails, so that the error names the branch and the basket rather than only the file.
"""

from __future__ import annotations

from collections.abc import Sequence

import uproot

from hepdl.errors import InputError


def one_line(err: BaseException) -> str:
    """uproot's messages span lines (file, object); the CLI promises one line."""
    return " ".join(str(err).split())


def _overlapping_baskets(branch, start: int, stop: int) -> list[tuple[int, int, int]]:
    out = []
    for i in range(branch.num_baskets):
        lo, hi = branch.basket_entry_start_stop(i)
        if lo < stop and hi > start:
            out.append((i, int(lo), int(hi)))
    return out


def decompress_error(name: str, branch, i: int, where: str) -> InputError | None:
    """The error for basket ``i`` of ``branch`` if its bytes do not decompress."""
    try:
        branch.basket(i)
    except Exception as err:  # noqa: BLE001 -- damaged bytes raise anything (zlib.error, ValueError, ...)
        lo, hi = branch.basket_entry_start_stop(i)
        return InputError(f"{where}: branch {name!r}, basket {i} (entries {lo}..{hi - 1}): cannot be "
                          f"decompressed, the file is corrupt ({type(err).__name__}: {one_line(err)})")
    return None


def first_bad_basket(name: str, branch, start: int, stop: int, where: str) -> InputError | None:
    """The error naming the first basket of ``branch`` in entries [start, stop) that fails."""
    for i, lo, hi in _overlapping_baskets(branch, start, stop):
        at = f"{where}: branch {name!r}, basket {i} (entries {lo}..{hi - 1})"
        found = decompress_error(name, branch, i, where)
        if found is not None:
            return found
        try:
            branch.array(entry_start=lo, entry_stop=hi, library="ak", array_cache=None)
        except Exception as err:  # noqa: BLE001
            return InputError(f"{at}: cannot be deserialised, the file is corrupt or the type is one uproot "
                              f"cannot read ({type(err).__name__}: {one_line(err)})")
    return None


def locate_damage(obj, names: Sequence[str], start: int, stop: int, where: str) -> InputError | None:
    """The first basket of ``names`` (TTree branches) in entries [start, stop) that fails, or None."""
    if not isinstance(obj, uproot.behaviors.TBranch.HasBranches):
        return None
    for name in names:
        try:
            branch = obj[name]
        except Exception:  # noqa: BLE001,S112 -- a branch that cannot be found is not the damage to name
            continue
        found = first_bad_basket(name, branch, start, stop, where)
        if found is not None:
            return found
    return None
