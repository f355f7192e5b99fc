"""``dataprep audit --html``: one self-contained HTML file (no script, no external resource).

Plots are PNG files made with matplotlib and thumbnails are frames decoded from the media, all
embedded as ``data:`` URIs, so the file can be mailed or archived and opens anywhere. Sections:
summary, class balance per split, near-duplicate clusters side by side, leaks, label suspects
with their frames, bad frames and media, class findings, and agreement between annotators
(from ``labels stats``, when annotations were synced from Label Studio).
"""

from __future__ import annotations

import base64
import html
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.atomic import atomic_write_text

THUMB = 96  # thumbnail shorter side in pixels
MAX_CLUSTERS = 40
MAX_ROWS = 60
CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.3em .6em;
text-align:left;vertical-align:top;font-size:.9em}th{background:#f4f4f4}
.strip{display:flex;gap:.8em;flex-wrap:wrap;margin:.6em 0;padding:.5em;background:#fafafa;
border:1px solid #eee}.card{font-size:.8em;text-align:center}.card img{display:block;
image-rendering:pixelated;border:1px solid #ccc;margin:auto}.muted{color:#777}
.kind{font-weight:bold}code{font-size:.95em}
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def png_data_uri(image_rgb: np.ndarray) -> str:
    """An RGB uint8 image as a ``data:image/png;base64,...`` URI."""
    import cv2

    ok, data = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - cv2 encodes any uint8 image
        raise ValueError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode("ascii")


def _figure_uri(fig) -> str:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _read_frames():
    from dataprep.audit.signatures import _read_frames

    return _read_frames()


class Thumbnails:
    """Decodes each media once, on its signature's time grid, for the frames asked for."""

    def __init__(self, media: list[dict[str, Any]], signatures: dict[str, Any]):
        self.media = {row["media_id"]: row for row in media}
        self.signatures = signatures
        self.cache: dict[str, dict[int, str]] = {}

    def _decode(self, media_id: str) -> dict[int, str]:
        row, signature = self.media.get(media_id), self.signatures.get(media_id)
        out: dict[int, str] = {}
        if row is None:
            return out
        rate = signature.rate if signature is not None and signature.rate else 10.0
        try:
            for frame in _read_frames()(
                row["path"], sampling="fps", fps=rate, size=str(THUMB), resize="shorter"
            ):
                out[frame.frame_index] = png_data_uri(frame.image)
                if len(out) >= 256:
                    break
        except Exception:  # noqa: BLE001 - a report shows what it can; the audit lists the error
            return out
        return out

    def uri(self, media_id: str, frame_index: int | None) -> str | None:
        if media_id not in self.cache:
            self.cache[media_id] = self._decode(media_id)
        frames = self.cache[media_id]
        if not frames:
            return None
        if frame_index is None or frame_index not in frames:
            keys = sorted(frames)
            target = keys[len(keys) // 2] if frame_index is None else frame_index
            frame_index = min(keys, key=lambda k: abs(k - target))
        return frames[frame_index]

    def card(self, media_id: str, frame_index: int | None, caption: str) -> str:
        uri = self.uri(media_id, frame_index)
        image = (
            f'<img src="{uri}" alt="media {_esc(media_id)}" height="{THUMB}">'
            if uri
            else '<div class="muted">(no frame)</div>'
        )
        return f'<div class="card">{image}{caption}</div>'


def _balance_section(label_of: dict, split_of: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for media_id, label in label_of.items():
        counts[split_of.get(media_id, "unsplit")][label or "(unlabelled)"] += 1
    splits = [s for s in ("train", "val", "test", "unsplit") if s in counts]
    classes = sorted({c for per in counts.values() for c in per})
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(classes) + 2), 3))
    width = 0.8 / max(1, len(splits))
    for k, split in enumerate(splits):
        total = sum(counts[split].values()) or 1
        shares = [counts[split][c] / total for c in classes]
        ax.bar(np.arange(len(classes)) + k * width, shares, width, label=split)
    ax.set_xticks(np.arange(len(classes)) + width * (len(splits) - 1) / 2, classes, rotation=45)
    ax.set_ylabel("share of the split's media")
    ax.legend()
    uri = _figure_uri(fig)
    plt.close(fig)
    head = "".join(f"<th>{_esc(c)}</th>" for c in classes)
    body = "".join(
        f"<tr><td>{split}</td>" + "".join(f"<td>{counts[split][c]}</td>" for c in classes) + "</tr>"
        for split in splits
    )
    return (
        '<h2 id="balance">Class balance per split</h2>'
        f'<img src="{uri}" alt="class balance per split">'
        f"<table><tr><th>split</th>{head}</tr>{body}</table>"
    )


def _clusters_section(result, thumbs: Thumbnails) -> str:
    pairs = [f for f in result.findings if f["kind"] == "near_duplicate"]
    members: dict[str, dict[str, int | None]] = defaultdict(dict)
    for pair in pairs:
        members[pair["cluster"]].setdefault(pair["media_id"], pair["frame_start"])
        members[pair["cluster"]].setdefault(pair["other_media_id"], pair["other_frame_start"])
    parts = [f'<h2 id="duplicates">Near-duplicate clusters ({len(members)})</h2>']
    if not members:
        parts.append('<p class="muted">No near-duplicates found.</p>')
    for cluster in sorted(members, key=lambda c: (-len(members[c]), c))[:MAX_CLUSTERS]:
        cards = []
        splits = set()
        for media_id, frame in sorted(members[cluster].items()):
            split = result.split_of.get(media_id)
            splits.add(split)
            caption = (
                f"<code>{_esc(media_id)}</code><br>{_esc(result.label_of.get(media_id))}"
                f" &middot; {_esc(split or 'unsplit')}"
            )
            cards.append(thumbs.card(media_id, frame, caption))
        leak = " &mdash; <b>leak across splits</b>" if len(splits - {None}) > 1 else ""
        parts.append(
            f"<p><code>{_esc(cluster)}</code>: {len(members[cluster])} media{leak}</p>"
            f'<div class="strip">{"".join(cards)}</div>'
        )
    return "".join(parts)


def _rows_table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _suspects_section(result, thumbs: Thumbnails) -> str:
    rows = [f for f in result.findings if f["kind"] == "label_suspect"]
    parts = [f'<h2 id="suspects">Label suspects ({len(rows)})</h2>']
    if result.report.run is None:
        parts.append('<p class="muted">Not checked: run <code>dataprep audit --run RUN</code>.</p>')
    elif not rows:
        parts.append('<p class="muted">No suspects among the held-out media.</p>')
    for row in rows[:MAX_ROWS]:
        signature = result.signatures.get(row["media_id"])
        indices = [None]
        if signature is not None and len(signature) > 1:
            picks = np.linspace(0, len(signature) - 1, 3).round().astype(int)
            indices = [int(signature.frame_index[p]) for p in picks]
        cards = "".join(
            thumbs.card(row["media_id"], i, f"frame {i}" if i is not None else "") for i in indices
        )
        parts.append(
            f"<p><code>{_esc(row['media_id'])}</code>: labelled <b>{_esc(row['label'])}</b>, "
            f"suggested <b>{_esc(row['suggested_label'])}</b> (score {row['score']:.3f}; "
            f'{_esc(row["detail"])})</p><div class="strip">{cards}</div>'
        )
    return "".join(parts)


def _bad_section(result, thumbs: Thumbnails) -> str:
    kinds = ("unreadable", "blank", "frozen", "dark", "blurry")
    rows = [f for f in result.findings if f["kind"] in kinds]
    parts = [f'<h2 id="bad">Bad frames and media ({len(rows)})</h2>']
    if not rows:
        parts.append('<p class="muted">None found.</p>')
    cards = []
    for row in rows[:MAX_ROWS]:
        caption = (
            f'<span class="kind">{_esc(row["kind"])}</span> <code>{_esc(row["media_id"])}</code>'
            f"<br>frames {_esc(row.get('frame_start'))}-{_esc(row.get('frame_end'))}"
            f"<br>{_esc(row['action'])}"
        )
        if row["kind"] == "unreadable":
            cards.append(f'<div class="card">{caption}<br>{_esc(row["detail"])}</div>')
        else:
            cards.append(thumbs.card(row["media_id"], row.get("frame_start"), caption))
    if cards:
        parts.append(f'<div class="strip">{"".join(cards)}</div>')
    return "".join(parts)


def _agreement_section(workspace) -> str:
    parts = ['<h2 id="agreement">Agreement between annotators</h2>']
    if not workspace.manifest_path("labels").exists():
        parts.append(
            '<p class="muted">No annotations synced from Label Studio (labels come from folder '
            "names), so there is no agreement to measure.</p>"
        )
        return "".join(parts)
    from dataprep.labels.stats import labels_stats

    stats = labels_stats(workspace)
    agreement = stats.get("agreement") or {}
    parts.append(
        f"<p>{stats['annotations']} annotations by {len(stats['annotators'])} annotators on "
        f"{stats['media']} media.</p>"
    )
    parts.append(_nested_table(agreement))
    return "".join(parts)


def _nested_table(data: Any) -> str:
    if isinstance(data, dict):
        rows = "".join(
            f"<tr><th>{_esc(k)}</th><td>{_nested_table(v)}</td></tr>" for k, v in data.items()
        )
        return f"<table>{rows}</table>" if rows else '<span class="muted">none</span>'
    if isinstance(data, list):
        return ", ".join(_esc(v) for v in data[:50]) or '<span class="muted">none</span>'
    if isinstance(data, float):
        return f"{data:.3f}"
    return _esc(data)


def render_report(workspace, result) -> str:
    """The report of an :class:`~dataprep.audit.core.AuditResult` as an HTML string."""
    report = result.report
    thumbs = Thumbnails(result.media, result.signatures)
    summary = _rows_table(
        [{"kind": k, "findings": v} for k, v in report.by_kind.items()], ["kind", "findings"]
    )
    classes = [f for f in result.findings if f["kind"] in ("few_media", "class_drift")]
    leaks = [f for f in result.findings if f["kind"] == "leak"]
    sections = [
        f"<h1>dataprep audit: {_esc(workspace.config.project.name)}</h1>",
        f"<p>{report.media} media, {report.findings} findings, {report.clusters} near-duplicate "
        f"clusters. Every finding is a row of <code>{_esc(report.manifest)}</code>.</p>",
        '<h2 id="summary">Summary</h2>',
        summary,
        _balance_section(result.label_of, result.split_of),
        _clusters_section(result, thumbs),
        f'<h2 id="leaks">Leaks across splits ({len(leaks)})</h2>',
        _rows_table(
            leaks[:MAX_ROWS], ["media_id", "split", "other_media_id", "other_split", "score"]
        )
        if leaks
        else '<p class="muted">None.</p>',
        _suspects_section(result, thumbs),
        _bad_section(result, thumbs),
        '<h2 id="classes">Classes and splits</h2>',
        _rows_table(classes, ["kind", "label", "split", "score", "detail"])
        if classes
        else '<p class="muted">No class has too few media; no split drifts.</p>',
        _agreement_section(workspace),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>dataprep audit</title><style>{CSS}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )


def write_report(workspace, result, path: Path | str) -> Path:
    """Writes the report atomically to ``path``; returns the path."""
    path = Path(path)
    atomic_write_text(path, render_report(workspace, result))
    return path
