"""Atomic outputs: complete under the final name, or absent; an older file survives a failure."""

from __future__ import annotations

import os

import pytest

from hepdl.atomic import atomic_dir, atomic_path, atomic_write_text
from hepdl.errors import InputError, OutputError


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


def test_a_directory_is_replaced_whole_or_not_at_all(tmp_path):
    out = tmp_path / "shard"
    with atomic_dir(out) as tmp:
        assert os.path.basename(tmp).startswith(".") and os.path.dirname(tmp) == str(tmp_path)
        (tmp_path / os.path.basename(tmp) / "a.npy").write_text("first")
        assert not out.exists()
    assert os.listdir(out) == ["a.npy"]
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp_path / os.path.basename(tmp) / "b.npy").write_text("half")
        raise RuntimeError("killed mid-shard")
    assert os.listdir(out) == ["a.npy"] and os.listdir(tmp_path) == ["shard"]
    with atomic_dir(out) as tmp:
        (tmp_path / os.path.basename(tmp) / "c.npy").write_text("second")
    assert os.listdir(out) == ["c.npy"] and os.listdir(tmp_path) == ["shard"]  # the old one removed


def test_a_file_in_the_way_of_a_directory_is_named(tmp_path):
    (tmp_path / "shard").write_text("not a shard")
    with pytest.raises(InputError, match="shard: exists and is not a directory"), atomic_dir(tmp_path / "shard"):
        pass
    assert (tmp_path / "shard").read_text() == "not a shard"


def test_an_unwritable_output_is_one_error_naming_it_and_leaves_nothing(tmp_path):
    from test_bad_inputs import small_tmpfs

    with small_tmpfs(tmp_path / "ro", read_only=True) as ro:
        with pytest.raises(OutputError, match=rf"^cannot write {ro / 'sub' / 'm.json'}: read-only file system$"):
            atomic_write_text(ro / "sub" / "m.json", "{}")
        with pytest.raises(OutputError, match=rf"^cannot write {ro / 'shard'}: read-only file system$"), \
                atomic_dir(ro / "shard"):
            pass
    with small_tmpfs(tmp_path / "full", size="16k") as full:
        with pytest.raises(OutputError, match=rf"^cannot write {full / 'big.txt'}: no space left on device$"):
            atomic_write_text(full / "big.txt", "x" * 100_000)
        with pytest.raises(OutputError, match=rf"^cannot write {full / 'shard'}: no space left on device$"), \
                atomic_dir(full / "shard") as tmp, open(os.path.join(tmp, "a.npy"), "wb") as f:
            f.write(b"x" * 100_000)
        assert os.listdir(full) == []


def test_an_error_reading_an_input_inside_the_block_keeps_its_own_type(tmp_path):
    # Only errors of writing become OutputError: a missing input read in the block stays itself.
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "out.txt") as tmp:
        with open(tmp, "w") as f:
            f.write("half")
        open(tmp_path / "no-such-input.txt").close()
    assert os.listdir(tmp_path) == []
    (tmp_path / "out.txt").mkdir()
    with pytest.raises(OutputError, match="out.txt: it is a directory"), atomic_path(tmp_path / "out.txt"):
        pass
