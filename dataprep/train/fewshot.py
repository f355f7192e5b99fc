"""Few-shot episodes over embedded examples: accuracy with its 95% interval, the raw-pixel floor,
the open-set threshold and its rates. Plain NumPy (no TensorFlow).

An episode draws ``ways`` classes; for each, ``shots`` support examples from distinct media and up
to ``queries`` query examples from *other* media (support and query never share a video). A query
is answered with the class of the nearest prototype (the mean of the class's support vectors; for
embeddings re-normalized to unit length). The episodes are drawn from a seeded generator, so the
model and the raw-pixel baseline are scored on exactly the same episodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from dataprep.errors import UsageError


@dataclass(frozen=True)
class Episode:
    """Example indices of one episode; ``classes`` are label ids, answers index into them."""

    classes: tuple[int, ...]
    support: tuple[tuple[int, ...], ...]  # per class, ``shots`` example indices
    queries: tuple[int, ...]
    answers: tuple[int, ...]  # position in ``classes`` of each query's class
    unknown: tuple[int, ...] = field(default=())  # open set: queries of classes not in the episode


def _by_class_and_media(labels, media) -> dict[int, dict[str, list[int]]]:
    grouped: dict[int, dict[str, list[int]]] = {}
    for index, (label, medium) in enumerate(zip(labels, media, strict=True)):
        grouped.setdefault(int(label), {}).setdefault(str(medium), []).append(index)
    return grouped


def eligible_classes(labels, media, shots: int) -> list[int]:
    """Classes with media enough for ``shots`` support media and at least one query medium."""
    grouped = _by_class_and_media(labels, media)
    return sorted(c for c, by_media in grouped.items() if len(by_media) >= shots + 1)


def draw_episodes(
    labels,
    media,
    *,
    ways: int,
    shots: int,
    queries: int,
    episodes: int,
    seed: int = 0,
    classes: list[int] | None = None,
    open_set: bool = False,
) -> list[Episode]:
    """Draws ``episodes`` episodes (see the module doc).

    Args:
        labels: the class id of each example.
        media: the media id of each example (support and queries never share one).
        ways, shots, queries, episodes: the episode's shape and count.
        seed: the generator's seed.
        classes: draw the ways from these classes only (default: every eligible class); with
            ``open_set``, the unknown queries come from the classes outside this list.
        open_set: add ``queries`` unknown queries of each class not in the episode.

    Raises:
        UsageError: when fewer than ``ways`` classes have ``shots + 1`` media.
    """
    grouped = _by_class_and_media(labels, media)
    eligible = eligible_classes(labels, media, shots)
    pool = [c for c in eligible if classes is None or c in classes]
    if len(pool) < ways:
        raise UsageError(
            f"{ways}-way {shots}-shot episodes need {ways} classes with at least {shots + 1} "
            f"media each, the split has {len(pool)} such classes; lower --ways or --shots, or "
            f"give the split more media"
        )
    rng = np.random.default_rng(seed)
    drawn = []
    for _ in range(episodes):
        chosen = sorted(int(c) for c in rng.choice(pool, size=ways, replace=False))
        support, query_ids, answers = [], [], []
        for position, label in enumerate(chosen):
            names = sorted(grouped[label])
            order = rng.permutation(len(names))
            support_media = [names[i] for i in order[:shots]]
            support.append(tuple(int(rng.choice(grouped[label][m])) for m in support_media))
            rest = [i for m in (names[j] for j in order[shots:]) for i in grouped[label][m]]
            picked = rng.choice(rest, size=min(queries, len(rest)), replace=False)
            query_ids += [int(i) for i in picked]
            answers += [position] * len(picked)
        unknown: list[int] = []
        if open_set:
            outside = [
                c for c in grouped if c not in chosen and (classes is None or c not in classes)
            ]
            for label in sorted(outside):
                items = [i for ids in grouped[label].values() for i in ids]
                unknown += [int(i) for i in rng.choice(items, min(queries, len(items)), False)]
        episode = Episode(tuple(chosen), tuple(support), tuple(query_ids), tuple(answers))
        drawn.append(replace(episode, unknown=tuple(unknown)))
    return drawn


def prototypes(vectors: np.ndarray, support, normalize: bool) -> np.ndarray:
    """``[ways, D]`` class prototypes: the mean of each class's support vectors."""
    protos = np.stack([vectors[list(ids)].mean(axis=0) for ids in support])
    if normalize:
        protos /= np.maximum(np.linalg.norm(protos, axis=1, keepdims=True), 1e-12)
    return protos


def nearest(vectors: np.ndarray, protos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest prototype and its Euclidean distance, per vector."""
    dist = np.sqrt(
        np.maximum(
            (vectors**2).sum(1)[:, None] - 2 * vectors @ protos.T + (protos**2).sum(1)[None], 0.0
        )
    )
    best = dist.argmin(axis=1)
    return best, dist[np.arange(len(vectors)), best]


def mean_ci(values) -> dict[str, Any]:
    """Mean with its 95% confidence interval (normal approximation, 1.96 standard errors)."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean()) if len(values) else 0.0
    half = 1.96 * float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return {"mean": mean, "ci95": [mean - half, mean + half], "ci95_half_width": half}


def score(vectors: np.ndarray, episodes: list[Episode], *, normalize: bool) -> list[float]:
    """Accuracy of nearest-prototype answers, one value per episode."""
    accuracies = []
    for episode in episodes:
        protos = prototypes(vectors, episode.support, normalize)
        best, _ = nearest(vectors[list(episode.queries)], protos)
        accuracies.append(float((best == np.asarray(episode.answers)).mean()))
    return accuracies


def open_set_distances(
    vectors: np.ndarray, episodes: list[Episode]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest-prototype distances of known and unknown queries (embeddings, unit length), and
    whether each known query's nearest class is its own."""
    known, correct, unknown = [], [], []
    for episode in episodes:
        protos = prototypes(vectors, episode.support, normalize=True)
        best, dist = nearest(vectors[list(episode.queries)], protos)
        known.append(dist)
        correct.append(best == np.asarray(episode.answers))
        if episode.unknown:
            unknown.append(nearest(vectors[list(episode.unknown)], protos)[1])
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0)  # noqa: E731
    return cat(known), cat(correct).astype(bool), cat(unknown)


def open_set_rates(vectors, episodes, threshold: float) -> dict[str, Any]:
    """At ``threshold``: known queries accepted (nearest within it), accepted and right, and
    unknown queries rejected (nearest farther)."""
    known, correct, unknown = open_set_distances(vectors, episodes)
    accepted = known <= threshold
    return {
        "threshold": float(threshold),
        "known_queries": int(len(known)),
        "unknown_queries": int(len(unknown)),
        "known_accepted": float(accepted.mean()) if len(known) else None,
        "known_accepted_and_correct": float((accepted & correct).mean()) if len(known) else None,
        "unknown_rejected": float((unknown > threshold).mean()) if len(unknown) else None,
    }


def calibrate_threshold(vectors, labels, media, *, shots: int, seed: int = 0) -> dict[str, Any]:
    """The distance threshold that best separates known from unknown queries on a split.

    Leave-classes-out episodes: each episode enrolls all eligible classes but one or two, whose
    queries play the unknowns; the threshold is the lowest distance that maximizes the mean of
    the known-accepted and unknown-rejected rates (the edge of the known queries), at most the
    outer fence of the known queries' distances (third quartile + 3 interquartile ranges).

    Raises:
        UsageError: when the split has fewer than two classes with ``shots + 1`` media.
    """
    eligible = eligible_classes(labels, media, shots)
    if len(eligible) < 2:
        raise UsageError(
            f"calibrating the unknown threshold needs 2 classes with {shots + 1} media in val, "
            f"found {len(eligible)}; give the val split more media"
        )
    ways = max(1, len(eligible) - max(1, len(eligible) // 4))
    episodes = draw_episodes(
        labels, media, ways=ways, shots=shots, queries=10, episodes=60, seed=seed, open_set=True
    )
    known, _, unknown = open_set_distances(vectors, episodes)
    candidates = np.unique(np.concatenate([known, unknown]))
    balanced = [((known <= t).mean() + (unknown > t).mean()) / 2 for t in candidates]
    # The lowest distance at the best balance, not the middle of the gap: val's unknowns are
    # other trained classes, far apart, but an unseen class can lie between two trained ones
    # (a diagonal motion between two axis directions), nearer than they are to each other.
    threshold = float(candidates[int(np.argmax(balanced))])
    # nor past Tukey's outer fence of the known distances (Q3 + 3 IQR): a few outlying val
    # queries do not widen what every class accepts
    q1, q3 = np.quantile(known, [0.25, 0.75])
    threshold = min(threshold, float(q3 + 3.0 * (q3 - q1)))
    rates = open_set_rates(vectors, episodes, threshold)
    return {**rates, "shots": shots, "ways": ways, "episodes": len(episodes), "split": "val"}
