"""Label-safe flips: presets flip nothing, a pipeline's HorizontalFlip needs a flip_map."""

from __future__ import annotations

import albumentations as A
import pytest

from dataprep.augment import PRESETS, load_pipeline, pipeline_to_dict
from dataprep.errors import UsageError
from dataprep.flips import label_safe, mirror_table, split_horizontal_flip, transforms_named

CLASSES = ["left", "right", "up", "down"]


def _dict(*transforms, p=1.0):
    return pipeline_to_dict(A.Compose(list(transforms), p=p))


@pytest.mark.parametrize("name", PRESETS)
def test_bundled_presets_flip_no_label_without_a_flip_map(name):
    data = pipeline_to_dict(load_pipeline(name))
    rest, probability, table, notes = label_safe(data, None, CLASSES)
    assert probability == 0.0 and table is None
    assert transforms_named(rest, ["HorizontalFlip", "VerticalFlip", "Transpose", "D4"]) == []
    assert any("HorizontalFlip left out" in note and "flip_map" in note for note in notes)


def test_a_horizontal_flip_is_taken_out_with_its_probability():
    data = _dict(A.HorizontalFlip(p=0.3), A.RandomBrightnessContrast(p=0.5))
    rest, probability = split_horizontal_flip(data)
    assert probability == pytest.approx(0.3)
    assert transforms_named(rest, ["HorizontalFlip"]) == []
    assert transforms_named(rest, ["RandomBrightnessContrast"]) == ["RandomBrightnessContrast"]
    assert transforms_named(data, ["HorizontalFlip"]) == ["HorizontalFlip"]  # input unchanged
    nested = _dict(A.OneOf([A.HorizontalFlip(), A.Blur()]))
    with pytest.raises(UsageError, match="inside OneOf"):
        split_horizontal_flip(nested)


def test_without_flip_map_nothing_is_flipped_and_the_note_says_what_to_declare():
    rest, probability, table, notes = label_safe(_dict(A.HorizontalFlip(p=0.5)), None, CLASSES)
    assert rest is None and probability == 0.0 and table is None
    assert len(notes) == 1 and "\n" not in notes[0] and "flip_map = {left" in notes[0]


def test_flip_map_mirrors_labels_and_names_what_it_does():
    data = _dict(A.HorizontalFlip(p=0.5), A.RandomBrightnessContrast(p=0.5))
    rest, probability, table, notes = label_safe(data, {"left": "right", "right": "left"}, CLASSES)
    assert probability == pytest.approx(0.5)
    assert table == [1, 0, 2, 3]  # left <-> right, up and down keep their label
    assert transforms_named(rest, ["RandomBrightnessContrast"])
    assert "left->right" in notes[0] and "right->left" in notes[0]
    # an empty map: no class has a direction, every label survives a flip
    assert label_safe(data, {}, CLASSES)[2] == [0, 1, 2, 3]
    # a pipeline that was only a flip leaves nothing for albumentations to do
    assert label_safe(_dict(A.HorizontalFlip(p=1.0)), {}, CLASSES)[0] is None
    notes = label_safe(_dict(A.VerticalFlip(p=0.5)), None, CLASSES)[3]
    assert "VerticalFlip" in notes[0]


def test_flip_map_must_name_classes_and_be_its_own_inverse():
    with pytest.raises(UsageError, match="'sideways'"):
        mirror_table({"left": "sideways"}, CLASSES)
    with pytest.raises(UsageError, match="maps 'left' to 'right' but 'right' to 'right'"):
        mirror_table({"left": "right"}, CLASSES)
    assert mirror_table({"up": "down", "down": "up"}, CLASSES) == [0, 1, 3, 2]
