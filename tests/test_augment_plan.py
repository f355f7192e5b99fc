"""augment's plan read a media at a time: fewer copies, copies whose file is gone, and a frames
manifest in any row order give the manifest (and files) a plan held in memory would."""

from __future__ import annotations

import pytest

from dataprep import manifests
from dataprep.augment_plan import STALE_LIST
from dataprep.augment_stage import augment_frames
from dataprep.frames import extract_frames
from dataprep.ingest import ingest
from dataprep.testing.media import write_image, write_video

KEY = ["media_id", "frame_index", "copy_index"]


@pytest.fixture
def extracted(workspace, tmp_path):
    for i in range(3):
        write_video(tmp_path / "src" / f"v{i}.mp4", 12 + i, fps=10)
    write_image(tmp_path / "src" / "b.png", 3)
    ingest(workspace, [tmp_path / "src"], jobs=1)
    extract_frames(workspace, every=3, size="32", jobs=1)
    return workspace


def _files(ws) -> dict[str, bytes]:
    return {str(p.relative_to(ws.root)): p.read_bytes() for p in ws.frames_dir.rglob("*.*")}


def _manifest(ws):
    return manifests.load(ws, "frames").sort_values(KEY).reset_index(drop=True)


def test_fewer_copies_and_missing_files_are_settled_before_the_work(extracted):
    first = augment_frames(extracted, pipeline="light", copies=3, seed=1, jobs=1)
    frames = _manifest(extracted)
    sources = int((~frames["augmented"]).sum())
    assert first.written == 3 * sources and first.media == 4
    gone = frames[frames["augmented"] & (frames["copy_index"] == 1)]["path"].iloc[0]
    (extracted.root / gone).unlink()
    fewer = augment_frames(extracted, pipeline="light", copies=2, seed=1, jobs=1)
    assert fewer.removed == sources  # the third copies
    assert fewer.written == 1 and fewer.kept == 2 * sources - 1  # the lost file is made again
    after = _manifest(extracted)
    assert int(after["augmented"].sum()) == 2 * sources and after["copy_index"].max() == 2
    assert set(_files(extracted)) == set(after["path"])  # no file unnamed, no name without file
    assert not (extracted.state_dir / STALE_LIST).exists()


def test_a_manifest_in_any_row_order_gets_the_same_copies(extracted, tmp_path):
    import shutil

    from dataprep.workspace import open_workspace

    shuffled = open_workspace(shutil.copytree(extracted.root, tmp_path / "shuffled"))
    frames = manifests.load(shuffled, "frames")
    manifests.save(shuffled, "frames", frames.sample(frac=1.0, random_state=2))
    a = augment_frames(extracted, pipeline="light", copies=2, seed=4, jobs=1)
    b = augment_frames(shuffled, pipeline="light", copies=2, seed=4, jobs=1)
    assert (a.written, a.media, a.rows) == (b.written, b.media, b.rows)
    assert _manifest(extracted).equals(_manifest(shuffled))
    assert _files(extracted) == _files(shuffled)  # the same draws, byte for byte
