"""Transfer learning: start a model's trunk from another run (``--init-from RUN``), train the
head with the trunk frozen (``--freeze-trunk``), then fine-tune everything at a tenth of the
learning rate (``--fine-tune-epochs``).

The trunk is the per-frame feature extractor every model but the reference ``cnn`` has (the
``cnn-bn`` convolutions, the motion trunk of ``cnn-lstm`` and ``siamese-lstm``, or a
``--backbone``). Only the trunk's weights are copied and the head is new, so a classifier can
start an embedding model whose trunk is the same: ``cnn-bn`` and ``siamese`` start each other,
and so do ``cnn-lstm`` and ``siamese-lstm``. The two clip models read each frame next to its
difference from the previous one (twice the channels) with their own motion trunk, so they
start only from a ``cnn-lstm`` or ``siamese-lstm`` run; a frame model starts a clip model only
with the same ``--backbone`` (a backbone trunk per frame).
"""

from __future__ import annotations

from pathlib import Path

from dataprep.errors import UsageError
from dataprep.train.evaluate import find_run, load_run_model, read_run_config
from dataprep.train.models import find_trunk

FINE_TUNE_LR_FACTOR = 0.1


def source_run(workspace, run: str) -> tuple[Path, list]:
    """The folder of the ``--init-from`` run and its trunk's weights.

    Raises:
        UsageError: when the run does not exist or its model has no trunk.
    """
    run_dir = find_run(workspace, run)
    model = load_run_model(run_dir)
    trunk = find_trunk(model)
    if trunk is None:
        model_name = read_run_config(run_dir)["resolved"]["model"]
        raise UsageError(
            f"--init-from {run}: its model ({model_name}) has no trunk to transfer; start from "
            f"a run of cnn-bn, cnn-lstm, siamese or siamese-lstm"
        )
    return run_dir, trunk.get_weights()


def init_trunk(model, weights: list, source: str) -> None:
    """Copies ``weights`` (a source run's trunk) into ``model``'s trunk.

    Raises:
        UsageError: when the two trunks differ (another ``--backbone`` or channel count).
    """
    trunk = find_trunk(model)
    target = trunk.get_weights() if trunk is not None else []
    shapes = [w.shape for w in target]
    if trunk is None or shapes != [w.shape for w in weights]:
        name = trunk.name if trunk is not None else "none"
        raise UsageError(
            f"--init-from {source}: its trunk does not fit this model's {name} "
            f"({len(weights)} vs {len(shapes)} weight arrays); start from a run with the same "
            f"trunk (cnn-bn or siamese for cnn-bn and siamese; cnn-lstm or siamese-lstm for "
            f"cnn-lstm and siamese-lstm; the same --backbone), on frames with as many channels"
        )
    trunk.set_weights(weights)


def set_trunk_trainable(model, trainable: bool) -> None:
    """Freezes or unfreezes the trunk (compile again afterwards). A frozen trunk's batch norm
    runs in inference mode."""
    trunk = find_trunk(model)
    if trunk is not None:
        trunk.trainable = trainable
