"""``siamese-lstm`` is the reference ``cnn-lstm`` encoder with an embedding head (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow
def test_siamese_lstm_shares_the_cnn_lstm_encoder_and_trunk(tmp_path):
    import keras

    from dataprep.errors import UsageError
    from dataprep.train.models import build_model, custom_objects, find_trunk
    from dataprep.train.motion_model import describe_augmentation
    from dataprep.train.transfer import init_trunk

    shape = (6, 16, 16, 3)
    embedder = build_model("siamese-lstm", input_shape=shape, num_classes=0, embedding_dim=8)
    classifier = build_model("cnn-lstm", input_shape=shape, num_classes=4)
    encoder = [layer.name for layer in classifier.layers[:-1]]
    assert [layer.name for layer in embedder.layers[: len(encoder)]] == encoder
    assert [layer.name for layer in embedder.layers[len(encoder) :]] == [
        "embedding_fc",
        "embedding",
    ]
    assert find_trunk(embedder).name == "motion_trunk"
    assert "clip-consistent" in describe_augmentation(embedder)
    clips = np.random.default_rng(2).normal(size=(3, *shape)).astype("float32")
    vectors = embedder.predict(clips, verbose=0)
    assert vectors.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # padded frames are masked as in cnn-lstm: a clip cut short gives the same embedding
    short = clips.copy()
    short[:, 4:] = 0.0
    cut = build_model("siamese-lstm", input_shape=(4, 16, 16, 3), num_classes=0, embedding_dim=8)
    cut.set_weights(embedder.get_weights())
    np.testing.assert_allclose(
        embedder.predict(short, verbose=0), cut.predict(clips[:, :4], verbose=0), atol=1e-5
    )

    # the trunk moves both ways between the two clip models
    init_trunk(embedder, find_trunk(classifier).get_weights(), "cnn-lstm-run")
    for a, b in zip(find_trunk(embedder).get_weights(), find_trunk(classifier).get_weights(),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)
    init_trunk(classifier, find_trunk(embedder).get_weights(), "siamese-lstm-run")
    frames = build_model("cnn-bn", input_shape=(16, 16, 3), num_classes=4)
    with pytest.raises(UsageError, match="cnn-lstm or siamese-lstm for cnn-lstm and siamese"):
        init_trunk(embedder, find_trunk(frames).get_weights(), "cnn-bn-run")

    vectors = embedder.predict(clips, verbose=0)  # with the classifier's trunk now
    embedder.save(tmp_path / "e.keras")
    loaded = keras.models.load_model(tmp_path / "e.keras", custom_objects=custom_objects())
    np.testing.assert_allclose(loaded.predict(clips, verbose=0), vectors, atol=1e-5)
    plain = build_model("siamese-lstm", input_shape=shape, num_classes=0, augment_in_model=False)
    assert describe_augmentation(plain) is None and plain.output_shape == (None, 64)
