"""What a format writer needs: :class:`ExportContext` (frame files read ahead, progress,
per-example failures under the stage's ``--on-error`` policy)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataprep.errors import MediaError
from dataprep.export.selection import Example, FrameItem, Selection, frame_file
from dataprep.export.shards import image_info, read_ahead
from dataprep.stage import StageRun
from dataprep.workspace import Workspace

ProgressFn = Callable[[int, int], None]


@dataclass
class ExportContext:
    """What a format writer needs."""

    workspace: Workspace
    out_dir: Path
    selection: Selection
    compression: str
    shard_size: int
    progress: ProgressFn | None
    done_shards: dict[str, dict]  # shard -> {"size", "images"}, kept from an interrupted run
    finished: Callable[[str, int, Counter], None]  # record a shard: name, size, image headers
    run: StageRun | None = None  # the stage run: its --on-error policy for unreadable frames
    images: Counter = field(default_factory=Counter)  # (h, w, c, encoding) -> examples
    headers: dict = field(default_factory=dict)  # see header()
    failed: set[str] = field(default_factory=set)  # keys of examples left out (--on-error skip)
    written: int = 0  # examples read so far (for progress)
    resumed: int = 0  # shards kept from an interrupted run
    total: int = 0
    bytes_written: int = 0
    executor: Any = None  # a Ray executor of dataprep.engine: TFRecord shards as its tasks

    def class_index(self, label: str) -> int:
        return self.selection.class_names.index(label)

    def read_images(self, example: Example) -> tuple[list[bytes], tuple[int, int, int, str]]:
        """The encoded frames of an example (padding repeats the last real frame's bytes) and
        ``(height, width, channels, encoding)`` of its first frame. Runs in reader threads.

        Raises:
            MediaError: naming the frame file that cannot be read or is not an image.
        """
        cache: dict[str, bytes] = {}
        images = []
        for frame in example.frames:
            if frame.path not in cache:
                path = frame_file(self.workspace, frame)
                try:
                    cache[frame.path] = path.read_bytes()
                except OSError as exc:
                    raise MediaError(
                        f"{path}: frame file of media {frame.media_id} frame {frame.frame_index} "
                        f"cannot be read ({exc.strerror}); re-run `dataprep frames`"
                    ) from None
            images.append(cache[frame.path])
        return images, self.header(images[0], example.frames[0])

    def header(self, data: bytes, frame: FrameItem) -> tuple[int, int, int, str]:
        """``(height, width, channels, encoding)`` of a frame file's bytes.

        Pillow reads the header of the first frame of each (media, copy, manifest size, file
        type); the other frames of that group share it. Reading every header costs about as
        much as writing the example (measured: ~70-150 us against ~400 us per 224 px frame).

        Raises:
            MediaError: naming the frame file when it is not a JPEG, PNG or WebP image.
        """
        key = (frame.media_id, frame.copy_index, frame.width, frame.height, data[:4])
        found = self.headers.get(key)
        if found is None:
            found = self.headers[key] = image_info(data, str(frame_file(self.workspace, frame)))
        return found

    def _read_or_error(self, example: Example):
        try:
            return self.read_images(example)
        except MediaError as exc:
            return exc

    def iter_with_images(self, examples: list[Example], *, kept: bool = False) -> Iterator:
        """Yields ``(example, images, shape)`` reading frame files ahead in threads.

        An example whose frames cannot be read is a failed item of the stage run: it stops the
        export under ``--on-error fail`` and is left out (and counted) under ``skip``.
        ``kept``: the examples of a shard kept from an interrupted run (only accounted for).
        """
        for example, result in read_ahead(examples, self._read_or_error):
            self.written += 1
            if isinstance(result, MediaError):
                if not kept:
                    self.failed.add(example.key)
                    if self.run is None:
                        raise result
                    self.run.item_failed(example.key, str(result))
                self._report_progress()
                continue
            images, header = result
            self.images[header] += 1  # counted here, in one thread
            yield example, images, header[:3]
            self._report_progress()

    def _report_progress(self) -> None:
        if self.progress:
            self.progress(self.written, self.total)

    def skip(self, shard: str, examples: list[Example]) -> None:
        """Accounts for the examples of a shard kept from an interrupted run: their image
        headers as the progress file recorded them (no frame is read again), and progress."""
        for header, count in self.done_shards[shard]["images"]:
            self.images[tuple(header)] += count
        self.written += len(examples)
        self._report_progress()

    def shard_written(self, shard: str, size: int, images_before: Counter) -> None:
        """Records a shard this run wrote (its size, the image headers it added)."""
        self.bytes_written += size
        self.finished(shard, size, self.images - images_before)
