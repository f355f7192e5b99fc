"""``preview``: a PNG contact sheet of sampled frames per media, original next to augmented.

One band per media: the media id on the left, then a row of frames spread over the media
(from ``manifests/frames.parquet`` when the media has extracted frames, otherwise decoded
from the media file with ``--count``). With a pipeline, a second row shows the same frames
augmented with one draw for the whole row (what a clip of that media would get).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dataprep import manifests
from dataprep.errors import ManifestError, MediaError, UsageError
from dataprep.workspace import Workspace

TILE_HEIGHT = 96
LABEL_WIDTH = 150
GAP = 4
BACKGROUND = (32, 32, 32)


def _spread(items: list, wanted: int) -> list:
    if len(items) <= wanted:
        return items
    return [items[int((k + 0.5) * len(items) / wanted)] for k in range(wanted)]


def _media_frames(
    workspace: Workspace, media_row: dict, extracted, per_media: int
) -> list[np.ndarray]:
    from dataprep.decode import read_frames
    from dataprep.imageops import read_image_rgb

    rows = (
        extracted[extracted["media_id"] == media_row["media_id"]] if len(extracted) else extracted
    )
    if len(rows):
        paths = _spread(sorted(rows["path"].tolist()), per_media)
        return [read_image_rgb(workspace.root / p) for p in paths]
    return [
        f.image
        for f in read_frames(
            media_row["path"], sampling="count", count=per_media, size=str(TILE_HEIGHT)
        )
    ]


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    width = max(1, round(w * height / h))
    interpolation = cv2.INTER_AREA if height < h else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    """The tile with ``text`` on a dark strip along its bottom edge."""
    import cv2

    tile = tile.copy()
    tile[-16:] = (tile[-16:] * 0.3).astype(np.uint8)
    cv2.putText(
        tile,
        text,
        (3, tile.shape[0] - 4),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.35,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return tile


def _row(images: list[np.ndarray], label: str, captions: list[str] | None = None) -> np.ndarray:
    import cv2

    tiles = [_fit_height(im, TILE_HEIGHT) for im in images]
    if captions:
        tiles = [_caption(tile, text) for tile, text in zip(tiles, captions, strict=True)]
    width = LABEL_WIDTH + sum(t.shape[1] + GAP for t in tiles)
    row = np.full((TILE_HEIGHT, width, 3), BACKGROUND, np.uint8)
    for i, line in enumerate(label.split("\n")):
        cv2.putText(
            row,
            line,
            (6, 24 + 20 * i),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (230, 230, 230),
            1,
            cv2.LINE_AA,
        )
    x = LABEL_WIDTH
    for tile in tiles:
        row[:, x : x + tile.shape[1]] = tile
        x += tile.shape[1] + GAP
    return row


def make_preview(
    workspace: Workspace,
    *,
    pipeline: str | Path | None = None,
    media_ids: list[str] | None = None,
    out: Path | None = None,
    per_media: int = 6,
    max_media: int = 8,
    seed: int | None = None,
) -> dict:
    """Writes the contact sheet PNG.

    Args:
        workspace: the workspace.
        pipeline: preset name or pipeline file; default ``[augment] pipeline``; ``"none"`` shows
            originals only.
        media_ids: media to show (default: the first ``max_media`` ok media by id).
        out: PNG path (default ``<workspace>/preview.png``).
        per_media: frames per media.
        max_media: media shown when ``media_ids`` is not given.
        seed: draw seed (default ``[augment] seed``).

    Returns:
        ``{"path", "media", "frames", "pipeline", "width", "height"}``.

    Raises:
        UsageError: unknown media id or bad pipeline; ManifestError: nothing ingested yet.
    """
    from dataprep.augment import load_pipeline

    if per_media < 1 or max_media < 1:
        raise UsageError("--frames-per-media and --max-media must be 1 or more")
    spec = pipeline if pipeline is not None else workspace.config.augment.pipeline
    compose = None if str(spec).lower() == "none" else load_pipeline(spec)
    compose, flip, notes = _label_safe(workspace, compose)
    seed = workspace.config.augment.seed if seed is None else seed
    chosen = _chosen_media(workspace, media_ids, max_media)
    frames = manifests.load(workspace, "frames", missing_ok=True)
    extracted = frames[~frames["augmented"].astype(bool)] if len(frames) else frames
    rows = []
    shown = 0
    for media_row in chosen:
        bands, count = _media_bands(
            workspace, media_row, extracted, per_media, (compose, flip), spec, seed
        )
        rows.extend(bands)
        shown += count
    sheet = _stack(rows)
    out = Path(out) if out else workspace.root / "preview.png"
    _write_png(out, sheet)
    return {
        "path": str(out),
        "media": len(chosen),
        "frames": shown,
        "pipeline": None if compose is None and flip is None else str(spec),
        "notes": notes,
        "width": int(sheet.shape[1]),
        "height": int(sheet.shape[0]),
    }


def _label_safe(workspace: Workspace, compose):
    """``(pipeline without HorizontalFlip or None, (probability, flip_map) or None, notes)``:
    what training does with the pipeline (:mod:`dataprep.flips`), shown as it will be."""
    if compose is None:
        return None, None, []
    from dataprep.augment import pipeline_from_dict, pipeline_to_dict
    from dataprep.flips import label_safe

    flip_map = workspace.config.augment.flip_map
    names = sorted(set(workspace.config.project.classes) | set(flip_map or {}))
    names += sorted(set((flip_map or {}).values()) - set(names))
    rest, probability, _, notes = label_safe(pipeline_to_dict(compose), flip_map, names)
    flip = (probability, dict(flip_map or {})) if probability > 0 else None
    return (pipeline_from_dict(rest) if rest else None), flip, notes


def _chosen_media(workspace: Workspace, media_ids: list[str] | None, max_media: int) -> list[dict]:
    """The media rows to show: those asked for (each must be ok), or the first ``max_media``."""
    if not workspace.manifest_path("media").exists():
        raise ManifestError(
            f"{workspace.manifest_path('media')}: no media yet; run `dataprep ingest PATH` first"
        )
    media = manifests.records(manifests.load(workspace, "media"))
    ok = {m["media_id"]: m for m in media if m["status"] == "ok"}
    if media_ids:
        for media_id in media_ids:
            if media_id not in ok:
                raise UsageError(
                    f"media {media_id} is not an ingested media with status ok; see `dataprep info`"
                )
        chosen = [ok[m] for m in media_ids]
    else:
        chosen = [ok[k] for k in sorted(ok)][:max_media]
    if not chosen:
        raise ManifestError("no media with status ok to preview; run `dataprep ingest PATH` first")
    return chosen


def _media_bands(
    workspace: Workspace, media_row: dict, extracted, per_media: int, augment, spec, seed: int
) -> tuple[list[np.ndarray], int]:
    """The bands of one media (original, and augmented with a pipeline) and its frame count.

    ``augment``: ``(albumentations pipeline or None, (flip probability, flip_map) or None)``.
    Each augmented frame shows the label it trains with (mirrored when the draw flips it).
    """
    compose, flip = augment
    from dataprep.augment import augment_clip, copy_seed

    media_id = media_row["media_id"]
    try:
        images = _media_frames(workspace, media_row, extracted, per_media)
    except MediaError as exc:
        blank = np.zeros((TILE_HEIGHT, TILE_HEIGHT, 3), np.uint8)
        return [_row([blank], f"{media_id}\nunreadable:\n{str(exc)[:40]}")], 0
    if not images:
        return [], 0
    kind = media_row["kind"] + (f" [{media_row['label']}]" if media_row.get("label") else "")
    bands = [_row(images, f"{media_id}\n{kind}\noriginal")]
    if compose is not None or flip is not None:
        clip = np.stack(images) if len({im.shape for im in images}) == 1 else None
        draw = copy_seed(seed, media_id, 1)
        if compose is None:
            augmented = list(images)
        elif clip is not None:
            augmented = list(augment_clip(compose, clip, seed=draw))
        else:
            augmented = [augment_clip(compose, im[None], seed=draw)[0] for im in images]
        label = str(media_row.get("label") or "unlabelled")
        if flip is not None and np.random.default_rng(draw).random() < flip[0]:
            augmented = [np.ascontiguousarray(im[:, ::-1]) for im in augmented]
            label = f"{flip[1].get(label, label)} (flipped)"
        captions = [label] * len(augmented)
        bands.append(_row(augmented, f"{media_id}\naugmented\n{Path(str(spec)).stem}", captions))
    return bands, len(images)


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    sheet = np.full(
        (sum(r.shape[0] + GAP for r in rows) + GAP, width + GAP, 3), BACKGROUND, np.uint8
    )
    y = GAP
    for row in rows:
        sheet[y : y + row.shape[0], : row.shape[1]] = row
        y += row.shape[0] + GAP
    return sheet


def _write_png(out: Path, sheet: np.ndarray) -> None:
    import cv2

    from dataprep.atomic import atomic_path

    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {out}: the contact sheet is a PNG; use a .png file name")
    with atomic_path(out) as tmp:
        ok_written, buffer = cv2.imencode(".png", np.ascontiguousarray(sheet[..., ::-1]))
        if not ok_written:
            raise MediaError(f"{out}: OpenCV could not encode the contact sheet")
        tmp.write_bytes(buffer.tobytes())
