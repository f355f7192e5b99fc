"""Which frames come out: sampling rules (pure) and decoding of real H.264 videos.

Every generated frame shows its own index (dataprep.testing.media), so these tests check the
exact frames, not only how many.
"""

from __future__ import annotations

import numpy as np
import pytest

from dataprep.decode import index_stream, read_frames
from dataprep.errors import UsageError
from dataprep.imageops import parse_size_spec, resize
from dataprep.sampling import SamplingSpec, select_frames
from dataprep.testing.media import index_frame, read_frame_index, write_image, write_video

VFR_TIMESTAMPS = [0.0, 0.1, 0.15, 0.5, 0.55, 0.6, 1.2, 1.25, 1.3, 2.0, 2.05, 2.1]


def _picked(path, **options):
    frames = list(read_frames(path, size=None, **options))
    for frame in frames:
        assert read_frame_index(frame.image) == frame.frame_index
    return [f.frame_index for f in frames], [round(f.timestamp_s, 4) for f in frames]


# ---- pure sampling rules -------------------------------------------------------------------


def test_select_fps_takes_the_frame_shown_at_each_instant():
    timestamps = [i / 10 for i in range(30)]  # 10 fps, 3 s
    assert select_frames(timestamps, SamplingSpec("fps", fps=2)) == [0, 5, 10, 15, 20, 25]
    assert select_frames(timestamps, SamplingSpec("fps", fps=3)) == [
        0,
        3,
        6,
        10,
        13,
        16,
        20,
        23,
        26,
    ]
    # Asking for more than the video has never duplicates frames.
    assert select_frames(timestamps, SamplingSpec("fps", fps=50)) == list(range(30))


def test_select_fps_on_variable_frame_rate_uses_timestamps():
    chosen = select_frames(VFR_TIMESTAMPS, SamplingSpec("fps", fps=2), end_s=2.15)
    # instants 0, .5, 1, 1.5, 2 -> frames shown then: 0 (0.0), 3 (0.5), 5 (0.6), 8 (1.3), 9 (2.0)
    assert chosen == [0, 3, 5, 8, 9]


def test_select_every_count_all_keyframes():
    timestamps = [i / 10 for i in range(30)]
    assert select_frames(timestamps, SamplingSpec("every", every=7)) == [0, 7, 14, 21, 28]
    assert select_frames(timestamps, SamplingSpec("count", count=3)) == [5, 15, 25]
    assert select_frames(timestamps, SamplingSpec("count", count=100)) == list(range(30))
    assert select_frames(timestamps, SamplingSpec("all")) == list(range(30))
    keys = [i % 12 == 0 for i in range(30)]
    assert select_frames(timestamps, SamplingSpec("keyframes"), keyframes=keys) == [0, 12, 24]


def test_select_count_gives_exactly_k_distinct_frames_on_vfr():
    # One frame lasting most of the video covers several slice centres.
    timestamps = [0.0, 0.04, 0.08, 0.12, 9.0, 9.04, 9.08]
    chosen = select_frames(timestamps, SamplingSpec("count", count=5), end_s=9.12)
    assert len(chosen) == 5 and chosen == sorted(set(chosen))
    assert all(0 <= i < len(timestamps) for i in chosen)


def test_bad_sampling_options_are_usage_errors():
    with pytest.raises(UsageError, match="--fps"):
        SamplingSpec("fps", fps=0)
    with pytest.raises(UsageError, match="--every"):
        SamplingSpec("every", every=0)
    with pytest.raises(UsageError, match="sampling 'sometimes'"):
        SamplingSpec("sometimes")


# ---- real decoding -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cfr_video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("v") / "cfr.mp4", 60, fps=10, gop=12)


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory):
    return write_video(
        tmp_path_factory.mktemp("v") / "vfr.mp4",
        len(VFR_TIMESTAMPS),
        timestamps_s=VFR_TIMESTAMPS,
        gop=4,
    )


def test_index_stream_lists_timestamps_and_keyframes(cfr_video):
    index = index_stream(cfr_video)
    assert index.frame_count == 60
    assert index.timestamps_s[:3] == pytest.approx([0.0, 0.1, 0.2])
    assert [i for i, key in enumerate(index.keyframe) if key] == [0, 12, 24, 36, 48]


def test_cfr_every_mode_returns_the_promised_frames(cfr_video):
    assert _picked(cfr_video, sampling="all") == (list(range(60)), [i / 10 for i in range(60)])
    assert _picked(cfr_video, sampling="every", every=7)[0] == list(range(0, 60, 7))
    indices, timestamps = _picked(cfr_video, sampling="fps", fps=3)
    assert indices == [0, 3, 6, 10, 13, 16, 20, 23, 26, 30, 33, 36, 40, 43, 46, 50, 53, 56]
    assert timestamps[:4] == [0.0, 0.3, 0.6, 1.0]
    assert _picked(cfr_video, sampling="count", count=5)[0] == [6, 18, 30, 42, 54]
    assert _picked(cfr_video, sampling="keyframes")[0] == [0, 12, 24, 36, 48]


def test_sparse_count_seeks_and_still_returns_exact_frames(tmp_path):
    # Long GOPs and picks far apart: the decoder seeks between picks.
    video = write_video(tmp_path / "long.mp4", 240, fps=24, gop=24)
    indices, timestamps = _picked(video, sampling="count", count=4)
    assert indices == [30, 90, 150, 210]
    assert timestamps == [1.25, 3.75, 6.25, 8.75]
    assert _picked(video, sampling="every", every=50)[0] == [0, 50, 100, 150, 200]


def test_vfr_sampling_by_timestamps(vfr_video):
    index = index_stream(vfr_video)
    assert index.timestamps_s == pytest.approx(VFR_TIMESTAMPS)
    indices, timestamps = _picked(vfr_video, sampling="fps", fps=2)
    assert indices == [0, 3, 5, 8, 9]
    assert timestamps == [0.0, 0.5, 0.6, 1.3, 2.0]
    assert _picked(vfr_video, sampling="all")[1] == pytest.approx(VFR_TIMESTAMPS)
    count_indices, _ = _picked(vfr_video, sampling="count", count=4)
    assert len(count_indices) == 4 and count_indices == sorted(set(count_indices))
    assert _picked(vfr_video, sampling="every", every=5)[0] == [0, 5, 10]
    assert _picked(vfr_video, sampling="keyframes")[0] == [0, 4, 8]


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_container_rotation_is_applied(tmp_path, rotation):
    video = write_video(tmp_path / f"rot{rotation}.mp4", 5, width=64, height=48, rotation=rotation)
    frames = list(read_frames(video, sampling="all", size=None))
    assert len(frames) == 5
    image = frames[3].image
    assert image.shape == ((64, 48, 3) if rotation in (90, 270) else (48, 64, 3))
    # The stored rotation is counter-clockwise: undo it to read the index.
    assert read_frame_index(np.rot90(image, k=-rotation // 90)) == 3


def test_images_go_through_the_same_path(tmp_path):
    image = write_image(tmp_path / "still.png", 9, width=80, height=60)
    (frame,) = read_frames(image, sampling="fps", fps=5, size="30")
    assert (frame.frame_index, frame.timestamp_s) == (0, 0.0)
    assert frame.image.shape == (30, 40, 3)
    assert read_frame_index(frame.image) == 9
    # RGB out: the marker cell is red.
    assert frame.image[2, 2, 0] > 150 and frame.image[2, 2, 2] < 100


def test_read_frames_is_rgb_and_resized(cfr_video):
    (frame,) = list(read_frames(cfr_video, sampling="count", count=1, size="24"))
    assert frame.image.dtype == np.uint8 and frame.image.shape == (24, 32, 3)
    assert frame.image[1, 1, 0] > 150 and frame.image[1, 1, 2] < 100


# ---- resize modes --------------------------------------------------------------------------


def test_resize_modes_shapes_and_content():
    image = index_frame(5, 64, 48)
    assert resize(image, parse_size_spec("24", "shorter")).shape == (24, 32, 3)
    assert resize(image, parse_size_spec("32x32", "stretch")).shape == (32, 32, 3)
    fit = resize(image, parse_size_spec("32x32", "fit"))
    assert fit.shape == (32, 32, 3)
    # letterbox: 32x24 picture centred, black bands of 4 rows above and below
    assert fit[:4].max() == 0 and fit[-4:].max() == 0
    assert read_frame_index(fit[4:28]) == 5
    crop = resize(image, parse_size_spec("32x32", "crop"))
    assert crop.shape == (32, 32, 3)
    # center crop of the 43x32 scaled picture: the sides are cut, rows intact
    assert read_frame_index(resize(image, parse_size_spec("43x32", "crop"))) == 5
    assert resize(image, None) is image
    # S with a box mode means S x S
    assert resize(image, parse_size_spec("20", "fit")).shape == (20, 20, 3)


def test_resize_mode_rules():
    with pytest.raises(UsageError, match="--resize fit"):
        parse_size_spec("320x240", "shorter")
    with pytest.raises(UsageError, match="--resize 'zoom'"):
        parse_size_spec("224", "zoom")
    with pytest.raises(UsageError, match="size"):
        parse_size_spec("abc", "shorter")
    assert parse_size_spec("original", "shorter") is None


@pytest.mark.parametrize(
    "mode,expected",
    [("shorter", (32, 24)), ("fit", (40, 30)), ("crop", (40, 30)), ("stretch", (40, 30))],
)
def test_every_resize_mode_through_read_frames(cfr_video, mode, expected):
    size = "24" if mode == "shorter" else "40x30"
    (frame,) = list(read_frames(cfr_video, sampling="count", count=1, size=size, resize=mode))
    assert frame.image.shape[:2] == (expected[1], expected[0])
    if mode in ("shorter", "stretch"):
        assert read_frame_index(frame.image) == frame.frame_index
