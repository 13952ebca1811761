"""Atomic outputs: complete under the final name, or absent; an older file survives a failure."""

from __future__ import annotations

import os

import pytest

from hepdl.atomic import atomic_path, atomic_write_text


def test_the_file_appears_only_when_the_block_ends(tmp_path):
    out = tmp_path / "sub" / "metrics.json"
    with atomic_path(out, ".json") as tmp:
        assert tmp.endswith(".json") and os.path.dirname(tmp) == str(out.parent)
        assert os.path.basename(tmp).startswith(".")  # hidden from globs for outputs
        with open(tmp, "w") as f:
            f.write("{}")
        assert not out.exists()
    assert out.read_text() == "{}"
    assert os.listdir(out.parent) == ["metrics.json"]


def test_a_failure_keeps_the_older_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "scores.txt"
    atomic_write_text(out, "old")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("killed mid-write")
    assert out.read_text() == "old"
    assert os.listdir(tmp_path) == ["scores.txt"]
