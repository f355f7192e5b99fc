"""Near-duplicate pairs, their clusters, leaks across splits, and the near-duplicate group keys
of ``dataprep split --group-by near-duplicates``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dataprep.audit.index import Match, candidate_pairs, compare, is_near_duplicate, similarity
from dataprep.audit.signatures import Signature, compute_signature, load_cache, save_cache

GROUP_BY = "near-duplicates"  # the value of split --group-by
CLUSTER_PREFIX = "dup:"
POOL_MIN_MEDIA = 64  # signatures to compute before a worker pool pays for its start


@dataclass(frozen=True)
class DupSettings:
    """Thresholds of a near-duplicate (see :func:`dataprep.audit.index.compare`)."""

    max_distance: float = 0.15
    max_colour: float = 4.5
    min_overlap: float = 0.8

    @classmethod
    def from_config(cls, audit_config) -> DupSettings:
        return cls(audit_config.dup_distance, audit_config.dup_colour, audit_config.dup_overlap)


@dataclass(frozen=True)
class Pair:
    """Two media that are near-duplicates (``first < second``)."""

    first: str
    second: str
    match: Match

    @property
    def score(self) -> float:
        return similarity(self.match)


def _signature_job(row: dict[str, Any]) -> Signature:
    return compute_signature(
        row["media_id"],
        row["path"],
        kind=row["kind"],
        duration_s=row.get("duration_s"),
        width=row.get("width"),
        height=row.get("height"),
    )


def media_signatures(
    workspace,
    media_rows: list[dict[str, Any]],
    *,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Signature]:
    """Signatures of the ok media, from the cache or computed (and then cached).

    ``jobs``: worker processes; None: all cores when at least ``POOL_MIN_MEDIA`` media are to
    be computed, else this process."""
    from dataprep.parallel import map_items

    cache = load_cache(workspace)
    todo = [row for row in media_rows if row["media_id"] not in cache]
    if jobs is None:  # a pool costs ~0.3 s to start: only for enough media to pay for it
        jobs = 1 if len(todo) < POOL_MIN_MEDIA else None
    total, done = len(media_rows), len(media_rows) - len(todo)
    if progress:
        progress(done, total)
    for signature in map_items(_signature_job, todo, jobs, chunksize=8):
        cache[signature.media_id] = signature
        done += 1
        if progress:
            progress(done, total)
    if todo:
        save_cache(workspace, cache)
    return {row["media_id"]: cache[row["media_id"]] for row in media_rows}


def find_pairs(
    signatures: dict[str, Signature],
    settings: DupSettings = DupSettings(),
    stats: dict[str, int] | None = None,
) -> list[Pair]:
    """Every near-duplicate pair among the signatures, via the LSH index (never all pairs).
    ``stats`` (when given) receives ``candidates``: the pairs compared."""
    ids = sorted(m for m, s in signatures.items() if len(s) and s.usable.any())
    ordered = [signatures[m] for m in ids]
    pairs = []
    compared = 0
    for i, j in candidate_pairs(ordered):
        compared += 1
        match = compare(
            ordered[i],
            ordered[j],
            max_distance=settings.max_distance,
            max_colour=settings.max_colour,
            min_overlap=settings.min_overlap,
        )
        if is_near_duplicate(match, settings.max_distance, settings.max_colour):
            first, second = sorted((ids[i], ids[j]))
            if first != ids[i]:  # keep frame ranges with their media
                match = Match(
                    match.distance, match.colour, match.frames, match.second, match.first,
                    match.crop,
                )  # fmt: skip
            pairs.append(Pair(first, second, match))
    if stats is not None:
        stats["candidates"] = compared
    return sorted(pairs, key=lambda p: (p.first, p.second))


def clusters(pairs: list[Pair]) -> dict[str, str]:
    """``{media_id: cluster}`` for every media in a pair: connected components, each named
    ``dup:<smallest media_id>``."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for pair in pairs:
        a, b = root(pair.first), root(pair.second)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {node: CLUSTER_PREFIX + root(node) for node in list(parent)}


def pair_findings(
    pairs: list[Pair], cluster_of: dict[str, str], split_of: dict[str, str], label_of: dict
) -> list[dict[str, Any]]:
    """Rows of the audit manifest: one ``near_duplicate`` per pair, and a ``leak`` per pair
    whose media sit in different splits."""
    rows = []
    for pair in pairs:
        a_split, b_split = split_of.get(pair.first), split_of.get(pair.second)
        m = pair.match
        base = {
            "media_id": pair.first,
            "other_media_id": pair.second,
            "cluster": cluster_of.get(pair.first),
            "split": a_split,
            "other_split": b_split,
            "label": label_of.get(pair.first),
            "frame_start": m.first[0],
            "frame_end": m.first[1],
            "other_frame_start": m.second[0],
            "other_frame_end": m.second[1],
            "score": round(pair.score, 4),
        }
        detail = (
            f"{m.frames} aligned frames: structure distance {m.distance:.3f}, colour "
            f"{m.colour:.1f}/255, crop {m.crop:.0%}; labels {label_of.get(pair.first)!r} and "
            f"{label_of.get(pair.second)!r}"
        )
        rows.append({**base, "kind": "near_duplicate", "action": "keep_one", "detail": detail})
        if a_split and b_split and a_split != b_split:
            rows.append(
                {
                    **base,
                    "kind": "leak",
                    "action": "group_in_split",
                    "detail": f"near-duplicates in {a_split} and {b_split}; {detail}",
                }
            )
    return rows


def near_duplicate_keys(
    workspace,
    media,
    previous_keys: dict[str, str] | None = None,
    *,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, str]:
    """``{media_id: group_key}`` for ``split --group-by near-duplicates``.

    Media in no near-duplicate pair are their own group (their media_id, as with ``media``).
    A cluster's key is the recorded key of its members that already have one (the smallest, when
    new media join clusters recorded apart), else ``dup:<smallest media_id>``: media already
    split keep their key, so their split, as data grows; a new copy joins its cluster's split.

    Args:
        workspace: the workspace (signatures are cached under ``.dataprep/audit/``).
        media: the media manifest rows with status ok (pandas).
        previous_keys: ``{media_id: group_key}`` from the current splits manifest.
    """
    from dataprep import manifests

    rows = manifests.records(media)
    signatures = media_signatures(workspace, rows, jobs=jobs, progress=progress)
    settings = DupSettings.from_config(workspace.config.audit)
    cluster_of = clusters(find_pairs(signatures, settings))
    previous_keys = previous_keys or {}
    members: dict[str, list[str]] = {}
    for media_id, cluster in cluster_of.items():
        members.setdefault(cluster, []).append(media_id)
    key_of_cluster = {}
    for cluster, ids in members.items():
        recorded = sorted(previous_keys[m] for m in ids if m in previous_keys)
        key_of_cluster[cluster] = recorded[0] if recorded else cluster
    return {
        row["media_id"]: key_of_cluster.get(cluster_of.get(row["media_id"]), row["media_id"])
        for row in rows
    }
