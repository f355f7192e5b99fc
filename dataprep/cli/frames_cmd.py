"""``dataprep frames``: extract frames of every ingested media."""

from __future__ import annotations

from typing import Annotated

import typer

from dataprep.cli.common import (
    JobsOpt,
    JsonOpt,
    OnErrorOpt,
    OverwriteOpt,
    WorkspaceOpt,
    console,
    handle_errors,
    open_ws,
    print_failed,
)
from dataprep.cli.engine_opts import EngineOpt, RayAddressOpt, engine_spec
from dataprep.cli.progress import run_and_report
from dataprep.errors import UsageError


@handle_errors
def frames(
    fps: Annotated[
        float | None, typer.Option("--fps", help="Frames per second, by timestamps.")
    ] = None,
    every: Annotated[int | None, typer.Option("--every", help="Every Nth decoded frame.")] = None,
    count: Annotated[
        int | None, typer.Option("--count", help="K frames spread evenly over time.")
    ] = None,
    keyframes: Annotated[bool, typer.Option("--keyframes", help="Only key frames.")] = False,
    all_frames: Annotated[bool, typer.Option("--all", help="Every frame.")] = False,
    size: Annotated[
        str | None,
        typer.Option(
            "--size", help="S (shorter side, aspect kept), WxH (with --resize), or original."
        ),
    ] = None,
    resize: Annotated[
        str | None,
        typer.Option("--resize", help="shorter, fit (letterbox), crop (center) or stretch."),
    ] = None,
    image_format: Annotated[str | None, typer.Option("--format", help="jpg, png or webp.")] = None,
    quality: Annotated[
        int | None,
        typer.Option("--quality", help="1..100 (PNG: compression effort)."),
    ] = None,
    jobs: JobsOpt = None,
    overwrite: OverwriteOpt = False,
    keep_partial: Annotated[
        bool, typer.Option("--keep-partial", help="Keep frames decoded before a damaged part.")
    ] = False,
    on_error: OnErrorOpt = "skip",
    engine: EngineOpt = None,
    ray_address: RayAddressOpt = None,
    json_output: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Extract frames of ingested media into frames/<media_id>/ and manifests/frames.parquet.

    Choose at most one sampling option; the rest comes from [frames] in dataprep.toml. A rerun
    skips media already done with the same settings; other settings need --overwrite. A media
    that fails is recorded and the run goes on (`--on-error fail` stops there); exit code 1 when
    some media failed (listed).

    Example: `dataprep frames --fps 5 --size 224`
    """
    from dataprep.frames import extract_frames

    sampling = _sampling(fps, every, count, keyframes, all_frames)  # before the workspace opens
    ws = open_ws(workspace)
    run_and_report(
        "frames",
        "frames",
        extract_frames,
        ws,
        json_output=json_output,
        summary=_print_summary,
        sampling=sampling,
        fps=fps,
        every=every,
        count=count,
        size=size,
        resize=resize,
        format=image_format,
        quality=quality,
        jobs=jobs,
        overwrite=overwrite,
        keep_partial=keep_partial,
        on_error=on_error,
        engine=engine_spec(ws, engine, ray_address),
    )


def _sampling(
    fps: float | None, every: int | None, count: int | None, keyframes: bool, all_frames: bool
) -> str | None:
    """The one sampling mode the options name (None: from ``[frames]``).

    Raises:
        UsageError: more than one sampling option.
    """
    given = (fps is not None, every is not None, count is not None, keyframes, all_frames)
    names = ("fps", "every", "count", "keyframes", "all")
    modes = [name for name, on in zip(names, given, strict=True) if on]
    if len(modes) > 1:
        raise UsageError(f"choose one sampling option, not --{' and --'.join(modes)}")
    return modes[0] if modes else None


def _print_summary(report) -> None:
    rate = report.frames_written / report.seconds if report.seconds else 0.0
    console().print(
        f"{report.media} media ({report.settings}): {report.extracted} extracted, "
        f"{report.unchanged} already done, {len(report.failed)} failed; wrote "
        f"{report.frames_written} frames in {report.seconds:.1f}s ({rate:,.1f} frames/s); "
        f"{report.frames_total} frames in the manifest"
    )
    print_failed(
        report.failed,
        lambda f: f" (kept {f['frames_kept']} frames)" if f["frames_kept"] else "",
    )


def register(app: typer.Typer) -> None:
    app.command("frames")(frames)
