"""Candidate pairs from a banded LSH index over frame hashes, and the time-aligned comparison.

**Index.** Each usable frame hash gives ``BANDS`` bands of ``BAND_BITS`` bits (the 64 bits in
two fixed random orders, each cut into four: every bit is in two bands), for the uncropped
frame and each stored crop; each band value, together with the frame's coarse mean colour (on
two grids offset by half a step, so a small colour change never misses both), is a key. Media
that share at least ``min_shared`` (2) keys become a candidate pair. Two copies share many keys
(several bands of several frames and crops), unrelated media rarely more than one. Buckets
larger than ``max_bucket`` (a band value shared by very many media: flat frames, a common
logo) are skipped; the pairs they hold are almost always found through other keys. The work
grows with the number of media and the candidates, never with all pairs of media.

**Comparison.** Two signatures on the same time grid are compared at every shift that leaves
at least ``min_overlap`` of the shorter one's usable frames aligned, and at every stored crop of
either side: the structure distance is the mean of ``1 - cosine`` of the aligned frames' DCT
vectors, the colour distance the mean absolute difference of their thumbnails; the shift and
crop with the lowest ``distance / max_distance + colour / max_colour`` win, and the pair is a
near-duplicate when both are within their thresholds. Sequences on grids
that differ by a power of two are first brought to the coarser grid (every phase is tried).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from dataprep.audit.signatures import CROPS, Signature, hash_bits

BANDS = 8
BAND_BITS = 16
DEFAULT_MAX_BUCKET = 256
DEFAULT_MIN_SHARED = 2  # keys two media must share to be compared
COLOUR_STEP = 32.0  # coarse mean colour levels in the keys (two grids offset by half)
DEFAULT_MAX_DISTANCE = 0.15  # mean structure distance (1 - cosine) of a near-duplicate
DEFAULT_MAX_COLOUR = 4.5  # mean absolute thumbnail difference (of 255) of a near-duplicate
DEFAULT_MIN_OVERLAP = 0.8  # of the shorter sequence's usable frames

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise Hamming distance of two uint64 arrays (broadcasting)."""
    x = np.bitwise_xor(a, b)
    return _POPCOUNT[x.view(np.uint8).reshape(*x.shape, 8)].sum(axis=-1)


def _colour_bins(thumbs: np.ndarray, grid: int) -> np.ndarray:
    """Coarse mean colour of each frame on one of two grids offset by half a step."""
    mean = thumbs.reshape(len(thumbs), -1, 3).mean(axis=1) + grid * COLOUR_STEP / 2
    levels = np.floor(mean / COLOUR_STEP).astype(np.uint64)
    return (levels[:, 0] << np.uint64(8)) | (levels[:, 1] << np.uint64(4)) | levels[:, 2]


def _band_bits() -> np.ndarray:
    """``[BANDS, BAND_BITS]`` bit positions of each band: the 64 bits in two fixed random
    orders, each cut into four disjoint bands, so every bit is in two bands."""
    rng = np.random.default_rng(64)
    orders = [rng.permutation(64) for _ in range(BANDS * BAND_BITS // 64)]
    return np.concatenate(orders).reshape(BANDS, BAND_BITS)


_BANDS = _band_bits()


def band_keys(signatures: list[Signature]) -> tuple[np.ndarray, np.ndarray]:
    """``(keys, owner)``: one key per (media, band, colour grid, distinct value) of the usable
    frames and their crops; a key packs the band and grid numbers, the frame's coarse mean
    colour and the band's bits. ``owner`` is the position in ``signatures``."""
    coefs, thumbs, owner = [], [], []
    for position, signature in enumerate(signatures):
        usable = signature.usable
        if usable.any():
            coefs.append(signature.coefs[usable])
            thumbs.append(signature.thumbs[usable])
            owner.append(np.full(int(usable.sum()), position, np.int64))
    if not coefs:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    coefs, thumbs, owner = np.concatenate(coefs), np.concatenate(thumbs), np.concatenate(owner)
    # every stored crop: a copy cropped by a few pixels meets the matching crop of its source
    hashes = np.concatenate([hash_bits(coefs[:, k]) for k in range(len(CROPS))])
    thumbs = np.concatenate([thumbs[:, k] for k in range(len(CROPS))])
    owner = np.tile(owner, len(CROPS))
    bits = np.unpackbits(hashes.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)
    weights = (1 << np.arange(BAND_BITS, dtype=np.uint64)[::-1]).astype(np.uint64)
    keys, owners = [], []
    for grid in (0, 1):
        colour = _colour_bins(thumbs, grid) << np.uint64(BAND_BITS)
        for band in range(BANDS):
            value = bits[:, _BANDS[band]].astype(np.uint64) @ weights
            keys.append(value | colour | np.uint64((band * 2 + grid) << 40))
            owners.append(owner)
    keys, owners = np.concatenate(keys), np.concatenate(owners)
    order = np.lexsort((owners, keys))
    keys, owners = keys[order], owners[order]
    first = np.r_[True, (keys[1:] != keys[:-1]) | (owners[1:] != owners[:-1])]
    return keys[first], owners[first]


def candidate_pairs(
    signatures: list[Signature],
    max_bucket: int = DEFAULT_MAX_BUCKET,
    min_shared: int = DEFAULT_MIN_SHARED,
) -> Iterator[tuple[int, int]]:
    """Distinct pairs ``(i, j)``, ``i < j``, of positions sharing at least ``min_shared`` keys
    (a copy shares many: every band of several frames and crops; a chance collision, one)."""
    keys, owners = band_keys(signatures)  # sorted by key, then owner
    if not len(keys):
        return
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    sizes = ends - starts
    shared: dict[tuple[int, int], int] = {}
    for start, end in zip(starts[sizes > 1], ends[sizes > 1], strict=True):
        if end - start > max_bucket:
            continue
        members = owners[start:end].tolist()
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                pair = (members[a], members[b])
                shared[pair] = shared.get(pair, 0) + 1
    yield from sorted(pair for pair, count in shared.items() if count >= min_shared)


@dataclass(frozen=True)
class Match:
    """The best alignment of two signatures."""

    distance: float  # mean structure distance (1 - cosine, 0..2) of the aligned usable frames
    colour: float  # mean absolute difference (0..255) of their colour thumbnails
    frames: int  # aligned usable frames compared
    first: tuple[int, int]  # decoder frame range of the overlap in the first media
    second: tuple[int, int]  # ... and in the second
    crop: float  # the centre crop (fraction of a side) that matched, of the larger-view media


def _on_grid(signature: Signature, step: int, phase: int) -> tuple[np.ndarray, ...]:
    take = slice(phase, None, step)
    return (
        signature.coefs[take].astype(np.float32) / 127.0,
        signature.thumbs[take].astype(np.float32),
        signature.usable[take],
        signature.frame_index[take],
    )


def _variants(a: Signature, b: Signature) -> Iterator[tuple[tuple, tuple]]:
    """Both sequences on a common grid: the finer one resampled at every phase."""
    if a.rate == b.rate or not a.rate or not b.rate:
        yield _on_grid(a, 1, 0), _on_grid(b, 1, 0)
        return
    ratio = max(a.rate, b.rate) / min(a.rate, b.rate)
    step = int(round(ratio))
    if abs(step - ratio) > 1e-6 or step > 64:
        yield _on_grid(a, 1, 0), _on_grid(b, 1, 0)
        return
    for phase in range(step):
        if a.rate > b.rate:
            yield _on_grid(a, step, phase), _on_grid(b, 1, 0)
        else:
            yield _on_grid(a, 1, 0), _on_grid(b, step, phase)


def _levels() -> list[tuple[int, int]]:
    """Crop level pairs compared: the uncropped view of one against every crop of the other."""
    return (
        [(0, 0)] + [(k, 0) for k in range(1, len(CROPS))] + [(0, k) for k in range(1, len(CROPS))]
    )


def _mean_colours(signature: Signature) -> np.ndarray:
    """``[crops, 3]`` mean RGB of the usable frames' thumbnails, per crop."""
    thumbs = signature.thumbs[signature.usable].astype(np.float32)
    return thumbs.reshape(len(thumbs), len(CROPS), -1, 3).mean(axis=(0, 2))


def _colour_apart(a: Signature, b: Signature, max_colour: float) -> bool:
    """True when the media's mean colours alone rule a near-duplicate out. The mean absolute
    thumbnail difference of two frames is at least the mean over channels of the difference of
    their mean colours; for whole media (where alignment may leave frames out) the test keeps a
    margin of two."""
    ma, mb = _mean_colours(a), _mean_colours(b)
    gap = min(float(np.abs(ma[ka] - mb[kb]).mean()) for ka, kb in _levels())
    margin = 1.0 if len(a) == 1 and len(b) == 1 else 2.0
    return gap > margin * max_colour


def compare(
    a: Signature,
    b: Signature,
    *,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    max_colour: float = DEFAULT_MAX_COLOUR,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
) -> Match | None:
    """The best time alignment and crop of two signatures: the one minimizing
    ``distance / max_distance + colour / max_colour`` among the shifts that overlap at least
    ``min_overlap`` of the shorter sequence's usable frames (None when none does)."""
    if _colour_apart(a, b, max_colour):
        return None
    best: tuple[float, Match] | None = None
    for (ca, ta, ua, fa), (cb, tb, ub, fb) in _variants(a, b):
        n, m = len(ua), len(ub)
        if not ua.any() or not ub.any():
            continue
        valid = (ua[:, None] & ub[None, :]).ravel()
        diagonal = (np.arange(n)[:, None] - np.arange(m)[None, :] + (m - 1)).ravel()
        count = np.bincount(diagonal, weights=valid, minlength=n + m - 1)
        need = max(1, math.ceil(min_overlap * min(int(ua.sum()), int(ub.sum()))))
        ok = count >= need
        if not ok.any():
            continue
        for ka, kb in _levels():
            structure = (1.0 - ca[:, ka] @ cb[:, kb].T).ravel()
            colour = np.abs(ta[:, ka][:, None, :] - tb[:, kb][None, :, :]).mean(axis=-1).ravel()
            s_sum = np.bincount(diagonal, weights=structure * valid, minlength=n + m - 1)
            c_sum = np.bincount(diagonal, weights=colour * valid, minlength=n + m - 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                cost = s_sum / count / max_distance + c_sum / count / max_colour
            cost[~ok] = np.inf
            k = int(np.argmin(cost))
            if best is not None and cost[k] >= best[0]:
                continue
            shift = k - (m - 1)
            i = np.arange(max(0, shift), min(n, m + shift))
            j = i - shift
            keep = ua[i] & ub[j]
            i, j = i[keep], j[keep]
            match = Match(
                float(s_sum[k] / count[k]),
                float(c_sum[k] / count[k]),
                int(count[k]),
                (int(fa[i[0]]), int(fa[i[-1]])),
                (int(fb[j[0]]), int(fb[j[-1]])),
                CROPS[max(ka, kb)],
            )
            best = (float(cost[k]), match)
    return best[1] if best else None


def is_near_duplicate(
    match: Match | None,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    max_colour: float = DEFAULT_MAX_COLOUR,
) -> bool:
    """A match within both thresholds."""
    return match is not None and match.distance <= max_distance and match.colour <= max_colour


def similarity(match: Match) -> float:
    """A score in [0, 1]: the mean cosine of the aligned frames' structure."""
    return max(0.0, 1.0 - match.distance)
