"""Frame extraction against the ffmpeg command line and decode-only time; seeking; augmentation.

Rows (ratios measured in the same run, on the same video, with the same number of threads):

* ``frames --fps 5 --size 224`` (JPEG) on 720p H.264: ours (the ``dataprep frames`` CLI, end to
  end, and the library call) against ``ffmpeg -i in.mp4 -vf fps=5,scale=-2:224 -q:v 2
  out_%06d.jpg`` (ratio = ours / ffmpeg time, <= 1 is the target) and against decode-only
  ``ffmpeg -i in.mp4 -f null -`` (the floor).
* ``--count 16`` on a few minutes of 720p with a key frame every 2 s, against decoding
  the whole file (ffmpeg decode-only, and PyAV decoding every frame); ratio = ours / full decode.
* augmentation throughput, medium preset on 224 px images (images/s, one thread), against the
  rate albumentations' own published per-transform figures imply for the same pipeline
  (ratio = ours / expected; a sanity check, the published figures are for other images/CPUs).

Needs Debian's ffmpeg (``apt-get install -y ffmpeg``); rows say "skipped" without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import have_ffmpeg, row, timed

REPEAT = 3
GOP = 60  # key frame every 2 s at 30 fps, as camera and streaming encoders do

# albumentations 2.0.2 published single-thread throughput (images/s; albumentations.ai/docs/
# benchmarking_results, macOS arm64) where listed; RandomBrightnessContrast and HueSaturationValue
# from the project's README table (albumentations 0.5.0, Xeon Gold 6140: BrightnessContrast,
# ShiftHSV), the newest figures we have for them.
PUBLISHED_RATES = {
    "HorizontalFlip": 12649.0,
    "Affine": 1503.0,
    "RandomBrightnessContrast": 2738.0,
    "HueSaturationValue": 597.0,
    "GaussianBlur": 943.0,
}


def _video(workdir: Path, name: str, seconds: float, gop: int) -> Path:
    from dataprep.testing.media import write_textured_video

    path = workdir / name
    if not path.exists():
        tmp = path.with_suffix(".tmp.mp4")
        write_textured_video(tmp, seconds, gop=gop, crf=20)
        os.replace(tmp, path)
    return path


def _workspace(workdir: Path, name: str, video: Path):
    from dataprep.ingest import ingest
    from dataprep.workspace import init_workspace

    root = workdir / name
    shutil.rmtree(root, ignore_errors=True)
    workspace = init_workspace(root)
    ingest(workspace, [video], jobs=1)
    return workspace


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def _fps_rows(workdir: Path, video: Path, threads: int) -> list[dict]:
    from dataprep.frames import extract_frames

    workspace = _workspace(workdir, "ws-fps", video)
    out = workdir / "ffmpeg-out"

    def ffmpeg_extract():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        _ffmpeg(
            "-threads",
            str(threads),
            "-i",
            str(video),
            "-vf",
            "fps=5,scale=-2:224",
            "-q:v",
            "2",
            "-threads",
            str(threads),
            str(out / "out_%06d.jpg"),
        )

    def ffmpeg_decode():
        _ffmpeg("-threads", str(threads), "-i", str(video), "-f", "null", "-")

    command = [
        sys.executable,
        "-m",
        "dataprep.cli.main",
        "-q",
        "-w",
        str(workspace.root),
        "frames",
        "--fps",
        "5",
        "--size",
        "224",
        "--format",
        "jpg",
        "--quality",
        "95",
        "--jobs",
        "1",
        "--overwrite",
    ]

    def ours_cli():
        _reset(workspace)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

    def ours_library():
        _reset(workspace)
        extract_frames(workspace, fps=5, size="224", format="jpg", quality=95, jobs=1)

    # Interleave the contenders so that load changes on a shared machine hit all of them.
    times = {"ffmpeg": [], "decode": [], "cli": [], "lib": []}
    for _ in range(REPEAT):
        times["decode"].append(timed(ffmpeg_decode, 1))
        times["ffmpeg"].append(timed(ffmpeg_extract, 1))
        times["cli"].append(timed(ours_cli, 1))
        times["lib"].append(timed(ours_library, 1))
    best = {k: min(v) for k, v in times.items()}
    n_ours = len(list((workspace.frames_dir).rglob("*.jpg")))
    n_ffmpeg = len(list(out.glob("*.jpg")))
    note = (
        f"720p H.264 {video.name}, {threads} threads each; ours wrote {n_ours} frames, "
        f"ffmpeg {n_ffmpeg}; best of {REPEAT}, interleaved"
    )
    return [
        row(
            "frames",
            "fps5_224_jpeg_cli_vs_ffmpeg",
            best["cli"],
            "s",
            limit="ffmpeg CLI fps=5,scale=-2:224",
            limit_value=best["ffmpeg"],
            ratio=best["cli"] / best["ffmpeg"],
            notes=note + "; ours = `dataprep frames` process end to end (Python start-up included)",
        ),
        row(
            "frames",
            "fps5_224_jpeg_library_vs_ffmpeg",
            best["lib"],
            "s",
            limit="ffmpeg CLI fps=5,scale=-2:224",
            limit_value=best["ffmpeg"],
            ratio=best["lib"] / best["ffmpeg"],
            notes=note + "; ours = extract_frames() call",
        ),
        row(
            "frames",
            "fps5_224_jpeg_library_vs_decode_only",
            best["lib"],
            "s",
            limit="ffmpeg -f null (decode only)",
            limit_value=best["decode"],
            ratio=best["lib"] / best["decode"],
            notes=note,
        ),
    ]


def _reset(workspace) -> None:
    shutil.rmtree(workspace.frames_dir, ignore_errors=True)
    shutil.rmtree(workspace.state_dir / "frames", ignore_errors=True)
    workspace.manifest_path("frames").unlink(missing_ok=True)


def _count_rows(workdir: Path, video: Path, threads: int) -> list[dict]:
    import av

    from dataprep.frames import extract_frames

    workspace = _workspace(workdir, "ws-count", video)

    def ours():
        _reset(workspace)
        extract_frames(workspace, count=16, size="224", format="jpg", jobs=1)

    def pyav_full():
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = threads
            for _ in container.decode(stream):
                pass

    def ffmpeg_decode():
        _ffmpeg("-threads", str(threads), "-i", str(video), "-f", "null", "-")

    times = {"ours": [], "pyav": [], "ffmpeg": []}
    for _ in range(REPEAT):
        times["ours"].append(timed(ours, 1))
        times["pyav"].append(timed(pyav_full, 1))
        if have_ffmpeg():
            times["ffmpeg"].append(timed(ffmpeg_decode, 1))
    best = {k: min(v) for k, v in times.items() if v}
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        frames = stream.frames
        seconds = float(stream.duration * stream.time_base) if stream.duration else 0.0
    note = (
        f"{seconds:.0f}s of 720p H.264 ({frames} frames, key frame every {GOP}), {threads} threads"
    )
    rows = [
        row(
            "frames",
            "count16_vs_pyav_full_decode",
            best["ours"],
            "s",
            limit="PyAV decoding every frame",
            limit_value=best["pyav"],
            ratio=best["ours"] / best["pyav"],
            notes=note + "; ratio < 1: seeking pays",
        )
    ]
    if "ffmpeg" in best:
        rows.append(
            row(
                "frames",
                "count16_vs_ffmpeg_full_decode",
                best["ours"],
                "s",
                limit="ffmpeg -f null (decode whole file)",
                limit_value=best["ffmpeg"],
                ratio=best["ours"] / best["ffmpeg"],
                notes=note,
            )
        )
    return rows


def _augment_rows(quick: bool) -> list[dict]:
    import cv2
    import numpy as np

    from dataprep.augment import augment_image, load_pipeline

    cv2.setNumThreads(1)
    pipeline = load_pipeline("medium")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (224, 224, 3), np.uint8) for _ in range(32)]
    n = 300 if quick else 2000
    for i in range(50):  # warm-up
        augment_image(pipeline, images[i % len(images)])
    started = time.perf_counter()
    for i in range(n):
        augment_image(pipeline, images[i % len(images)])
    rate = n / (time.perf_counter() - started)
    probabilities = {t.__class__.__name__: t.p for t in pipeline.transforms}
    per_image_s = sum(p / PUBLISHED_RATES[name] for name, p in probabilities.items())
    expected = 1.0 / per_image_s
    return [
        row(
            "augment",
            "medium_224px_images_per_s",
            rate,
            "images/s",
            limit="rate implied by albumentations' published per-transform figures",
            limit_value=expected,
            ratio=rate / expected,
            notes="one thread, 224x224 uint8, p-weighted sum of published per-transform "
            "times; ratio > 1: faster than the estimate (published images are larger)",
        )
    ]


def run(workdir: Path, quick: bool) -> list[dict]:
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    threads = os.cpu_count() or 1
    rows: list[dict] = []
    long_seconds = 60 if quick else 180
    long_video = _video(
        workdir, f"textured-720p-{long_seconds}s-gop{GOP}.mp4", long_seconds, gop=GOP
    )
    if have_ffmpeg():
        rows += _fps_rows(workdir, long_video, threads)
    else:
        rows.append(
            row(
                "frames",
                "fps5_224_jpeg_vs_ffmpeg",
                None,
                "s",
                notes="skipped: ffmpeg not installed (apt-get install -y ffmpeg)",
            )
        )
    rows += _count_rows(workdir, long_video, threads)
    rows += _augment_rows(quick)
    return rows


if __name__ == "__main__":
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        for result in run(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(folder), quick=True):
            print(json.dumps(result))
