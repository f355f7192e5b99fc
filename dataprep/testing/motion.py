"""A motion benchmark: families of generated clips that differ in what a model can latch onto.

Every family is a set of H.264 videos in class folders (``root/<class>/<class>_<i>.mp4``, ready
for ``dataprep ingest root --label-from-dir``) of one sprite moving at a constant velocity that
wraps around the frame edges, so the sprite's position in any single frame is uniform whatever
the class. The families vary, one knob at a time or several together:

- **sprite kind**: solid shapes (square, disc, cross), glyphs (digits drawn with a font) or
  textured patches (a random checker of two tones);
- **size** and **speed** (sub-pixel speeds: frames are drawn at 4x and area-downsampled, so a
  sprite moving 0.5 px per frame moves smoothly);
- **background**: flat, pixel noise of several levels, or a texture scrolling in a random
  direction (global motion that carries nothing about the class);
- **colour**: random per clip or fixed;
- **clip length**;
- **distractors**: a second object that does not move, or one that moves randomly (a new random
  velocity every frame);
- **classes**: the direction of motion (left, right, up, down), or *what* moves and *how*
  (``shape-x-direction``: disc or cross, moving left or right), so a model that throws
  appearance away cannot solve it.

:data:`FAMILIES` holds the benchmark's families; ``write_motion_set(root, family, per_class,
seed)`` writes one. ``python -m dataprep.testing.motion OUT --family NAME --per-class N`` does
the same from the shell; ``--list`` prints the families.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from dataprep.testing.gestures import sprite_mask

DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
SHAPES = ("square", "disc", "cross")
SCALE = 4  # frames are drawn at 4x and area-downsampled (anti-aliasing, sub-pixel motion)


@dataclass(frozen=True)
class MotionFamily:
    """How one family's clips are made (sizes in output pixels, speeds in pixels per frame).

    Attributes:
        name: the family's name.
        about: one line saying what the family tests.
        classes: class names: directions (``left``...), or ``<shape>-<direction>`` to make the
            sprite's shape part of the class.
        sprite: ``shape``, ``glyph`` or ``texture`` (ignored for the shape of
            ``<shape>-<direction>`` classes).
        size: frame side.
        frames: frames per video (one clip of this length per video).
        sprite_min, sprite_max: sprite side range.
        speed_min, speed_max: speed range (uniform; fractions allowed).
        background: ``flat``, ``noise`` or ``moving`` (a texture scrolling 0.5..1.5 px/frame in
            a random direction).
        noise: standard deviation of the per-pixel Gaussian noise added to every frame.
        colour: ``random`` (bright, per clip) or ``fixed`` (white sprite on a dark grey ground).
        distractor: ``none``, ``static`` (a second object that stays put), ``random`` (one
            that moves with a new random velocity every frame) or ``both``; each 3..5 px.
    """

    name: str
    about: str
    classes: tuple[str, ...] = tuple(DIRECTIONS)
    sprite: str = "shape"
    size: int = 32
    frames: int = 8
    sprite_min: int = 5
    sprite_max: int = 9
    speed_min: float = 1.0
    speed_max: float = 3.0
    background: str = "noise"
    noise: float = 10.0
    colour: str = "random"
    distractor: str = "none"


FAMILIES: dict[str, MotionFamily] = {
    family.name: family
    for family in (
        MotionFamily(
            "shapes-flat",
            "solid shapes over a flat background, fixed colour: the easy control",
            background="flat",
            noise=3.0,
            colour="fixed",
        ),
        MotionFamily(
            "glyphs-noise",
            "digits drawn with a font, random colour, moderate pixel noise",
            sprite="glyph",
            sprite_min=7,
            sprite_max=11,
            speed_min=1.0,
            speed_max=2.0,
            noise=20.0,
        ),
        MotionFamily(
            "texture-noisy",
            "textured patches of random colour and size over heavy noise, clips of 12 frames",
            sprite="texture",
            frames=12,
            noise=35.0,
        ),
        MotionFamily(
            "moving-background",
            "shapes over a texture that scrolls in a random direction (global motion)",
            background="moving",
            sprite_min=6,
            sprite_max=9,
            noise=8.0,
        ),
        MotionFamily(
            "distractors",
            "a shape plus a second object that stays put and a third that moves at random",
            sprite_min=6,
            sprite_max=9,
            noise=12.0,
            distractor="both",
        ),
        MotionFamily(
            "shape-x-direction",
            "classes are what moves and how: disc or cross, moving left or right, slowly",
            classes=("disc-left", "disc-right", "cross-left", "cross-right"),
            sprite_min=7,
            sprite_max=10,
            speed_min=0.5,
            speed_max=1.5,
            noise=12.0,
        ),
    )
}


def _glyph_mask(digit: int, side: int) -> np.ndarray:
    import cv2

    canvas = np.zeros((side, side), np.uint8)
    scale = side / 24.0
    thickness = max(1, int(round(side / 8)))
    (width, height), _ = cv2.getTextSize(str(digit), cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    origin = ((side - width) // 2, (side + height) // 2)
    cv2.putText(canvas, str(digit), origin, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness)
    return canvas > 127


def _sprite(kind: str, side: int, colour: np.ndarray, rng: np.random.Generator):
    """``(mask [s, s] bool, pixels [s, s, 3] float)`` of a sprite at the drawing scale."""
    big = side * SCALE
    pixels = np.empty((big, big, 3), np.float32)
    pixels[:] = colour
    if kind == "glyph":
        return _glyph_mask(int(rng.integers(0, 10)), big), pixels
    if kind == "texture":  # a random checker of the colour and a darker tone of it
        cells = int(rng.integers(2, 5))
        pattern = rng.random((cells, cells)) < 0.5
        tone = np.kron(pattern, np.ones((-(-big // cells),) * 2, bool))[:big, :big]
        pixels[~tone] *= 0.45
        return np.ones((big, big), bool), pixels
    return sprite_mask(kind, big), pixels


def _paste(canvas: np.ndarray, mask: np.ndarray, pixels: np.ndarray, y: float, x: float) -> None:
    """Draws the sprite with its top-left corner at (y, x) (drawing pixels), wrapping around."""
    height, width = canvas.shape[:2]
    ys = (int(round(y)) + np.arange(mask.shape[0])) % height
    xs = (int(round(x)) + np.arange(mask.shape[1])) % width
    region = canvas[np.ix_(ys, xs)]
    region[mask] = pixels[mask]
    canvas[np.ix_(ys, xs)] = region


def _texture(rng: np.random.Generator, side: int) -> np.ndarray:
    """A smooth random texture ``[side, side, 3]`` in 0..110 with detail at several scales."""
    import cv2

    out = np.zeros((side, side, 3), np.float32)
    for cells, weight in ((4, 45.0), (8, 35.0), (16, 30.0)):
        small = rng.random((cells, cells, 3)).astype(np.float32)
        tiled = np.concatenate([small, small[:1]], axis=0)  # periodic, so scrolling wraps
        tiled = np.concatenate([tiled, tiled[:, :1]], axis=1)
        big = cv2.resize(tiled, (side + side // cells, side + side // cells), cv2.INTER_LINEAR)
        out += weight * big[:side, :side]
    return out


def _velocity(label: str, rng: np.random.Generator, family: MotionFamily) -> np.ndarray:
    direction = label.rsplit("-", 1)[-1]
    speed = float(rng.uniform(family.speed_min, family.speed_max))
    dx, dy = DIRECTIONS[direction]
    return np.array([dy, dx]) * speed * SCALE


def motion_frames(label: str, rng: np.random.Generator, family: MotionFamily) -> list[np.ndarray]:
    """The RGB uint8 frames of one video of class ``label`` of ``family``.

    Raises:
        ValueError: for a label that is not one of the family's classes.
    """
    import cv2

    if label not in family.classes:
        raise ValueError(f"{label!r} is not a class of {family.name}: {', '.join(family.classes)}")
    big = family.size * SCALE
    if family.colour == "fixed":
        ground, colour = np.full(3, 40.0), np.full(3, 235.0)
    else:  # a dark ground and a bright sprite, every channel apart: always visible
        ground, colour = rng.integers(0, 90, 3).astype(float), rng.integers(150, 256, 3)
    kind = label.split("-")[0] if "-" in label else family.sprite
    if kind == "shape":
        kind = str(rng.choice(SHAPES))
    side = int(rng.integers(family.sprite_min, family.sprite_max + 1))
    mask, pixels = _sprite(kind, side, colour.astype(np.float32), rng)
    position = rng.uniform(0, big, 2)
    velocity = _velocity(label, rng, family)
    base = np.empty((big, big, 3), np.float32)
    base[:] = ground
    scroll = np.zeros(2)
    if family.background == "moving":
        base = _texture(rng, big)
        angle = rng.uniform(0, 2 * np.pi)
        scroll = np.array([np.sin(angle), np.cos(angle)]) * rng.uniform(0.5, 1.5) * SCALE
    others = []  # (mask, pixels, position, moves at random)
    for random_walk in {"static": [False], "random": [True], "both": [False, True]}.get(
        family.distractor, []
    ):
        other_side = int(rng.integers(3, 6))
        other_colour = rng.integers(120, 256, 3).astype(np.float32)
        other = _sprite(str(rng.choice(SHAPES)), other_side, other_colour, rng)
        others.append((*other, rng.uniform(0, big, 2), random_walk))
    frames = []
    for index in range(family.frames):
        offset = (scroll * index).round().astype(int)
        canvas = np.roll(base, tuple(offset), axis=(0, 1)) if scroll.any() else base.copy()
        for other_mask, other_pixels, other_position, random_walk in others:
            if random_walk and index:
                other_position += rng.uniform(-1, 1, 2) * family.speed_max * SCALE
            _paste(canvas, other_mask, other_pixels, *other_position)
        _paste(canvas, mask, pixels, *(position + velocity * index))
        frame = cv2.resize(canvas, (family.size, family.size), interpolation=cv2.INTER_AREA)
        if family.noise:
            frame += rng.normal(0.0, family.noise, frame.shape).astype(np.float32)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def family(name: str) -> MotionFamily:
    """The family called ``name``.

    Raises:
        ValueError: naming the known families.
    """
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(
            f"unknown motion family {name!r}; use one of {', '.join(FAMILIES)}"
        ) from None


def write_motion_set(
    root: Path, family_or_name: MotionFamily | str, per_class: int, seed: int = 0
) -> dict[str, list[Path]]:
    """Writes ``per_class`` videos of every class into ``root/<class>/``; returns them by class.

    Also writes ``root/motion.json`` with the family, count and seed (a set is re-made exactly
    from them).
    """
    from dataprep.testing.media import write_video

    spec = family(family_or_name) if isinstance(family_or_name, str) else family_or_name
    root = Path(root)
    rng = np.random.default_rng(seed)
    written: dict[str, list[Path]] = {label: [] for label in spec.classes}
    for index in range(per_class):  # classes interleaved: a prefix of the set stays balanced
        for label in spec.classes:
            path = root / label / f"{label}_{index:04d}.mp4"
            write_video(path, frames=motion_frames(label, rng, spec), fps=10.0, crf=12)
            written[label].append(path)
    info = {"family": asdict(spec), "per_class": per_class, "seed": seed}
    (root / "motion.json").write_text(json.dumps(info, indent=2) + "\n")
    return written


def main(argv: list[str] | None = None) -> None:
    """``python -m dataprep.testing.motion OUT --family NAME [--per-class N] [--seed S]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Write one family of the motion benchmark.")
    parser.add_argument("out", type=Path, nargs="?", help="output folder (class sub-folders)")
    parser.add_argument("--family", default="shapes-flat", choices=sorted(FAMILIES))
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, help="override the family's frames per video")
    parser.add_argument("--list", action="store_true", help="print the families and exit")
    args = parser.parse_args(argv)
    if args.list or args.out is None:
        for spec in FAMILIES.values():
            print(f"{spec.name:20s} {spec.about}")
        return
    spec = family(args.family)
    if args.frames:
        spec = replace(spec, frames=args.frames)
    written = write_motion_set(args.out, spec, args.per_class, args.seed)
    print(f"wrote {sum(len(v) for v in written.values())} videos of {spec.name} to {args.out}")


if __name__ == "__main__":
    main()
