"""Describe what a ROOT file holds, so that a user can write the field mapping for it."""

from __future__ import annotations

import os

from hepdl.io.layouts import describe_layout, is_layout_file
from hepdl.io.read import _TREE_CLASSES, expand_paths, open_root_file, open_tree


def _branch_type(obj, key: str) -> str:
    try:
        branch = obj[key]
        return getattr(branch, "typename", None) or str(branch.to_akform()[0].type)
    except Exception:  # an exotic branch must not stop the listing of the others
        return "?"


def describe_file(path: str | os.PathLike, *, filter_name: str | None = None) -> str:
    """Text listing of the trees and RNTuples in ``path``: entries, branches and their types.

    NanoAOD-style collections (``nX`` + ``X_*``) are marked, since each can be read as one field.
    """
    (path,) = expand_paths([path])
    if is_layout_file(path):
        return describe_layout(path, filter_name)
    _, classes = open_root_file(path)
    lines = [f"{path}"]
    trees = sorted({(k.split(";")[0], c) for k, c in classes.items() if c in _TREE_CLASSES})
    if not trees:
        lines.append("  no TTree or RNTuple in this file")
    for name, cls in trees:
        obj = open_tree(path, name)
        keys = [k for k in obj.keys() if "." not in k and "/" not in k]
        kind = "RNTuple" if "RNTuple" in cls else "TTree"
        lines.append(f"  {kind} {name!r}: {obj.num_entries} entries, {len(keys)} branches")
        collections = sorted(k[1:] for k in keys if k.startswith("n") and any(x.startswith(k[1:] + "_") for x in keys))
        if collections:
            lines.append(f"    collections (read one as a field, e.g. {{jets: {collections[0]}}}): {', '.join(collections)}")
        width = max((len(k) for k in keys), default=0)
        for k in keys:
            if filter_name and filter_name not in k:
                continue
            lines.append(f"    {k:<{width}}  {_branch_type(obj, k)}")
    return "\n".join(lines)
