"""Data with planted problems, to measure ``dataprep audit`` against a known truth.

:func:`write_planted_gestures` writes a gesture set (:mod:`dataprep.testing.gestures`) into class
folders and then plants, with its own seed:

* **near-duplicates**: copies of some videos, decoded and re-encoded at another quality, resized,
  trimmed by a few frames at either end and (every other one) cropped by a few pixels, saved
  under a new name in *another* class folder;
* **black clips** (every frame 0) and **frozen clips** (one gesture frame repeated), each in a
  class folder;
* **flipped labels**: a fraction of the originals written into a wrong class folder.

``truth.json`` beside the classes lists every planted item by path (relative to the root), so
a measurement maps them to media ids after ingest. Nothing here looks at what the audit finds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dataprep.testing.gestures import GESTURE_CLASSES, GestureSpec, gesture_frames


@dataclass(frozen=True)
class PlantSpec:
    """What to plant (fractions are of the originals)."""

    duplicates: float = 0.1
    black: int = 4
    frozen: int = 4
    flipped: float = 0.05
    seed: int = 1


def _decode_all(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def near_copy(frames: list[np.ndarray], rng: np.random.Generator) -> tuple[list, dict]:
    """A re-encodable near-copy of ``frames``: trimmed, maybe cropped, resized. Returns the
    frames and what was done."""
    import cv2

    start = int(rng.integers(0, 4))
    end = len(frames) - int(rng.integers(0, 4))
    crop = int(rng.integers(1, 4)) if rng.random() < 0.5 else 0
    height, width = frames[0].shape[:2]
    scale = float(rng.choice([0.75, 1.25, 1.5, 2.0]))
    out_w = max(16, int(round((width - 2 * crop) * scale / 2)) * 2)
    out_h = max(16, int(round((height - 2 * crop) * scale / 2)) * 2)
    out = []
    for frame in frames[start:end]:
        cut = frame[crop : height - crop, crop : width - crop] if crop else frame
        out.append(cv2.resize(cut, (out_w, out_h), interpolation=cv2.INTER_AREA))
    what = {
        "trim_start": start,
        "trim_end": len(frames) - end,
        "crop": crop,
        "size": [out_w, out_h],
    }
    return out, what


def write_planted_gestures(
    root: Path, spec: GestureSpec = GestureSpec(), plant: PlantSpec = PlantSpec()
) -> dict:
    """Writes the gesture set with planted problems into ``root/<class>/`` and
    ``root/truth.json``; returns the truth (paths relative to ``root``)."""
    from dataprep.testing.media import write_video

    root = Path(root)
    rng = np.random.default_rng(spec.seed)
    plant_rng = np.random.default_rng(10_000 + plant.seed)
    originals: list[tuple[str, str]] = []  # (relative path, true label)
    flipped: list[dict] = []
    n_total = spec.per_class * len(GESTURE_CLASSES)
    flip = set(
        plant_rng.choice(n_total, int(round(plant.flipped * n_total)), replace=False).tolist()
    )
    position = 0
    for label in GESTURE_CLASSES:
        for index in range(spec.per_class):
            frames = gesture_frames(label, rng, spec)
            folder = label
            if position in flip:
                folder = str(plant_rng.choice([c for c in GESTURE_CLASSES if c != label]))
            relative = f"{folder}/{label[:1]}{index:04d}_{position:05d}.mp4"
            write_video(root / relative, frames=frames, fps=spec.fps, crf=12)
            originals.append((relative, label))
            if position in flip:
                flipped.append({"path": relative, "given": folder, "true": label})
            position += 1
    duplicates = []
    n_dup = int(round(plant.duplicates * len(originals)))
    for number, pick in enumerate(plant_rng.choice(len(originals), n_dup, replace=False)):
        source, label = originals[int(pick)]
        frames, what = near_copy(_decode_all(root / source), plant_rng)
        folder = str(plant_rng.choice([c for c in GESTURE_CLASSES if c != label]))
        relative = f"{folder}/copy_{number:04d}.mp4"
        crf = int(plant_rng.integers(24, 34))
        write_video(root / relative, frames=frames, fps=spec.fps, crf=crf)
        duplicates.append({"original": source, "copy": relative, "crf": crf, **what})
    black, frozen = [], []
    for number in range(plant.black):
        relative = f"{GESTURE_CLASSES[number % 4]}/black_{number:03d}.mp4"
        # one more frame each, so no two black clips are the same bytes (ingest merges those)
        frames = [np.zeros((spec.size, spec.size, 3), np.uint8)] * (spec.frames + number)
        write_video(root / relative, frames=frames, fps=spec.fps, crf=12)
        black.append(relative)
    for number in range(plant.frozen):
        label = GESTURE_CLASSES[number % 4]
        relative = f"{label}/frozen_{number:03d}.mp4"
        still = gesture_frames(label, plant_rng, spec)[0]
        write_video(root / relative, frames=[still] * spec.frames, fps=spec.fps, crf=12)
        frozen.append(relative)
    truth = {
        "gestures": asdict(spec),
        "plant": asdict(plant),
        "originals": [p for p, _ in originals],
        "duplicates": duplicates,
        "black": black,
        "frozen": frozen,
        "flipped": flipped,
    }
    (root / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth


def flip_folder_labels(root: Path, fraction: float, seed: int) -> list[dict]:
    """Moves ``fraction`` of the files under ``root/<class>/`` into another class folder (for
    image sets such as the digits); returns ``[{path, given, true}]`` (new paths, relative)."""
    root = Path(root)
    rng = np.random.default_rng(20_000 + seed)
    files = sorted(p for p in root.glob("*/*") if p.is_file())
    classes = sorted({p.parent.name for p in files})
    picks = rng.choice(len(files), int(round(fraction * len(files))), replace=False)
    moved = []
    for pick in sorted(int(i) for i in picks):
        path = files[pick]
        given = str(rng.choice([c for c in classes if c != path.parent.name]))
        target = root / given / f"flipped_{path.name}"
        path.rename(target)
        moved.append(
            {"path": str(target.relative_to(root)), "given": given, "true": path.parent.name}
        )
    return moved
