"""Rank statistics without scipy: mid-ranks, Spearman's rho and Kendall's tau-b in O(n log n).

One run scores many models against one target, so the target is ranked once
(``rank_target``) and each model costs a single sort: its values and the target's tie-group
index packed into one 64-bit key. That sorted key gives the model's mid-ranks (for SROCC) and
the target's order within the model's order (for KROCC's discordant pairs) at once. Sums run
in chunks of float64, so no full-length float64 temporary is made at 10M rows.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["TargetRanks", "count_inversions", "mid_ranks", "rank_correlations", "rank_target"]

_CHUNK = 1 << 16  # rows per float64 chunk: 512 KB temporaries, cache-sized
_BLOCK = 32  # the inversion counter compares every pair inside blocks of this many values
_SLOT_CHUNK = 1 << 16  # keys scanned at once for their slots (cache-sized int64 temporaries)


@dataclass(frozen=True, eq=False)
class TargetRanks:
    """The target's ties, ranked once per run.

    ``groups[i]`` numbers row i's tie group in value order (0 = smallest); group g occupies
    sorted positions ``starts[g]`` to ``starts[g + 1] - 1``, so its mid-rank (1-based) is
    ``(starts[g] + starts[g + 1] + 1) / 2``.
    """

    groups: np.ndarray  # uint32 [n]
    starts: np.ndarray  # int32 (int64 from 2**30 rows) [number of groups + 1], last = n
    tie_pairs: int  # pairs of rows with equal target
    spread: float  # sum of (mid-rank - (n + 1) / 2) ** 2

    @property
    def n(self) -> int:
        return int(self.groups.size)

    def centred_mid_ranks(self, groups: np.ndarray) -> np.ndarray:
        """Mid-rank minus (n + 1) / 2 of the rows whose group numbers are ``groups``."""
        g = groups.astype(np.intp)
        return np.asarray((self.starts[g] + self.starts[g + 1] + 1 - (self.n + 1)) * 0.5)


def _pairs(sizes: np.ndarray) -> int:
    sizes = sizes.astype(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def rank_target(values: np.ndarray) -> TargetRanks:
    """Tie groups and mid-rank constants of the target (finite values, any float dtype).

    Ranked once per run, usually while the first model's predictions are held, so the
    temporaries are kept few: at 10M rows the sort order (80 MB) is the largest.
    """
    y = np.asarray(values).reshape(-1)
    n = y.size
    if n >= 2**32:
        raise ValueError(f"{n} rows: at most 2**32 - 1 can be ranked")
    # Equal values share a group whatever their order, so the sort need not be stable:
    # numpy's default argsort is vectorised (AVX2/AVX-512), about 5x the stable one here.
    order = np.argsort(y)
    ordered = y[order]
    new_group = ordered[1:] != ordered[:-1]  # position k + 1 starts a group
    del ordered
    groups = np.empty(n, dtype=np.uint32)
    if n:
        ids = np.empty(n, dtype=np.uint32)
        ids[0] = 0
        np.cumsum(new_group, out=ids[1:])
        groups[order] = ids
        del ids
    del order
    changes = np.flatnonzero(new_group)
    del new_group
    starts = np.empty(changes.size + 2, dtype=np.int32 if n < 2**30 else np.int64)
    starts[0], starts[-1] = 0, n
    np.add(changes, 1, out=starts[1:-1], casting="unsafe")
    del changes
    sizes = np.diff(starts)
    tied = sizes[sizes > 1].astype(np.float64)
    # Ranks 1..n spread n (n^2 - 1) / 12 around their centre; a tie group of s rows, all
    # given their mean rank, loses the (s^3 - s) / 12 that its ranks spread around that mean.
    spread = (float(n) ** 3 - n - float((tied**3 - tied).sum())) / 12.0
    return TargetRanks(
        groups=groups, starts=starts, tie_pairs=_pairs(tied.astype(np.int64)), spread=spread
    )


def mid_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (scipy's rankdata 'average')."""
    ranks = rank_target(values)
    return ranks.centred_mid_ranks(ranks.groups) + (ranks.n + 1) / 2.0


def _monotone_bits(x: np.ndarray, out: np.ndarray) -> None:
    """uint32 keys ordered as the values, written into ``out`` (uint32, may be strided):
    float32 bits when every value is a float32, else dense ranks (exact for any float64
    input, at the price of one more sort)."""
    x32 = out.view(np.float32)
    x32[...] = x  # float32 input: copied as it is; float64: rounded as astype rounds
    if x.dtype == np.float32 or np.array_equal(x32, x):
        x32 += np.float32(0.0)  # -0.0 becomes +0.0, which it equals
        negative = out >= np.uint32(0x80000000)
        # Negative floats sort backwards as integers: flip all their bits; flip only the
        # sign bit of the others, so that every negative key is below every positive one.
        out ^= np.uint32(0x80000000)
        np.bitwise_xor(out, np.uint32(0x7FFFFFFF), out=out, where=negative)
        return
    out[...] = rank_target(x).groups


def _aligned_chunks(new_group: np.ndarray, n: int) -> Iterator[tuple[int, int]]:
    """Ranges of about _CHUNK positions that never split a run (new_group[k]: k starts one)."""
    start = 0
    while start < n:
        stop = min(start + _CHUNK, n)
        while stop < n and not new_group[stop]:
            found = np.flatnonzero(new_group[stop : stop + _CHUNK])
            stop = stop + int(found[0]) if found.size else min(stop + _CHUNK, n)
        yield start, stop
        start = stop


def rank_correlations(x: np.ndarray, target: TargetRanks) -> tuple[float, float]:
    """Spearman's rho (Pearson's r of mid-ranks) and Kendall's tau-b of ``x`` against the
    ranked target; NaN when n < 3 or either side is constant."""
    n = int(x.size)
    if n != target.n:
        raise ValueError(f"arrays differ in length: {sorted({n, target.n})}")
    if n < 3 or target.starts.size <= 2:
        return math.nan, math.nan
    # Each 64-bit key is written as its two 32-bit halves (strided views, no temporaries):
    # the model's value bits high, the target's group low.
    key = np.empty(n, dtype=np.uint64)
    halves = key.view(np.uint32).reshape(n, 2)
    low, high = (0, 1) if sys.byteorder == "little" else (1, 0)
    _monotone_bits(np.asarray(x).reshape(-1), halves[:, high])
    halves[:, low] = target.groups
    key.sort()
    new_x = np.empty(n + 1, dtype=bool)  # k starts a run of equal x (n: the end)
    new_x[0] = new_x[n] = True
    np.not_equal(halves[1:, high], halves[:-1, high], out=new_x[1:n])
    y_groups = _packed_low_halves(key.view(np.uint32), low)
    del key, halves
    if new_x[1:n].sum() == 0:
        return math.nan, math.nan

    # Spearman: sum over x-runs of (its mid-rank - centre) * (sum of the target's centred
    # mid-ranks in the run), and the x side's spread, a chunk of whole runs at a time.
    centre = (n + 1) / 2.0
    cross = spread_x = 0.0
    x_ties = joint_ties = 0
    for a, b in _aligned_chunks(new_x, n):
        starts = np.flatnonzero(new_x[a:b])
        sizes = np.diff(np.append(starts, b - a))
        mids = (2 * (starts + a) + sizes + 1) * 0.5 - centre
        sums = np.add.reduceat(target.centred_mid_ranks(y_groups[a:b]), starts)
        cross += float((mids * sums).sum())  # not `@`: BLAS threads would wake for 64k rows
        spread_x += float((sizes * mids * mids).sum())
        x_ties += _pairs(sizes)
        same_y = y_groups[a + 1 : b] == y_groups[a : b - 1]
        same_y &= ~new_x[a + 1 : b]  # equal x and equal target: a joint tie
        joint = np.flatnonzero(np.concatenate([[True], ~same_y, [True]]))
        joint_ties += _pairs(np.diff(joint))
    rho = cross / math.sqrt(spread_x * target.spread)

    # Kendall: rows in (x, target) order; a pair i < j with target_i > target_j is discordant
    # (equal x sorted the target ascending, so x ties never count).
    discordant = count_inversions(y_groups.view(np.int32) if n < 2**30 else y_groups, True)
    del y_groups
    total = n * (n - 1) // 2
    denominator = math.sqrt(float(total - x_ties) * float(total - target.tie_pairs))
    numerator = total - x_ties - target.tie_pairs + joint_ties - 2 * discordant
    tau = numerator / denominator
    return max(-1.0, min(1.0, rho)), max(-1.0, min(1.0, tau))


def _packed_low_halves(words: np.ndarray, low: int) -> np.ndarray:
    """``words[low::2]`` moved to the front of ``words`` itself, and returned as a view of
    it: at 10M rows that saves a 40 MB copy at the peak of ranking a model. Ascending
    chunks of _SLOT_CHUNK: a chunk's sources lie at or after twice its start, past every
    word written before it (only the first chunk overlaps its own sources, which numpy
    buffers)."""
    n = words.size // 2
    for begin in range(0, n, _SLOT_CHUNK):
        stop = min(begin + _SLOT_CHUNK, n)
        words[begin:stop] = words[2 * begin + low : 2 * stop : 2]
    return words[:n]


def count_inversions(values: np.ndarray, overwrite: bool = False) -> int:
    """Pairs i < j with values[i] > values[j] (strictly), for integers in [0, 2**30).

    Bottom-up merging: every pair inside blocks of _BLOCK values is compared directly; then
    sorted runs of width w are merged in pairs, a whole level in one row-wise sort of keys
    value * 2 + (1 for the right run), so equal values keep left before right and are not
    counted. A right element that lands in slot s as the k-th right element has s - k left
    elements before it, so w - s + k after it. A run without a partner waits for the next
    level; no padding. ``overwrite`` lets the caller's array be sorted in place.
    """
    a = np.asarray(values).reshape(-1)
    if a.size and (int(a.min()) < 0 or int(a.max()) >= 2**30):
        raise ValueError("count_inversions needs integers in [0, 2**30)")
    dtype = np.int32 if a.size < 2**30 else np.int64
    if not overwrite or a.dtype != dtype:
        a = a.astype(dtype)
    n = a.size
    if n < 2:
        return 0
    total = 0
    whole = n - n % _BLOCK
    for part in (a[:whole].reshape(-1, _BLOCK), a[whole:].reshape(1, -1)):
        for k in range(1, part.shape[1]):
            total += int(np.count_nonzero(part[:, :-k] > part[:, k:]))
        part.sort(axis=1)
    width = _BLOCK
    while width < n:
        span = 2 * width
        paired = n - n % span
        if paired:
            runs = a[:paired].reshape(-1, span)
            runs <<= 1
            runs[:, width:] |= 1
            # numpy's default sort (vectorised, AVX2/AVX-512) beats timsort's linear merge
            # of the two sorted runs at every width measured (64 to 256k keys a row). Equal
            # keys are interchangeable, so stability does not matter.
            runs.sort(axis=1)
            slots = _right_slots(a[:paired], span)
            total += (paired // span) * (width * width + width * (width - 1) // 2) - slots
            runs >>= 1
        tail = a[paired:]
        if tail.size > width:  # a full run and a shorter one: merge them too
            left, right = tail[:width], tail[width:]
            for begin in range(0, right.size, _SLOT_CHUNK):  # int64 slots: cache-sized
                chunk = right[begin : begin + _SLOT_CHUNK]
                found = np.searchsorted(left, chunk, side="right")
                total += width * chunk.size - int(found.sum())
            tail.sort()
        width = span
    return total


def _right_slots(keys: np.ndarray, span: int) -> int:
    """Sum over odd keys of their slot (position modulo ``span``). Each run of ``span`` keys
    holds exactly span / 2 odd ones, so that is the sum of their positions minus span / 2
    times the sum of each run's start. Integer dot products: exact, and no BLAS threads."""
    positions = 0
    steps = np.arange(min(keys.size, _SLOT_CHUNK), dtype=np.int64)
    for begin in range(0, keys.size, _SLOT_CHUNK):
        odd = (keys[begin : begin + _SLOT_CHUNK] & 1).astype(np.int64)
        positions += int(np.dot(odd, steps[: odd.size])) + begin * int(np.count_nonzero(odd))
    runs = keys.size // span
    return positions - (span // 2) * span * (runs * (runs - 1) // 2)
