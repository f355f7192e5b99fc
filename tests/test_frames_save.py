"""The frames driver's streamed saves (the Ray engine's path) without a cluster: a manifest
that disagrees with the per-media records (a driver killed between committing a media and
saving the manifest) is repaired from the records, one media at a time."""

from __future__ import annotations

import pandas as pd

from dataprep import manifests
from dataprep.frames import FramesReport, _plan, extract_frames, resolve_settings
from dataprep.frames_save import StreamedSaver
from dataprep.ingest import ingest
from dataprep.testing.media import write_image
from dataprep.workspace import init_workspace

KEY = ["media_id", "frame_index", "copy_index"]


def test_streamed_save_restores_what_a_killed_run_committed(tmp_path):
    for i in range(5):
        write_image(tmp_path / "raw" / f"img{i}.png", i, width=64, height=48)
    ws = init_workspace(tmp_path / "ws")
    ingest(ws, [tmp_path / "raw"], jobs=1)
    extract_frames(ws, size="32", jobs=1)
    full = manifests.load(ws, "frames")
    ids = sorted(full["media_id"].unique())
    assert len(full) == len(ids) == 5
    # the manifest as a killed run may leave it: two media committed but not saved, one with
    # rows of older settings; plus a copy made by augment (kept) and a media ingest forgot
    damaged = full[~full["media_id"].isin(ids[:2])].copy()
    damaged.loc[damaged["media_id"] == ids[3], "fingerprint"] = "older"
    copy = full[full["media_id"] == ids[2]].assign(augmented=True, copy_index=1, path="x.jpg")
    ghost = full[full["media_id"] == ids[4]].assign(media_id="zz-gone")
    manifests.save(ws, "frames", pd.concat([damaged, copy, ghost], ignore_index=True))

    settings = resolve_settings(ws, size="32")
    plan = _plan(ws, settings, None, False, FramesReport(), streamed=True)
    assert plan.todo == [] and plan.old_manifest is None
    assert all("rows" not in r and r["row_count"] == 1 for r in plan.records.values())
    saver = StreamedSaver.start(ws, plan)
    assert set(saver.repaired) == {ids[0], ids[1], ids[3]} and saver.unknown == {"zz-gone"}
    assert saver.save(set()) == 5
    saver.close()
    rows = manifests.records(pd.concat([full, copy], ignore_index=True))
    want = manifests.from_records("frames", rows).sort_values(KEY).reset_index(drop=True)
    assert manifests.load(ws, "frames").equals(want)
    assert not (ws.state_dir / "frames" / ".parts").exists()
