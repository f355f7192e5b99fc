"""A generated gesture set: a sprite moving left, right, up or down (or along a diagonal), where no
frame tells the class.

Every video shows one sprite (a filled square, disc or cross of random size and bright colour) on
a random dark background with pixel noise (optionally static distractor blobs). The sprite moves
a constant 1..3 pixels per frame in the class's direction (both axes at once for the diagonals
``up-left``, ``up-right``, ``down-left``, ``down-right``) and wraps around the frame edges, so
its position in any one frame is uniform whatever the class: only the change of position between
frames (motion) tells the class. A per-frame classifier is therefore at chance, and a model over
the clip (``cnn-lstm``) can be near perfect.

``write_gesture_set(root)`` writes ``root/<class>/<class>_<i>.mp4`` (H.264), ready for
``dataprep ingest root --label-from-dir``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

GESTURE_CLASSES = ("left", "right", "up", "down")
# The four diagonal motions: unseen classes for few-shot learning (enrolled, never trained on).
DIAGONAL_CLASSES = ("up-left", "up-right", "down-left", "down-right")
MOTION_CLASSES = GESTURE_CLASSES + DIAGONAL_CLASSES
_DIRECTIONS = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
    "up-left": (-1, -1),
    "up-right": (1, -1),
    "down-left": (-1, 1),
    "down-right": (1, 1),
}


@dataclass(frozen=True)
class GestureSpec:
    """Generation settings (all sizes in pixels)."""

    per_class: int = 60
    size: int = 32
    frames: int = 16
    fps: float = 10.0
    sprite_min: int = 5
    sprite_max: int = 9
    speed_min: int = 1
    speed_max: int = 3
    noise: float = 10.0
    distractors: int = 0
    seed: int = 0


def sprite_mask(kind: str, side: int) -> np.ndarray:
    """A ``square``, ``disc`` or ``cross`` of ``side`` pixels as a boolean mask."""
    yy, xx = np.mgrid[:side, :side]
    centre = (side - 1) / 2
    if kind == "disc":
        return (yy - centre) ** 2 + (xx - centre) ** 2 <= (side / 2) ** 2
    if kind == "cross":
        bar = max(1, side // 3)
        lo = (side - bar) // 2
        return ((yy >= lo) & (yy < lo + bar)) | ((xx >= lo) & (xx < lo + bar))
    return np.ones((side, side), bool)


def _paste_wrapped(
    frame: np.ndarray, mask: np.ndarray, colour: np.ndarray, top: int, left: int
) -> None:
    size_h, size_w = frame.shape[:2]
    ys = (top + np.arange(mask.shape[0])) % size_h
    xs = (left + np.arange(mask.shape[1])) % size_w
    region = frame[np.ix_(ys, xs)]
    region[mask] = colour
    frame[np.ix_(ys, xs)] = region


def gesture_frames(
    label: str, rng: np.random.Generator, spec: GestureSpec = GestureSpec()
) -> list[np.ndarray]:
    """The RGB uint8 frames of one gesture video of class ``label``.

    Raises:
        ValueError: for a label not in :data:`MOTION_CLASSES`.
    """
    if label not in _DIRECTIONS:
        raise ValueError(f"unknown gesture {label!r}; use one of {', '.join(MOTION_CLASSES)}")
    size = spec.size
    dx, dy = _DIRECTIONS[label]
    speed = int(rng.integers(spec.speed_min, spec.speed_max + 1))
    side = int(rng.integers(spec.sprite_min, spec.sprite_max + 1))
    mask = sprite_mask(str(rng.choice(["square", "disc", "cross"])), side)
    # Random colours, one rule: a dark background and a bright sprite (every channel apart),
    # so the sprite is always visible; which colours carries nothing about the class.
    background = rng.integers(0, 90, 3)
    colour = rng.integers(150, 256, 3)
    base = np.empty((size, size, 3), np.float32)
    base[:] = background
    for _ in range(spec.distractors):  # static blobs: same in every frame, class-independent
        blob = int(rng.integers(2, 5))
        top, left = rng.integers(0, size - blob, 2)
        base[top : top + blob, left : left + blob] = rng.integers(0, 256, 3)
    top0, left0 = (int(v) for v in rng.integers(0, size, 2))
    frames = []
    for index in range(spec.frames):
        frame = base.copy()
        _paste_wrapped(frame, mask, colour, top0 + dy * speed * index, left0 + dx * speed * index)
        frame += rng.normal(0.0, spec.noise, frame.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def write_gesture_set(
    root: Path, spec: GestureSpec = GestureSpec(), classes: tuple[str, ...] = GESTURE_CLASSES
) -> dict[str, list[Path]]:
    """Writes ``spec.per_class`` videos per class into ``root/<class>/``; returns them by class.

    ``classes``: the motions (default the four axis directions; :data:`MOTION_CLASSES` adds the
    diagonals). Also writes ``root/gestures.json`` with the settings, so a set can be re-made
    exactly.

    Raises:
        ValueError: for a class not in :data:`MOTION_CLASSES`.
    """
    from dataprep.testing.media import write_video

    unknown = [c for c in classes if c not in _DIRECTIONS]
    if unknown:
        raise ValueError(f"unknown gesture {unknown[0]!r}; use one of {', '.join(MOTION_CLASSES)}")
    root = Path(root)
    rng = np.random.default_rng(spec.seed)
    written: dict[str, list[Path]] = {}
    for label in classes:
        written[label] = []
        for index in range(spec.per_class):
            frames = gesture_frames(label, rng, spec)
            path = root / label / f"{label}_{index:04d}.mp4"
            write_video(path, frames=frames, fps=spec.fps, crf=12)
            written[label].append(path)
    settings = {**asdict(spec), "classes": list(classes)}
    (root / "gestures.json").write_text(json.dumps(settings, indent=2) + "\n")
    return written


def main(argv: list[str] | None = None) -> None:
    """``python -m dataprep.testing.gestures OUT [--per-class N] [--size S] [--frames T]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Write the generated gesture video set.")
    parser.add_argument("out", type=Path, help="output folder (class sub-folders are made)")
    parser.add_argument("--per-class", type=int, default=GestureSpec.per_class)
    parser.add_argument("--size", type=int, default=GestureSpec.size)
    parser.add_argument("--frames", type=int, default=GestureSpec.frames)
    parser.add_argument("--seed", type=int, default=GestureSpec.seed)
    parser.add_argument(
        "--diagonals", action="store_true", help="also the four diagonal motions (8 classes)"
    )
    args = parser.parse_args(argv)
    spec = GestureSpec(per_class=args.per_class, size=args.size, frames=args.frames, seed=args.seed)
    written = write_gesture_set(
        args.out, spec, MOTION_CLASSES if args.diagonals else GESTURE_CLASSES
    )
    print(f"wrote {sum(len(v) for v in written.values())} videos to {args.out}")


if __name__ == "__main__":
    main()
