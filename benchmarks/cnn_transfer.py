"""The reference ``cnn``'s transfer arm of ``bench_fewshot.py`` (issue 14).

``train-baseline --init-from`` refuses a ``cnn`` source: the tutorial model has no trunk
sub-model to copy. To measure whether transfer helps that model anyway, :func:`cnn_arm` trains
it the way ``train-baseline --model cnn`` does, in plain Keras on the export's split arrays, with
its convolutions optionally copied from a ``cnn`` run and frozen for a first phase.
"""

from __future__ import annotations

from pathlib import Path


def split_arrays(ws, split: str):
    """A split of the digits export as ``(images, labels)``, normalized as the trainer reads it."""
    import numpy as np

    from dataprep.data import iter_numpy

    batches = list(iter_numpy(ws.exports_dir / "digits", split, batch_size=256, shuffle=False))
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def cnn_arm(data: dict, workdir: Path, *, seed, phases, patience, source=None) -> dict:
    """The reference ``cnn`` trained as ``train-baseline --model cnn`` trains it (plain Adam at
    a constant rate, no augmentation, batches of 16 reshuffled each epoch, early stopping on val
    loss restoring the best weights, a checkpoint of the best epoch over all phases), phase after
    phase ``(epochs, lr, convolutions trainable)``; with ``source`` (a ``cnn`` model) its
    convolutions start from the source's, as ``--init-from`` does for a trunk."""
    import math

    import keras

    from dataprep.train.callbacks import patience_epochs, standard_callbacks
    from dataprep.train.models import build_model, compile_model
    from dataprep.train.rundir import RUN_FILES

    keras.utils.set_random_seed(seed)
    (x, y), val = data["train"], data["val"]
    model = build_model("cnn", input_shape=x.shape[1:], num_classes=int(y.max()) + 1)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if source is not None:
        mine = [layer for layer in source.layers if isinstance(layer, keras.layers.Conv2D)]
        for layer, theirs in zip(convs, mine, strict=True):
            layer.set_weights(theirs.get_weights())
    steps = math.ceil(len(x) / 16)
    callbacks = standard_callbacks(workdir, patience=patience_epochs(patience, steps))[:2]
    history: list[dict] = []
    for epochs, lr, trainable in phases:
        for layer in convs:
            layer.trainable = trainable
        compile_model(model, "cnn", lr=lr, steps_per_epoch=steps, epochs=epochs)
        fit = model.fit(x, y, batch_size=16, epochs=len(history) + epochs, shuffle=True,
                        initial_epoch=len(history), validation_data=val, callbacks=callbacks,
                        verbose=0)  # fmt: skip
        rows = zip(*fit.history.values(), strict=True)
        history += [dict(zip(fit.history, row, strict=True)) for row in rows]
    model.load_weights(workdir / RUN_FILES["checkpoint"])
    best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    test = model.evaluate(*data["test"], verbose=0, return_dict=True)
    return {
        "test_accuracy": float(test["accuracy"]),
        "val_loss": history[best]["val_loss"],
        "best_epoch": best + 1,
        "epochs_run": len(history),
    }
