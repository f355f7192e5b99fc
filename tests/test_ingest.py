from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from dataprep import manifests
from dataprep.ingest import ingest
from dataprep.testing.media import write_bad_files, write_image, write_video


@pytest.fixture(scope="module")
def media_tree(tmp_path_factory):
    """Real encoded videos and images in class folders, plus every kind of bad file."""
    root = tmp_path_factory.mktemp("raw")
    write_video(root / "left" / "cfr.mp4", 24, fps=12, width=64, height=48)
    write_video(root / "left" / "vfr.mkv", 8, timestamps_s=[0, 0.1, 0.15, 0.4, 0.45, 0.9, 1.0, 1.3])
    write_video(root / "right" / "rotated.mov", 10, fps=10, width=64, height=32, rotation=90)
    write_video(root / "right" / "mpeg4.avi", 12, fps=25, codec="mpeg4", width=48, height=32)
    write_video(root / "right" / "vp9.webm", 6, fps=6, codec="libvpx-vp9", width=32, height=32)
    write_image(root / "left" / "pic.png", 3)
    write_image(root / "right" / "pic.jpg", 4, width=40, height=30)
    write_image(root / "right" / "pic.bmp", 5)
    write_image(root / "right" / "pic.webp", 6)
    shutil.copyfile(root / "left" / "cfr.mp4", root / "right" / "cfr-copy.mp4")  # duplicate
    shutil.copyfile(root / "left" / "cfr.mp4", root / "left" / "no_extension")  # by content
    write_bad_files(root / "bad")
    return root


def _media(ws) -> pd.DataFrame:
    return manifests.load(ws, "media").set_index("media_id")


def _by_path(frame: pd.DataFrame, path: Path) -> pd.Series:
    rows = frame[frame["paths"].map(lambda ps: str(path) in list(ps))]
    assert len(rows) == 1, f"{path} in {len(rows)} rows"
    return rows.iloc[0]


def _pyav_truth(path: Path) -> dict:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return {
            "codec": stream.codec_context.name,
            "fps": float(stream.average_rate),
            "frame_count": len(frames),
            "width": frames[0].width,
            "height": frames[0].height,
            "rotation": frames[0].rotation % 360,
            "pts_s": [float(f.pts * stream.time_base) for f in frames],
        }


def test_ingest_records_every_file_correctly(workspace, media_tree):
    report = ingest(workspace, [media_tree], label_from_dir=True, jobs=2)
    media = _media(workspace)
    # 5 videos + 4 images + 1 content-sniffed duplicate group; bad files: 5 error rows
    assert report.added == len(media) == 9 + 5
    assert report.duplicates == 2
    assert [Path(p).name for p, _ in report.skipped] == ["notes.txt"]
    errors = dict(report.errors)
    bad = media_tree / "bad"
    assert errors[str(bad / "empty.mp4")] == "empty file (0 bytes)"
    assert "broken symbolic link" in errors[str(bad / "broken_link.mp4")]
    assert "not a video" in errors[str(bad / "fake.mp4")]
    assert "not an image" in errors[str(bad / "fake.jpg")]
    assert "video" in errors[str(bad / "truncated.mp4")]
    for path, message in report.errors:
        row = _by_path(media, Path(path))
        assert row["status"] == "error" and row["error"] == message and "\n" not in message

    for name in [
        "left/cfr.mp4",
        "left/vfr.mkv",
        "right/rotated.mov",
        "right/mpeg4.avi",
        "right/vp9.webm",
    ]:
        path = media_tree / name
        row = _by_path(media, path)
        truth = _pyav_truth(path)
        assert row["status"] == "ok" and row["kind"] == "video"
        assert row["codec"] == truth["codec"]
        assert row["frame_count"] == truth["frame_count"]
        assert row["fps"] == pytest.approx(truth["fps"])
        assert row["rotation"] == truth["rotation"]
        expected = (
            (truth["height"], truth["width"])
            if truth["rotation"] in (90, 270)
            else (truth["width"], truth["height"])
        )
        assert (row["width"], row["height"]) == expected
        assert row["label"] == path.parent.name
        assert row["variable_frame_rate"] == (name == "left/vfr.mkv")
    rotated = _by_path(media, media_tree / "right/rotated.mov")
    assert (rotated["width"], rotated["height"], rotated["rotation"]) == (32, 64, 90)
    vfr = _by_path(media, media_tree / "left/vfr.mkv")
    assert vfr["duration_s"] == pytest.approx(1.3 + 0.05, abs=0.06)

    cfr = _by_path(media, media_tree / "left/cfr.mp4")
    assert sorted(cfr["paths"]) == sorted(
        str(media_tree / p) for p in ["left/cfr.mp4", "right/cfr-copy.mp4", "left/no_extension"]
    )
    assert len(cfr.name) == 16 and cfr["path"] == str(media_tree / "left/cfr.mp4")
    assert cfr["duration_s"] == pytest.approx(2.0)

    for name, size in [
        ("left/pic.png", (64, 48)),
        ("right/pic.jpg", (40, 30)),
        ("right/pic.bmp", (64, 48)),
        ("right/pic.webp", (64, 48)),
    ]:
        row = _by_path(media, media_tree / name)
        assert row["kind"] == "image" and row["status"] == "ok"
        assert (row["width"], row["height"]) == size
        assert row["codec"] == Path(name).suffix[1:].replace("jpg", "jpeg")


def test_rerun_changes_nothing_and_hashes_nothing(workspace, media_tree):
    ingest(workspace, [media_tree], jobs=2)
    before = manifests.load(workspace, "media")
    files_before = manifests.load(workspace, "files")
    report = ingest(workspace, [media_tree], jobs=2)
    assert report.added == 0 and report.duplicates == 0
    # the broken link is looked at again (it may have been repaired) and found the same
    assert report.unchanged == len(files_before)
    assert report.bytes_read < 100  # only the non-media notes.txt is sniffed again
    pd.testing.assert_frame_equal(manifests.load(workspace, "media"), before)
    assert len(report.errors) == 5  # still reported, so the exit status stays "some rejected"


def test_changed_file_gets_new_hash_and_new_files_are_added(workspace, tmp_path):
    src = tmp_path / "src"
    write_video(src / "a.mp4", 10)
    ingest(workspace, [src], jobs=1)
    old_id = manifests.load(workspace, "media")["media_id"].tolist()
    write_video(src / "a.mp4", 12)  # changed in place
    write_image(src / "b.png", 1)  # new
    report = ingest(workspace, [src], jobs=1)
    assert report.added == 2
    media = manifests.load(workspace, "media")
    assert old_id[0] not in media["media_id"].tolist()
    assert sorted(media["frame_count"].dropna().tolist()) == [12]


def test_truncated_faststart_mp4_is_reported_as_truncated(workspace, tmp_path):
    src = tmp_path / "src"
    full = src / "full.mp4"
    full.parent.mkdir()
    frames = [np.random.default_rng(i).integers(0, 255, (48, 64, 3), np.uint8) for i in range(40)]
    with av.open(str(full), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = full.read_bytes()
    (src / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    full.unlink()
    report = ingest(workspace, [src], jobs=1)
    ((path, message),) = report.errors
    assert path.endswith("cut.mp4")
    assert "truncated" in message


@pytest.mark.parametrize("mode", ["copy", "link", "reference"])
def test_modes(workspace, tmp_path, mode):
    src = tmp_path / "src"
    write_video(src / "a.mp4", 5)
    ingest(workspace, [src], mode=mode, jobs=1)
    row = manifests.records(manifests.load(workspace, "media"))[0]
    stored = Path(row["path"])
    assert row["mode"] == mode
    if mode == "reference":
        assert stored == src / "a.mp4"
    else:
        assert stored.parent == workspace.media_dir and stored.name == f"{row['media_id']}.mp4"
        assert stored.read_bytes() == (src / "a.mp4").read_bytes()
        if mode == "link":
            assert stored.stat().st_ino == (src / "a.mp4").stat().st_ino


def test_no_recursive(workspace, tmp_path):
    src = tmp_path / "src"
    write_image(src / "top.png")
    write_image(src / "sub" / "deep.png", 1)
    report = ingest(workspace, [src], recursive=False, jobs=1)
    assert report.added == 1


def test_kill_during_ingest_then_rerun_completes(workspace, tmp_path):
    src = tmp_path / "src"
    video = write_video(tmp_path / "one.mp4", 30).read_bytes()
    for i in range(300):  # distinct contents: the same video with different trailing bytes
        (src / f"clip{i:03d}.mp4").parent.mkdir(exist_ok=True)
        (src / f"clip{i:03d}.mp4").write_bytes(video + i.to_bytes(4, "big"))
    env = {**os.environ, "DATAPREP_CHECKPOINT_SECONDS": "0.05"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dataprep.cli.main",
            "-w",
            str(workspace.root),
            "--quiet",
            "ingest",
            str(src),
            "--jobs",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    manifest = workspace.manifest_path("media")
    deadline = time.monotonic() + 120
    while not manifest.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = manifests.load(workspace, "media", missing_ok=True)  # readable at any moment
    assert len(partial) < 300, "the run finished before it was killed; make it longer"
    report = ingest(workspace, [src], jobs=2)
    assert report.ok
    media = manifests.load(workspace, "media")
    assert len(media) == 300 and (media["status"] == "ok").all()
    assert report.unchanged >= len(partial) - 1
    assert not [p for p in workspace.manifests.iterdir() if p.name.endswith(".tmp")]
