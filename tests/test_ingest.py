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
from dataprep.testing.media import write_bad_files, write_black_png, write_image, write_video


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


@pytest.mark.slow
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


# --- hostile input (issue 11) -------------------------------------------------------------


def test_image_bomb_is_refused_from_its_header_in_bounded_memory(tmp_path):
    """Issue 11 item 5: a 20000x20000 PNG (a few hundred KB) is an error row naming the size
    and [ingest] max_pixels; ingest's peak memory does not grow with the decoded size."""
    src = tmp_path / "src"
    bomb = write_black_png(src / "bomb.png", 20000, 20000)
    assert bomb.stat().st_size < 2_000_000
    write_image(src / "small.png", 1)
    code = (
        "import json, resource, sys\n"
        "import cv2, av, pandas, pyarrow, PIL.Image\n"
        "from dataprep.ingest import ingest\n"
        "from dataprep.workspace import init_workspace\n"
        "ws = init_workspace(sys.argv[1])\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "report = ingest(ws, [sys.argv[2]], jobs=1)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'growth_kb': after - before, **report.to_dict()}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "ws"), str(src)],
        capture_output=True,
        text=True,
        check=True,
    )
    out = __import__("json").loads(result.stdout.strip().splitlines()[-1])
    assert out["added"] == 2
    ((error),) = out["errors"]
    assert error["path"] == str(bomb)
    assert "20000x20000" in error["error"] and "max_pixels" in error["error"]
    # decoding would take 400 MB (8-bit gray) at least; the header read takes almost nothing
    assert out["growth_kb"] < 100_000, out["growth_kb"]


def test_max_pixels_is_configurable(workspace, tmp_path):
    src = tmp_path / "src"
    write_black_png(src / "wide.png", 300, 200)
    report = ingest(workspace, [src], jobs=1, max_pixels=50_000)
    assert "300x200" in dict(report.errors)[str(src / "wide.png")]
    raised = workspace.save_config(
        workspace.config.model_copy(
            update={"ingest": workspace.config.ingest.model_copy(update={"max_pixels": 60_000})}
        )
    )
    (src / "wide.png").touch()
    os.utime(src / "wide.png", ns=(1, 1))  # changed stat: inspected again
    assert ingest(raised, [src], jobs=1).ok


def test_lying_png_header_is_one_error_row_and_the_run_goes_on(workspace, tmp_path):
    """Issue 11 item 6: a tiny PNG whose header claims 100000x100000 is one error row naming
    the file; the good video beside it is recorded."""
    src = tmp_path / "src"
    liar = write_black_png(src / "liar.png", 100_000, 100_000, bit_depth=8, rows=False)
    assert liar.stat().st_size < 100
    write_video(src / "good.mp4", 6)
    report = ingest(workspace, [src], jobs=1)
    assert report.added == 2
    assert list(dict(report.errors)) == [str(liar)]
    assert "100000x100000" in dict(report.errors)[str(liar)]
    media = _media(workspace)
    assert _by_path(media, src / "good.mp4")["status"] == "ok"
    assert _by_path(media, liar)["status"] == "error"


def test_unreadable_subfolder_is_a_named_error_and_the_rest_is_ingested(tmp_path):
    """Issue 11 item 7. Root reads any folder, so the run drops the capabilities that allow it
    (setpriv); as a non-root user chmod alone is enough."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() == 0 and setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a folder unreadable")
    src = tmp_path / "src"
    write_image(src / "ok" / "a.png", 1)
    write_image(src / "locked" / "b.png", 2)
    (src / "locked").chmod(0)
    ws = tmp_path / "ws"
    from dataprep.workspace import init_workspace

    init_workspace(ws)
    caps = "-dac_override,-dac_read_search"
    prefix = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"] if os.geteuid() == 0 else []
    try:
        result = subprocess.run(
            [
                *prefix,
                sys.executable,
                "-m",
                "dataprep.cli.main",
                "-w",
                str(ws),
                "ingest",
                str(src),
                "--json",
            ],
            capture_output=True,
            text=True,
        )
    finally:
        (src / "locked").chmod(0o755)
    assert result.returncode == 1, result.stderr  # finished, some input rejected
    out = __import__("json").loads(result.stdout)
    assert out["added"] == 1
    assert out["errors"] == [
        {
            "path": str(src / "locked"),
            "error": "folder cannot be read (permission denied); its files were not ingested",
        }
    ]


def test_disk_full_names_the_path_and_a_rerun_resumes(tmp_path):
    """Issue 11 item 8: a write that fails with ENOSPC (the temporary copy is made to point at
    /dev/full, a real kernel ENOSPC) is one line naming the path and saying the disk is full;
    the manifests stay valid, and the rerun finishes."""
    from typer.testing import CliRunner

    from dataprep.cli.main import app
    from dataprep.ingest import hash_file
    from dataprep.workspace import open_workspace

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    src = tmp_path / "src"
    write_video(src / "a.mp4", 6)
    write_video(src / "b.mp4", 8)
    runner = CliRunner()
    runner.invoke(app, ["init", str(tmp_path / "ws")])
    ws = open_workspace(tmp_path / "ws")
    media_id = hash_file(str(src / "b.mp4"))[0]
    trap = ws.media_dir / f".{media_id}.mp4.tmp"
    os.symlink("/dev/full", trap)
    result = runner.invoke(app, ["-w", str(ws.root), "ingest", str(src), "--mode", "copy"])
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert str(ws.media_dir / f"{media_id}.mp4") in lines[0] and "disk is full" in lines[0]
    assert "rerun" in lines[0]
    assert not trap.exists() and not trap.is_symlink()
    kept = manifests.load(ws, "media")  # a valid manifest with the file finished before
    assert len(kept) == 1
    result = runner.invoke(app, ["-w", str(ws.root), "ingest", str(src), "--mode", "copy"])
    assert result.exit_code == 0, result.output
    media = manifests.load(ws, "media")
    assert len(media) == 2 and (media["status"] == "ok").all()


def test_same_folder_under_another_spelling_is_unchanged(workspace, tmp_path, monkeypatch):
    """Issue 11 item 11: ``../src`` then its absolute path: unchanged, files.parquet not
    doubled; paths are stored resolved (a symlinked folder too), a symlinked file keeps its
    own name."""
    src = tmp_path / "src"
    write_video(src / "a.mp4", 6)
    write_image(src / "b.png", 1)
    os.symlink(src / "a.mp4", src / "link.mp4")
    os.symlink(src, tmp_path / "alias")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    first = ingest(workspace, [Path("../src")], jobs=1)
    assert first.added == 2 and first.duplicates == 1
    files = manifests.load(workspace, "files")
    assert sorted(files["path"]) == [str(src / n) for n in ("a.mp4", "b.png", "link.mp4")]
    for spelling in (src, tmp_path / "alias", Path("../alias/")):
        again = ingest(workspace, [spelling], jobs=1)
        assert (again.added, again.duplicates, again.unchanged) == (0, 0, 3), spelling
    assert len(manifests.load(workspace, "files")) == 3
    assert len(manifests.load(workspace, "media")) == 2


def test_on_error_fail_stops_at_the_first_bad_file_and_keeps_the_rest(workspace, tmp_path):
    from dataprep.stage import ItemFailed, interrupted
    from dataprep.stages import load_stage

    src = tmp_path / "src"
    write_video(src / "a.mp4", 6)
    (src / "b.mp4").write_bytes(b"")
    write_image(src / "c.png", 1)
    with pytest.raises(ItemFailed, match=r"b\.mp4: empty file"):
        ingest(workspace, [src], jobs=1, on_error="fail")
    kept = manifests.load(workspace, "media")
    assert str(src / "a.mp4") in kept["path"].tolist() and len(kept) == 2  # a, and b's row
    assert interrupted(workspace, "ingest") is not None and load_stage(workspace, "ingest") is None
    report = ingest(workspace, [src], jobs=1)  # default skip: finishes
    assert report.added == 1 and list(dict(report.errors)) == [str(src / "b.mp4")]
    assert interrupted(workspace, "ingest") is None
    record = load_stage(workspace, "ingest")
    assert record["settings"]["on_error"] == "skip" and record["counts"]["rejected"] == 1
    with pytest.raises(Exception, match="--on-error 'never' is not allowed"):
        ingest(workspace, [src], on_error="never")
