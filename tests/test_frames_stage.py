"""The ``frames`` stage: files, manifest, resume after kill -9, overwrite, damaged media, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataprep import manifests
from dataprep.cli.main import app
from dataprep.errors import UsageError
from dataprep.frames import extract_frames, load_records, resolve_settings
from dataprep.imageops import read_image_rgb
from dataprep.info import summarize
from dataprep.ingest import ingest
from dataprep.testing.media import read_frame_index, write_image, write_video
from dataprep.workspace import init_workspace


def _media_ids(workspace) -> dict[str, str]:
    media = manifests.load(workspace, "media")
    return {Path(p).name: m for p, m in zip(media["path"], media["media_id"], strict=True)}


def _corrupt_copy(source: Path, target: Path) -> Path:
    """A copy with garbage in the middle of the video data: ingest accepts it, decoding fails."""
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = b"\x55" * 400
    target.write_bytes(bytes(data))
    return target


@pytest.fixture
def media_folder(tmp_path):
    folder = tmp_path / "src"
    write_video(folder / "a.mp4", 30, fps=10, gop=10)
    write_video(folder / "b.mkv", 20, fps=10, rotation=90)
    write_image(folder / "c.png", 7, width=80, height=60)
    return folder


@pytest.fixture
def ready(workspace, media_folder):
    report = ingest(workspace, [media_folder], jobs=1)
    assert report.ok
    return workspace


def _files_under(workspace) -> set[str]:
    return {
        str(p.relative_to(workspace.root)) for p in workspace.frames_dir.rglob("*") if p.is_file()
    }


def test_extract_writes_files_and_manifest(ready):
    report = extract_frames(ready, fps=2, size="24", jobs=1)
    assert report.ok and report.extracted == 3 and report.unchanged == 0
    ids = _media_ids(ready)
    frames = manifests.load(ready, "frames")
    by_media = {m: g for m, g in frames.groupby("media_id")}
    assert list(by_media[ids["a.mp4"]]["frame_index"]) == [0, 5, 10, 15, 20, 25]
    assert list(by_media[ids["a.mp4"]]["timestamp_s"]) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert list(by_media[ids["b.mkv"]]["frame_index"]) == [0, 5, 10, 15]
    assert list(by_media[ids["c.png"]]["frame_index"]) == [0]
    for row in manifests.records(frames):
        image = read_image_rgb(ready.root / row["path"])
        assert image.shape[:2] == (row["height"], row["width"])
        assert row["path"] == f"frames/{row['media_id']}/{row['frame_index']:06d}.jpg"
        if row["media_id"] == ids["a.mp4"]:
            assert (row["width"], row["height"]) == (32, 24)
            assert read_frame_index(image) == row["frame_index"]
        if row["media_id"] == ids["b.mkv"]:  # rotated 90: portrait
            assert (row["width"], row["height"]) == (24, 32)
    assert set(frames["fingerprint"]) == {report.fingerprint}
    assert not frames["augmented"].any()
    assert _files_under(ready) == set(frames["path"])
    summary = summarize(ready)["frames"]
    assert summary["frames"] == len(frames) and summary["media_with_frames"] == 3


def test_rerun_skips_complete_media_and_changed_settings_need_overwrite(ready):
    first = extract_frames(ready, count=3, size="24", jobs=1)
    before = manifests.load(ready, "frames")
    again = extract_frames(ready, count=3, size="24", jobs=1)
    assert (again.extracted, again.unchanged, again.frames_written) == (0, 3, 0)
    assert manifests.load(ready, "frames").equals(before)
    with pytest.raises(UsageError, match="--overwrite"):
        extract_frames(ready, every=4, size="24", jobs=1)
    assert manifests.load(ready, "frames").equals(before)
    changed = extract_frames(ready, every=4, size="16", format="png", jobs=1, overwrite=True)
    assert changed.extracted == 3 and changed.fingerprint != first.fingerprint
    after = manifests.load(ready, "frames")
    ids = _media_ids(ready)
    assert list(after[after["media_id"] == ids["a.mp4"]]["frame_index"]) == [
        0,
        4,
        8,
        12,
        16,
        20,
        24,
        28,
    ]
    # No stale files: exactly the new manifest's files are on disk.
    assert _files_under(ready) == set(after["path"])
    assert all(p.endswith(".png") for p in after["path"])
    assert not [p for p in ready.frames_dir.iterdir() if p.name.startswith(".")]


def test_damaged_video_is_recorded_and_the_run_goes_on(ready, tmp_path):
    (tmp_path / "bad").mkdir()
    damaged = _corrupt_copy(
        write_video(tmp_path / "full.mp4", 60, fps=10, gop=10), tmp_path / "bad" / "damaged.mp4"
    )
    assert ingest(ready, [damaged], jobs=1).ok  # the damage is invisible to probing
    damaged_id = _media_ids(ready)["damaged.mp4"]
    report = extract_frames(ready, sampling="all", size=None, jobs=1)
    assert report.extracted == 3
    assert [f["media_id"] for f in report.failed] == [damaged_id]
    assert "corrupt" in report.failed[0]["error"] or "truncated" in report.failed[0]["error"]
    frames = manifests.load(ready, "frames")
    assert damaged_id not in set(frames["media_id"])
    assert not (ready.frames_dir / damaged_id).exists()
    record = load_records(ready)[damaged_id]
    assert record["status"] == "error" and record["rows"] == []
    # --keep-partial: frames decoded before the damage are kept, and the media is still failed.
    partial = extract_frames(ready, sampling="all", size=None, jobs=1, keep_partial=True)
    assert partial.unchanged == 3 and len(partial.failed) == 1
    kept = partial.failed[0]["frames_kept"]
    assert 0 < kept < 60
    frames = manifests.load(ready, "frames")
    rows = frames[frames["media_id"] == damaged_id]
    assert list(rows["frame_index"]) == list(range(kept))
    for row in manifests.records(rows):
        assert read_frame_index(read_image_rgb(ready.root / row["path"])) == row["frame_index"]
    assert load_records(ready)[damaged_id]["status"] == "partial"
    assert summarize(ready)["frames"]["failed"][0]["media_id"] == damaged_id


@pytest.mark.slow
def test_parallel_jobs_give_the_same_manifest(ready, tmp_path, media_folder):
    extract_frames(ready, fps=3, size="24", jobs=1)
    serial = manifests.load(ready, "frames")
    other = init_workspace(tmp_path / "ws2")
    ingest(other, [media_folder], jobs=1)
    extract_frames(other, fps=3, size="24", jobs=2)
    assert manifests.load(other, "frames").equals(serial)


def _cli_frames(root: Path, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dataprep.cli.main", "-q", "-w", str(root), "frames", *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_gives_the_uninterrupted_manifest(tmp_path):
    source = tmp_path / "many"
    for i in range(6):
        write_video(source / f"v{i}.mp4", 120 + i, fps=25, width=160, height=120, gop=25)
    options = ("--all", "--size", "96", "--format", "png", "--jobs", "1")
    reference = init_workspace(tmp_path / "reference")
    ingest(reference, [source], jobs=1)
    extract_frames(reference, sampling="all", size="96", format="png", jobs=1)

    killed = init_workspace(tmp_path / "killed")
    ingest(killed, [source], jobs=1)
    process = _cli_frames(killed.root, *options)
    records = killed.state_dir / "frames"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if records.is_dir() and any(records.glob("*.json")):
            break
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_at_kill = len(list(records.glob("*.json")))
    assert 1 <= done_at_kill < 6, "the run should have been killed part-way"
    # The killed run left the previous state readable (or none) and maybe a temporary folder.
    report = extract_frames(killed, sampling="all", size="96", format="png", jobs=1)
    assert report.unchanged == done_at_kill and report.extracted == 6 - done_at_kill
    expected = manifests.load(reference, "frames")
    got = manifests.load(killed, "frames")
    assert got.equals(expected)
    assert _files_under(killed) == set(got["path"])
    for rel in got["path"][::37]:
        assert (killed.root / rel).read_bytes() == (reference.root / rel).read_bytes()


@pytest.mark.slow
def test_cli_frames_wiring_and_messages(ready, tmp_path):
    runner = CliRunner()
    root = str(ready.root)
    result = runner.invoke(app, ["-w", root, "frames", "--fps", "2", "--every", "3"])
    assert result.exit_code == 2 and "choose one sampling option" in result.output
    result = runner.invoke(app, ["-w", root, "frames", "--size", "40x30"])
    assert result.exit_code == 2 and "--resize fit" in result.output
    result = runner.invoke(
        app, ["-w", root, "frames", "--count", "2", "--size", "40x30", "--resize", "crop", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["extracted"] == 3 and data["frames_total"] == 5
    frames = manifests.load(ready, "frames")
    assert set(zip(frames["width"], frames["height"], strict=True)) == {(40, 30)}
    result = runner.invoke(app, ["-w", root, "frames", "--count", "3"])
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_cli_exit_code_1_when_a_media_fails(workspace, tmp_path):
    (tmp_path / "bad").mkdir()
    damaged = _corrupt_copy(
        write_video(tmp_path / "full.mp4", 60, fps=10, gop=10), tmp_path / "bad" / "damaged.mp4"
    )
    ingest(workspace, [damaged], jobs=1)
    result = CliRunner().invoke(app, ["-w", str(workspace.root), "frames", "--all"])
    assert result.exit_code == 1
    assert "failed:" in result.output and "damaged" not in result.output.split("failed:")[0]


def test_no_media_manifest_is_a_clear_error(workspace):
    result = CliRunner().invoke(app, ["-w", str(workspace.root), "frames"])
    assert result.exit_code == 3 and "dataprep ingest" in result.output


def test_equal_settings_have_equal_fingerprints(workspace):
    library = resolve_settings(workspace, fps=5, size="224")
    cli = resolve_settings(workspace, sampling="fps", fps=5.0, size="224", resize="shorter")
    assert library.fingerprint == cli.fingerprint
    # Defaults come from [frames]: fps = 5.0, size "224", jpg, quality 90.
    assert resolve_settings(workspace).fingerprint == library.fingerprint
    assert resolve_settings(workspace, fps=5, quality=80).fingerprint != library.fingerprint
    with pytest.raises(UsageError, match="whole number"):
        resolve_settings(workspace, every=2.5)
    with pytest.raises(UsageError, match="choose one"):
        resolve_settings(workspace, fps=2, count=3)


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp"])
def test_formats_and_quality(ready, fmt):
    low = extract_frames(ready, count=2, size="48", format=fmt, quality=10, jobs=1)
    frames = manifests.load(ready, "frames")
    assert all(p.endswith(f".{fmt}") for p in frames["path"])
    low_bytes = sum((ready.root / p).stat().st_size for p in frames["path"])
    for row in manifests.records(frames):
        assert read_image_rgb(ready.root / row["path"]).shape[:2] == (row["height"], row["width"])
    high = extract_frames(
        ready, count=2, size="48", format=fmt, quality=100, jobs=1, overwrite=True
    )
    assert high.fingerprint != low.fingerprint
    high_bytes = sum(
        (ready.root / p).stat().st_size for p in manifests.load(ready, "frames")["path"]
    )
    # JPEG/WebP: higher quality, bigger files; PNG: quality 100 = fastest zlib level, bigger files.
    assert high_bytes > low_bytes


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.slow
def test_kill_9_with_parallel_workers_leaves_no_orphans_and_resumes(tmp_path):
    source = tmp_path / "many"
    for i in range(4):
        write_video(source / f"v{i}.mp4", 150 + i, fps=25, width=160, height=120, gop=25)
    killed = init_workspace(tmp_path / "killed")
    ingest(killed, [source], jobs=1)
    process = _cli_frames(killed.root, "--all", "--size", "96", "--format", "png", "--jobs", "2")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if any(p.name.startswith(".tmp-") for p in killed.frames_dir.iterdir()):
            break
        time.sleep(0.01)
    workers = _children(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert workers, "the run should have been killed while its workers were decoding"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "workers outlived their killed parent"
    report = extract_frames(killed, sampling="all", size="96", format="png", jobs=2)
    assert report.ok and report.extracted + report.unchanged == 4
    reference = init_workspace(tmp_path / "reference")
    ingest(reference, [source], jobs=1)
    extract_frames(reference, sampling="all", size="96", format="png", jobs=1)
    assert manifests.load(killed, "frames").equals(manifests.load(reference, "frames"))
    assert _files_under(killed) == set(manifests.load(killed, "frames")["path"])


# ---- issue 11: consistency at every instant, interrupted runs, disk full, non-finite options ---


def _info_json(root: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "dataprep.cli.main", "-w", str(root), "info", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _frames_stage(info: dict) -> dict:
    return next(s for s in info["stages"] if s["stage"] == "frames")


@pytest.mark.slow
def test_kill_9_during_overwrite_never_leaves_rows_without_files(tmp_path):
    source = tmp_path / "many"
    for i in range(6):
        write_video(source / f"v{i}.mp4", 120 + i, fps=25, width=160, height=120, gop=25)
    workspace = init_workspace(tmp_path / "ws")
    ingest(workspace, [source], jobs=1)
    first = extract_frames(workspace, sampling="all", size="96", format="jpg", jobs=1)
    assert first.ok and _frames_stage(_info_json(workspace.root))["interrupted"] is False
    # No checkpoint during the run: only the commit protocol keeps the manifest right.
    process = subprocess.Popen(
        [sys.executable, "-m", "dataprep.cli.main", "-q", "-w", str(workspace.root), "frames"]
        + ["--all", "--size", "original", "--format", "png", "--overwrite", "--jobs", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "DATAPREP_CHECKPOINT_SECONDS": "3600"},
    )
    records = workspace.state_dir / "frames"

    def redone() -> int:
        return sum(
            1
            for record in load_records(workspace).values()
            if record["fingerprint"] != first.fingerprint
        )

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and redone() < 2:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert 2 <= redone() < 6, "the run should have been killed part-way"
    assert records.is_dir()
    frames = manifests.load(workspace, "frames")
    missing = [p for p in frames["path"] if not (workspace.root / p).is_file()]
    assert not missing, f"{len(missing)} manifest rows name files that do not exist"
    for row in manifests.records(frames):  # each row describes the file it names
        image = read_image_rgb(workspace.root / row["path"])
        assert image.shape[:2] == (row["height"], row["width"])
    assert _frames_stage(_info_json(workspace.root))["interrupted"] is True
    # The rerun finishes the job and cleans the killed run's leftovers.
    report = extract_frames(
        workspace, sampling="all", size="original", format="png", jobs=1, overwrite=True
    )
    assert report.ok and report.extracted + report.unchanged == 6
    frames = manifests.load(workspace, "frames")
    assert len(frames) == sum(120 + i for i in range(6))
    assert all(p.endswith(".png") for p in frames["path"])
    assert _files_under(workspace) == set(frames["path"])
    assert not [p for p in workspace.frames_dir.iterdir() if p.name.startswith(".")]
    stage = _frames_stage(_info_json(workspace.root))
    assert stage["interrupted"] is False and stage["settings"]["on_error"] == "skip"


def test_leftover_temporary_and_trash_folders_are_removed_by_the_next_run(ready):
    extract_frames(ready, count=2, size="24", jobs=1)
    for name in (".tmp-abc-1", ".old-abc-2"):
        (ready.frames_dir / name / "sub").mkdir(parents=True)
        (ready.frames_dir / name / "sub" / "x.jpg").write_bytes(b"x")
    (ready.frames_dir / ".tmp-file-3").write_bytes(b"x")
    report = extract_frames(ready, count=2, size="24", jobs=1)
    assert report.unchanged == 3
    assert not [p for p in ready.frames_dir.iterdir() if p.name.startswith(".")]


@pytest.fixture
def small_filesystem(tmp_path):
    """A 2 MiB tmpfs (needs root and mount permission; skipped otherwise)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill the disk needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.slow
def test_disk_full_names_the_path_and_a_rerun_resumes(small_filesystem, tmp_path):
    source = tmp_path / "src"
    for i in range(3):
        write_video(source / f"v{i}.mp4", 60 + i, fps=25, width=320, height=240, gop=25)
    workspace = init_workspace(small_filesystem / "ws")
    ingest(workspace, [source], jobs=1)
    result = CliRunner().invoke(
        app,
        ["-w", str(workspace.root), "frames", "--all", "--size", "original", "--format", "png"]
        + ["--quality", "100", "--jobs", "1"],
    )
    assert result.exit_code == 3, result.output
    message = " ".join(result.output.split())
    assert "the disk is full" in message and "rerun" in message
    assert str(workspace.frames_dir) in message and "unexpected" not in message
    # Consistent: every row names an existing file, and info says the run did not finish.
    frames = manifests.load(workspace, "frames", missing_ok=True)
    assert all((workspace.root / p).is_file() for p in frames["path"])
    assert not [p for p in workspace.frames_dir.iterdir() if p.name.startswith(".")]
    assert _frames_stage(_info_json(workspace.root))["interrupted"] is True
    done = subprocess.run(
        ["mount", "-o", "remount,size=64M", str(small_filesystem)], capture_output=True
    )
    assert done.returncode == 0, done.stderr
    report = extract_frames(
        workspace, sampling="all", size="original", format="png", quality=100, jobs=1
    )
    assert report.ok and report.extracted + report.unchanged == 3
    assert report.unchanged == frames["media_id"].nunique()  # finished media are kept
    frames = manifests.load(workspace, "frames")
    assert len(frames) == 60 + 61 + 62 and _files_under(workspace) == set(frames["path"])
    assert _frames_stage(_info_json(workspace.root))["interrupted"] is False


@pytest.mark.slow
def test_non_finite_and_bad_values_name_their_origin(ready):
    runner = CliRunner()
    root = str(ready.root)
    for value in ("inf", "nan", "-inf"):
        result = runner.invoke(app, ["-w", root, "frames", "--fps", value])
        assert result.exit_code == 2, result.output
        assert "--fps" in result.output and "finite" in " ".join(result.output.split())
    result = runner.invoke(app, ["-w", root, "frames", "--quality", "0"])
    assert result.exit_code == 2 and "--quality" in result.output
    result = runner.invoke(app, ["-w", root, "frames", "--format", "gif"])
    assert result.exit_code == 2 and "--format" in result.output and "jpg" in result.output
    with pytest.raises(UsageError, match="--fps"):
        resolve_settings(ready, fps=float("nan"))
    assert not ready.manifest_path("frames").exists()
    # A value of the file is blamed on the file, section and key, never on a flag.
    config = ready.root / "dataprep.toml"
    text = config.read_text()
    config.write_text(text.replace('size = "224"', 'size = "40x30"'))
    result = runner.invoke(app, ["-w", root, "frames"])
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert "dataprep.toml" in message and "[frames] size" in message and "--size" not in message
    result = runner.invoke(app, ["-w", root, "frames", "--resize", "fit", "--count", "1"])
    assert result.exit_code == 0, result.output


def test_on_error_fail_stops_at_a_damaged_media_and_keeps_the_others(workspace, tmp_path):
    (tmp_path / "bad").mkdir()
    _corrupt_copy(
        write_video(tmp_path / "full.mp4", 60, fps=10, gop=10), tmp_path / "bad" / "damaged.mp4"
    )
    write_image(tmp_path / "bad" / "good.png", 1)
    ingest(workspace, [tmp_path / "bad"], jobs=1)
    result = CliRunner().invoke(
        app, ["-w", str(workspace.root), "frames", "--all", "--on-error", "fail", "--jobs", "1"]
    )
    assert result.exit_code == 3, result.output
    message = " ".join(result.output.split())
    assert "damaged.mp4" in message and "--on-error skip" in message
    frames = manifests.load(workspace, "frames", missing_ok=True)
    assert all((workspace.root / p).is_file() for p in frames["path"])
    result = CliRunner().invoke(app, ["-w", str(workspace.root), "frames", "--all"])
    assert result.exit_code == 1, result.output
    record = json.loads((workspace.state_dir / "stages" / "frames.json").read_text())
    assert record["settings"]["on_error"] == "skip" and len(record["failures"]) == 1
    assert record["failures"][0]["item"].endswith("damaged.mp4")
