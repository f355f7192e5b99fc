"""Label Studio labeling configs generated from a workspace's classes and label type.

One table (:data:`TEMPLATES`) maps (label type, media kind) to the control tags. The ``Video``
tag always carries ``frameRate="$fps"`` and every video task carries the media's probed ``fps``,
so Label Studio's frame numbers are the decoder's (shifted by one: Label Studio counts from 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

from dataprep.errors import UsageError

#: Task data keys dataprep writes (and reads back on sync and import).
VIDEO_KEY = "video"
IMAGE_KEY = "image"
FPS_KEY = "fps"
MEDIA_ID_KEY = "media_id"

#: Control tag names (the ``from_name`` of results).
CHOICES_NAME = "label"
TIMELINE_NAME = "segment"
BOX_LABELS_NAME = "box"
VIDEO_BOX_NAME = "box_region"

_VIDEO = f'  <Video name="{VIDEO_KEY}" value="${VIDEO_KEY}" frameRate="${FPS_KEY}"/>'
_IMAGE = f'  <Image name="{IMAGE_KEY}" value="${IMAGE_KEY}"/>'


def _options(tag: str, classes: Sequence[str]) -> str:
    return "\n".join(f"    <{tag} value={quoteattr(c)}/>" for c in classes)


def _control(
    tag: str, name: str, to: str, option: str, classes: Sequence[str], attrs: str = ""
) -> list[str]:
    """A control tag named ``name`` on ``to`` with one ``option`` tag per class."""
    return [
        f'  <{tag} name="{name}" toName="{to}"{attrs}>',
        _options(option, classes),
        f"  </{tag}>",
    ]


_SINGLE = ' choice="single" showInline="true"'


def _video_choices(classes: Sequence[str]) -> str:
    return "\n".join(
        [_VIDEO, *_control("Choices", CHOICES_NAME, VIDEO_KEY, "Choice", classes, _SINGLE)]
    )


def _video_segments(classes: Sequence[str]) -> str:
    return "\n".join(
        [_VIDEO, *_control("TimelineLabels", TIMELINE_NAME, VIDEO_KEY, "Label", classes)]
    )


def _video_boxes(classes: Sequence[str]) -> str:
    return "\n".join(
        [
            *_control("Labels", BOX_LABELS_NAME, VIDEO_KEY, "Label", classes),
            _VIDEO,
            f'  <VideoRectangle name="{VIDEO_BOX_NAME}" toName="{VIDEO_KEY}"/>',
        ]
    )


def _image_choices(classes: Sequence[str]) -> str:
    return "\n".join(
        [_IMAGE, *_control("Choices", CHOICES_NAME, IMAGE_KEY, "Choice", classes, _SINGLE)]
    )


def _image_boxes(classes: Sequence[str]) -> str:
    return "\n".join(
        [_IMAGE, *_control("RectangleLabels", BOX_LABELS_NAME, IMAGE_KEY, "Label", classes)]
    )


#: (label_type, media kind) -> body builder.
TEMPLATES = {
    ("classification", "video"): _video_choices,
    ("segments", "video"): _video_segments,
    ("boxes", "video"): _video_boxes,
    ("classification", "image"): _image_choices,
    ("segments", "image"): _image_choices,  # an image has no time axis: whole-image classes
    ("boxes", "image"): _image_boxes,
}


def labeling_config(classes: Sequence[str], label_type: str, media_kind: str) -> str:
    """The labeling config XML for a project of ``media_kind`` media.

    Raises:
        UsageError: when there are no classes, or the label type / kind is unknown.
    """
    if not classes:
        raise UsageError(
            "dataprep.toml lists no classes; add them under [project] classes before "
            "`dataprep labels push --create`"
        )
    builder = TEMPLATES.get((label_type, media_kind))
    if builder is None:
        raise UsageError(f"no labeling config for label type {label_type!r} and {media_kind} media")
    return "<View>\n" + builder(list(classes)) + "\n</View>\n"


def media_key(media_kind: str) -> str:
    """The task data key holding the media URL."""
    return VIDEO_KEY if media_kind == "video" else IMAGE_KEY


def kind_of_config(label_config: str) -> str | None:
    """Which media kind an existing project's config shows (``video``/``image``), if any."""
    if "<Video" in label_config:
        return "video"
    if "<Image" in label_config:
        return "image"
    return None
