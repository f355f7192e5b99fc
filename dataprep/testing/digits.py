"""Real images for the image baseline: scikit-learn's UCI handwritten digits as class folders.

``sklearn.datasets.load_digits`` ships 1,797 greyscale 8x8 digits (values 0..16) offline. They are
written as RGB PNG files upscaled to ``size`` x ``size`` (bilinear), dark ink on white, into
``root/<digit>/digit_<i>.png``, ready for ``dataprep ingest root --label-from-dir``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def digit_images(size: int = 32, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(images uint8 [N, size, size, 3], labels int [N])`` of the UCI digits."""
    import cv2
    from sklearn.datasets import load_digits

    data = load_digits()
    images, labels = data.images, data.target
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    out = np.empty((len(images), size, size, 3), np.uint8)
    for index, image in enumerate(images):
        grey = (255 - image * (255.0 / 16.0)).astype(np.float32)
        big = cv2.resize(grey, (size, size), interpolation=cv2.INTER_LINEAR)
        out[index] = np.clip(big, 0, 255).astype(np.uint8)[..., None]
    return out, labels.astype(int)


def write_digits(root: Path, *, size: int = 32, limit: int | None = None) -> dict[str, int]:
    """Writes the digits as ``root/<digit>/digit_<i>.png``; returns the count per class folder.

    Args:
        root: output folder (created).
        size: side of the written images in pixels.
        limit: write only the first ``limit`` images (for quick tests).
    """
    from dataprep.testing.media import write_image

    images, labels = digit_images(size, limit)
    counts: dict[str, int] = {}
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        name = str(int(label))
        write_image(Path(root) / name / f"digit_{index:04d}.png", image=image)
        counts[name] = counts.get(name, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> None:
    """``python -m dataprep.testing.digits OUT [--size S] [--limit N]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Write scikit-learn's digits as class folders.")
    parser.add_argument("out", type=Path, help="output folder (one sub-folder per digit)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    counts = write_digits(args.out, size=args.size, limit=args.limit)
    print(f"wrote {sum(counts.values())} images to {args.out}")


if __name__ == "__main__":
    main()
