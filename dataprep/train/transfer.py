"""Transfer learning: start a model's trunk from another run (``--init-from RUN``), train the
head with the trunk frozen (``--freeze-trunk``), then fine-tune everything at a tenth of the
learning rate (``--fine-tune-epochs``).

The trunk is the per-frame feature extractor every model but the reference ``cnn`` has (the
``cnn-bn`` convolutions, or a ``--backbone``), so a frame model can start a clip model and a
classifier an embedding model: only the trunk's weights are copied, the head is new.
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
        raise UsageError(
            f"--init-from {source}: its trunk does not fit this model's "
            f"({len(weights)} vs {len(shapes)} weight arrays); use the run's --backbone and "
            f"frames with as many channels"
        )
    trunk.set_weights(weights)


def set_trunk_trainable(model, trainable: bool) -> None:
    """Freezes or unfreezes the trunk (compile again afterwards). A frozen trunk's batch norm
    runs in inference mode."""
    trunk = find_trunk(model)
    if trunk is not None:
        trunk.trainable = trainable
