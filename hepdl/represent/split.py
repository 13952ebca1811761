"""Deterministic train/validation/test split from a seed and each entry's identity.

An entry is identified by its source file's basename and its entry index in that
file, so the split is the same whatever the chunking, the sharding or the order in
which files are prepared.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from hepdl.errors import ConfigError

SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    # Arrays only: numpy integer arrays wrap silently, as this hash needs.
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    f = tuple(float(x) for x in fractions)
    if len(f) != 3 or min(f) < 0 or abs(sum(f) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must be three non-negative numbers summing to 1, not {list(fractions)}")
    return f  # type: ignore[return-value]


def assign_split(
    source: str,
    entries: np.ndarray,
    seed: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> np.ndarray:
    """Split code (0 train, 1 validation, 2 test) of ``entries`` of the file named ``source``, uint8."""
    f = check_fractions(fractions)
    digest = hashlib.blake2b(f"{int(seed)}\0{source}".encode(), digest_size=8).digest()
    base = np.frombuffer(digest, dtype="<u8")[0]
    h = _splitmix64(np.asarray(entries, dtype=np.uint64) ^ np.full(len(entries), base, dtype=np.uint64))
    u = (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return np.searchsorted(np.cumsum(f)[:2], u, side="right").astype(np.uint8)
