"""Label-safe flips: a horizontal flip swaps classes whose meaning has a direction.

A gesture to the left, flipped, is a gesture to the right. So an augmentation pipeline's
``HorizontalFlip`` (the bundled presets have one) is never applied as such in training: it is
taken out of the albumentations pipeline, and only when the workspace declares how labels
mirror does the loader flip, with its own clip-consistent flip that also maps the label of every
flipped example::

    [augment]
    flip_map = {left = "right", right = "left"}   # classes not named keep their label

``flip_map = {}`` declares that no class has a direction (every label survives a flip). Without
a ``flip_map`` nothing is flipped, and the run says so. Other transforms that change
orientation (``VerticalFlip``, ``Transpose``, ``RandomRotate90``, ``D4``) cannot be mapped and
are named in a note.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from dataprep.errors import UsageError

HORIZONTAL = "HorizontalFlip"
ORIENTATION = ("VerticalFlip", "Transpose", "RandomRotate90", "D4", "SquareSymmetry")
FLIP_MAP_HINT = '[augment] flip_map = {left = "right", right = "left"} in dataprep.toml'


def _name(entry: Mapping[str, Any]) -> str:
    return str(entry.get("__class_fullname__", "")).rsplit(".", 1)[-1]


def _walk(transform: Mapping[str, Any]):
    yield transform
    for child in transform.get("transforms") or []:
        yield from _walk(child)


def transforms_named(pipeline_dict: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    """The names of the transforms of ``names`` that a serialized pipeline contains."""
    root = pipeline_dict.get("transform", pipeline_dict)
    return [_name(t) for t in _walk(root) if _name(t) in names]


def split_horizontal_flip(pipeline_dict: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
    """``(pipeline without its HorizontalFlip, the flip's probability)``.

    Only a top-level ``HorizontalFlip`` of the pipeline's ``Compose`` can be taken out (its
    probability is then exact); one nested in ``OneOf`` and the like is refused.

    Raises:
        UsageError: for a nested ``HorizontalFlip``.
    """
    data = copy.deepcopy(dict(pipeline_dict))
    root = data.get("transform", data)
    probability = 0.0
    kept = []
    for entry in root.get("transforms") or []:
        if _name(entry) == HORIZONTAL:
            probability = 1.0 - (1.0 - probability) * (1.0 - float(entry.get("p", 0.5)))
        else:
            if transforms_named(entry, [HORIZONTAL]):
                raise UsageError(
                    f"the augmentation pipeline has a HorizontalFlip inside {_name(entry)}; "
                    "flips must be at its top level, where the loader maps the labels of "
                    "flipped examples (see [augment] flip_map)"
                )
            kept.append(entry)
    root["transforms"] = kept
    return data, probability * float(root.get("p", 1.0))


def mirror_table(flip_map: Mapping[str, str] | None, class_names: Sequence[str]) -> list[int]:
    """Label index -> label index of the flipped example (classes not named map to themselves).

    Raises:
        UsageError: naming a class that is not in the export, or a map that is not its own
            inverse (``left -> right`` needs ``right -> left``).
    """
    flip_map = dict(flip_map or {})
    index = {name: i for i, name in enumerate(class_names)}
    for source, target in flip_map.items():
        for name in (source, target):
            if name not in index:
                raise UsageError(
                    f"dataprep.toml: [augment] flip_map names class {name!r}, which is not one "
                    f"of the export's classes ({', '.join(class_names)})"
                )
        back = flip_map.get(target, target)
        if back != source:
            raise UsageError(
                f"dataprep.toml: [augment] flip_map maps {source!r} to {target!r} but {target!r} "
                f"to {back!r}; a mirror maps each class back ({target} = {source!r})"
            )
    return [index[flip_map.get(name, name)] for name in class_names]


def label_safe(
    pipeline_dict: Mapping[str, Any] | None,
    flip_map: Mapping[str, str] | None,
    class_names: Sequence[str],
) -> tuple[dict[str, Any] | None, float, list[int] | None, list[str]]:
    """How a training run augments without changing what a label means.

    Returns:
        ``(pipeline without HorizontalFlip or None, flip probability, mirror table or None,
        notes)``: the loader applies the flip itself, with the labels mapped by the table.

    Raises:
        UsageError: when the map does not fit the classes, or a flip is nested.
    """
    notes: list[str] = []
    if pipeline_dict is None:
        return None, 0.0, None, notes
    rest, probability = split_horizontal_flip(pipeline_dict)
    table = None
    if probability > 0 and flip_map is None:
        notes.append(
            "HorizontalFlip left out: a flip swaps classes with a direction; declare how "
            f"labels mirror with {FLIP_MAP_HINT} (flip_map = {{}} when none has one)"
        )
        probability = 0.0
    if probability > 0:
        table = mirror_table(flip_map, class_names)
        swapped = [f"{class_names[i]}->{class_names[j]}" for i, j in enumerate(table) if i != j]
        notes.append(
            f"horizontal flip p={probability:.2f}, labels mirrored by flip_map "
            f"({', '.join(swapped) or 'no class changes'})"
        )
    others = transforms_named(rest, ORIENTATION)
    if others:
        notes.append(
            f"{', '.join(sorted(set(others)))} change orientation and keep the label: remove "
            "them if a class has a direction (up/down, clockwise)"
        )
    empty = not rest.get("transform", rest).get("transforms")
    return (None if empty else rest), probability, table, notes


def copy_flipped(probability: float, draw: int) -> bool:
    """Whether the augmented copy of draw seed ``draw`` is flipped left-right (one decision for
    every frame of the copy; ``preview`` draws the same way)."""
    import numpy as np

    return probability > 0 and bool(np.random.default_rng(draw).random() < probability)


def stage_flips(
    pipeline_dict: Mapping[str, Any],
    flip_map: Mapping[str, str] | None,
    class_names: Sequence[str],
    *,
    seed: int,
) -> dict[str, Any]:
    """A pipeline as ``dataprep augment`` applies it: label-safe like training.

    Returns:
        ``pipeline`` (without its HorizontalFlip, or None when nothing else is left), ``flip``
        (the probability of flipping a copy: 0 without a flip_map), ``notes`` (what became of
        the flips, one line each) and ``fingerprint`` (of the pipeline, seed and flip handling;
        None for a pipeline without a flip, whose copies keep their earlier fingerprint).

    Raises:
        UsageError: a flip_map that does not fit the classes, or a nested HorizontalFlip.
    """
    from dataprep.hashing import settings_fingerprint

    rest, probability, _, notes = label_safe(pipeline_dict, flip_map, list(class_names))
    fingerprint = None
    if transforms_named(pipeline_dict, [HORIZONTAL]):
        data = {k: v for k, v in pipeline_dict.items() if k != "__version__"}
        flips = "mirrored by flip_map" if probability > 0 else "left out"
        fingerprint = settings_fingerprint({"pipeline": data, "seed": seed, "flips": flips})
    return {"pipeline": rest, "flip": probability, "notes": notes, "fingerprint": fingerprint}


def label_mirror(flip_map: Mapping[str, str] | None, class_names: Sequence[str]) -> dict[str, str]:
    """``{class: class of its mirror image}`` for the labels of mirrored augmented copies.

    Raises:
        UsageError: without a flip_map (mirrored copies cannot be labelled), or one that does
            not fit the classes.
    """
    if flip_map is None:
        raise UsageError(
            "the frames manifest has augmented copies flipped left-right (mirrored) but "
            f"dataprep.toml has no [augment] flip_map to label them; set {FLIP_MAP_HINT}, or "
            "rerun `dataprep augment --overwrite` without flips"
        )
    table = mirror_table(flip_map, class_names)
    return {name: class_names[j] for name, j in zip(class_names, table, strict=True)}
