"""The HTML report opens in a real headless browser (Debian's chromium) without console errors,
and every image in it loads.

The test copies the report and puts a small probe script at the very top of its ``<head>``: it
records console errors, uncaught exceptions and resource load errors (capturing ``error``
events, which catch a broken image), and once the page has loaded writes what it saw, and
whether each ``<img>`` decoded to a picture, into the DOM. ``chromium --headless --dump-dom``
prints that DOM. The report itself carries no script at all.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dataprep.testing.gestures import GESTURE_CLASSES, GestureSpec
from dataprep.testing.planted import PlantSpec, write_planted_gestures

PROBE = """<script>
window.__audit = {errors: []};
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__audit.errors.push(t && t.tagName ? 'load error: ' + t.tagName : 'error: ' + e.message);
}, true);
var __ce = console.error;
console.error = function () { window.__audit.errors.push('console.error: ' +
  Array.prototype.join.call(arguments, ' ')); __ce.apply(console, arguments); };
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = {errors: window.__audit.errors, images: imgs.length,
    loaded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    sources: imgs.map(function (i) { return i.src.slice(0, 22); })};
  var pre = document.createElement('pre'); pre.id = '__probe';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>"""


def chromium() -> str:
    """The chromium binary, installed with apt-get when missing (the test set-up)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and apt-get is not available to install it")
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    install = subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if install.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
        install = subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    found = shutil.which("chromium")
    if install.returncode != 0 or not found:
        pytest.skip(f"chromium could not be installed with apt-get: {install.stderr[-300:]}")
    return found


def render_in_browser(html_path: Path, tmp_path: Path) -> dict:
    text = html_path.read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    done = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = re.search(r'<pre id="__probe">(.*?)</pre>', done.stdout, re.S)
    assert match, f"the page did not finish loading: {done.stderr[-2000:]}"
    import html

    return json.loads(html.unescape(match.group(1)))


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    from dataprep import manifests
    from dataprep.audit.core import audit_workspace
    from dataprep.ingest import ingest
    from dataprep.split import split_media
    from dataprep.workspace import init_workspace

    root = tmp_path_factory.mktemp("report")
    write_planted_gestures(
        root / "raw",
        GestureSpec(per_class=5, seed=41),
        PlantSpec(duplicates=0.3, black=1, frozen=1, flipped=0.0, seed=41),
    )
    ws = init_workspace(root / "ws", classes=list(GESTURE_CLASSES))
    ingest(ws, [root / "raw"], label_from_dir=True, jobs=1)
    split_media(ws, seed=3)
    result = audit_workspace(ws)
    assert len(manifests.load(ws, "audit"))
    return ws, result


def test_report_renders_without_errors_and_every_image_loads(audited, tmp_path):
    from dataprep.audit.report import write_report

    ws, result = audited
    path = write_report(ws, result, tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    # self-contained: no script, and every image and plot is an embedded data URI
    assert "<script" not in text
    sources = re.findall(r'<img src="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    pairs = [f for f in result.findings if f["kind"] == "near_duplicate"]
    assert pairs and f"Near-duplicate clusters ({result.report.clusters})" in text
    for section in ("Class balance per split", "Label suspects", "Bad frames", "annotators"):
        assert section in text
    seen = render_in_browser(path, tmp_path)
    assert seen["errors"] == []
    assert seen["images"] == len(sources) and seen["loaded"] == seen["images"]


@pytest.mark.slow  # another chromium start (2 s idle, 5-10 s under load)
def test_the_probe_catches_a_broken_image(tmp_path):
    """The browser check is not vacuous: a broken image and a script error are reported."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        '<img src="data:image/png;base64,AAAA"><script>undefinedFunction()</script></body></html>'
    )
    seen = render_in_browser(bad, tmp_path)
    assert seen["images"] == 1 and seen["loaded"] == 0
    assert any("IMG" in e for e in seen["errors"]) and any(
        "undefinedFunction" in e for e in seen["errors"]
    )


@pytest.mark.slow  # another chromium start (2 s idle, 5-10 s under load)
def test_report_with_suspects_shows_frames(audited, tmp_path):
    """Label suspects (as a run would give) appear with three frames each."""
    import copy

    from dataprep.audit import suspects
    from dataprep.audit.report import render_report

    ws, result = audited
    result = copy.copy(result)
    result.report = copy.copy(result.report)
    ids = sorted(result.signatures)[:4]
    probs = np.array([[0.9, 0.1, 0, 0], [0.1, 0.9, 0, 0], [0.9, 0.1, 0, 0], [0.1, 0.9, 0, 0]])
    scored = suspects.Scored("run-x", list(GESTURE_CLASSES), ids, np.array([0, 1, 1, 1]), probs)
    ranked = suspects.rank_suspects(scored)
    result.findings = [*result.findings, *suspects.suspect_findings(scored, ranked)]
    result.report.run = "run-x"
    text = render_report(ws, result)
    assert f"<code>{ids[2]}</code>: labelled <b>right</b>, suggested <b>left</b>" in text
    seen_path = tmp_path / "r.html"
    seen_path.write_text(text)
    seen = render_in_browser(seen_path, tmp_path)
    assert seen["errors"] == [] and seen["loaded"] == seen["images"] > 0


@pytest.mark.slow  # another chromium start (2 s idle, 5-10 s under load)
def test_report_shows_annotator_agreement(audited, tmp_path):
    """With annotations from two annotators (a Label Studio export, imported), the report shows
    their agreement from ``labels stats``."""
    from dataprep import manifests
    from dataprep.audit.report import render_report
    from dataprep.labels.importer import import_export
    from dataprep.labels.stats import labels_stats
    from dataprep.testing.labelstudio import ExportAnnotation, write_export

    ws, result = audited
    media = manifests.records(manifests.load(ws, "media"))[:6]
    annotations = []
    for n, row in enumerate(media):
        first = GESTURE_CLASSES[n % 4]
        second = first if n % 3 else GESTURE_CLASSES[(n + 1) % 4]  # they disagree on 2 of 6
        annotations.append(ExportAnnotation(row["media_id"], choices=[first], annotator="x@a.org"))
        annotations.append(ExportAnnotation(row["media_id"], choices=[second], annotator="y@a.org"))
    import_export(ws, write_export(tmp_path / "export.json", media, annotations, fmt="JSON"))
    text = render_report(ws, result)
    stats = labels_stats(ws)
    assert "12 annotations by 2 annotators on 6 media" in text
    assert stats["agreement"] and "No annotations synced" not in text
    path = tmp_path / "agreement.html"
    path.write_text(text)
    seen = render_in_browser(path, tmp_path)
    assert seen["errors"] == [] and seen["loaded"] == seen["images"]
