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


class _Clock:
    """A clock the test moves by hand (the checkpoint rule, not the machine's speed)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_checkpoints_wait_longer_after_a_slow_save(workspace):
    from dataprep.stage import SAVE_SHARE_FACTOR, StageRun

    clock = _Clock()
    run = StageRun(workspace, "frames", checkpoint_s=5.0, adaptive=True, clock=clock)
    saves: list[float] = []

    def save(duration: float):
        def do() -> None:
            saves.append(clock.now)
            clock.now += duration  # the save itself takes this long

        return do

    clock.now += 4.9
    assert not run.checkpoint(save(0.1)) and saves == []  # not due yet
    clock.now += 0.1
    assert run.checkpoint(save(0.1)) and len(saves) == 1  # due after 5 s
    assert run.checkpoint_interval == 5.0  # a quick save keeps the configured interval
    clock.now += 5.0
    assert run.checkpoint(save(2.0)) and len(saves) == 2  # a save of 2 s (a big manifest)
    assert run.checkpoint_interval == SAVE_SHARE_FACTOR * 2.0
    clock.now += 17.9
    assert not run.checkpoint_due() and not run.checkpoint(save(0.1))
    clock.now += 0.1
    assert run.checkpoint(save(0.1)) and len(saves) == 3  # 18 s later: saving took 2/20 of it
    assert run.checkpoint_interval == 5.0  # and the interval comes back down with the save time


def test_a_fixed_interval_from_the_environment_does_not_adapt(workspace, monkeypatch):
    from dataprep.stage import StageRun

    monkeypatch.setenv("DATAPREP_CHECKPOINT_SECONDS", "0")
    clock = _Clock()
    run = StageRun(workspace, "frames", clock=clock)
    calls = []

    def slow_save() -> None:
        calls.append(clock.now)
        clock.now += 3.0

    for _ in range(3):
        assert run.checkpoint(slow_save)  # 0: after every item, however long saves take
    assert len(calls) == 3 and run.checkpoint_interval == 0.0
    monkeypatch.delenv("DATAPREP_CHECKPOINT_SECONDS")
    assert StageRun(workspace, "frames").adaptive  # the default adapts
