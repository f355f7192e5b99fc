from __future__ import annotations

from dataprep import manifests
from dataprep.ingest import ingest
from dataprep.stages import load_stage, record_stage, stage_overview
from dataprep.testing.media import write_image, write_video


def test_ingest_is_recorded_and_later_stages_go_stale(workspace, tmp_path):
    src = tmp_path / "src"
    write_video(src / "a.mp4", 5)
    ingest(workspace, [src], jobs=1)
    record = load_stage(workspace, "ingest")
    assert record["counts"]["added"] == 1 and record["settings"]["mode"] == "reference"

    record_stage(workspace, "frames", settings={"fps": 5}, counts={"frames": 3})
    record_stage(workspace, "export", settings={}, counts={}, inputs=("frames.parquet",))
    overview = {s["stage"]: s for s in stage_overview(workspace)}
    assert overview["frames"]["ran"] and not overview["frames"]["stale"]
    assert overview["export"]["ran"] and not overview["export"]["stale"]

    write_image(src / "b.png")
    ingest(workspace, [src], jobs=1)  # media.parquet changes after frames ran
    overview = {s["stage"]: s for s in stage_overview(workspace)}
    assert overview["frames"]["stale"] and overview["frames"]["changed_inputs"] == ["media.parquet"]
    assert load_stage(workspace, "ingest")["settings"]["paths"] == [str(src)]
    assert len(manifests.load(workspace, "media")) == 2
    # export read frames.parquet, which has not changed, but the frames stage is now stale
    assert overview["export"]["stale"] and overview["export"]["stale_upstream"] == ["frames"]
    assert overview["export"]["changed_inputs"] == []
