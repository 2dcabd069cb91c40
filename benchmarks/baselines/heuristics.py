"""First Fit Decreasing and Best Fit Decreasing for vector bin packing, vectorised over bins.

Items are sorted (stable, descending) by a size key on capacity-normalised sizes: `max` (the
largest normalised dimension, L-infinity) or `sum` (L1). Fit checks are exact integer
comparisons; one numpy operation per item tests every open bin at once.
  FFD: the first open bin (lowest index) that fits, else a new bin.
  BFD: the fitting bin whose residual capacity after placing the item is smallest, measured by
       the same key on normalised residuals; ties go to the lowest index; else a new bin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

KEYS = ("max", "sum")


@dataclass(frozen=True)
class Packing:
    name: str
    bin_of: np.ndarray  # int64[item]; -1 = unplaced (an item larger than the bin)

    @property
    def bins(self) -> int:
        placed = self.bin_of[self.bin_of >= 0]
        return int(np.unique(placed).size)

    @property
    def complete(self) -> bool:
        return bool((self.bin_of >= 0).all())


def _key(norm: np.ndarray, key: str) -> np.ndarray:
    if key == "max":
        return norm.max(axis=-1)
    if key == "sum":
        return norm.sum(axis=-1)
    raise ValueError(f"unknown sort key {key!r}: expected one of {KEYS}")


def _order(capacity: np.ndarray, sizes: np.ndarray, key: str) -> np.ndarray:
    norm = sizes / np.maximum(capacity, 1)
    return np.argsort(-_key(norm, key), kind="stable")


def _pack(capacity: np.ndarray, sizes: np.ndarray, key: str, best: bool) -> np.ndarray:
    n, d = sizes.shape
    load = np.zeros((max(n, 1), d), dtype=np.int64)  # [bin, dim]; first `opened` rows in use
    opened = 0
    bin_of = np.full(n, -1, dtype=np.int64)
    scale = 1.0 / np.maximum(capacity, 1)
    for i in _order(capacity, sizes, key).tolist():
        w = sizes[i]
        if (w > capacity).any():
            continue
        after = load[:opened] + w  # [bin, dim]
        fits = np.all(after <= capacity, axis=1)
        if fits.any():
            if best:
                slack = _key((capacity - after) * scale, key)
                slack[~fits] = np.inf
                b = int(np.argmin(slack))
            else:
                b = int(np.argmax(fits))
        else:
            b = opened
            opened += 1
        load[b] += w
        bin_of[i] = b
    return bin_of


def ffd(capacity: np.ndarray, sizes: np.ndarray, key: str = "max") -> Packing:
    return Packing(f"FFD-{key}", _pack(capacity, sizes, key, best=False))


def bfd(capacity: np.ndarray, sizes: np.ndarray, key: str = "max") -> Packing:
    return Packing(f"BFD-{key}", _pack(capacity, sizes, key, best=True))


HEURISTICS: dict[str, Callable[[np.ndarray, np.ndarray], Packing]] = {
    "FFD-max": lambda c, s: ffd(c, s, "max"),
    "FFD-sum": lambda c, s: ffd(c, s, "sum"),
    "BFD-max": lambda c, s: bfd(c, s, "max"),
    "BFD-sum": lambda c, s: bfd(c, s, "sum"),
}
