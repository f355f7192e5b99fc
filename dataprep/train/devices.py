"""Which devices a run trains on: GPUs, distribution strategy, mixed precision, determinism.

TensorFlow backend only (the trainer's backend). :func:`backend_devices` also answers for JAX and
PyTorch, for ``benchmarks/gpu_check.py``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DeviceSetup:
    """What :func:`setup_devices` chose."""

    devices: list[str]
    gpus: list[str]
    strategy: str
    replicas: int
    precision_policy: str
    jit_compile: bool
    deterministic: bool
    notes: list[str] = field(default_factory=list)
    strategy_object: Any = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        """One line for the console: ``training on 1 x CPU (policy float32, ...)``."""
        where = ", ".join(self.gpus) if self.gpus else "CPU"
        extra = f"; {'; '.join(self.notes)}" if self.notes else ""
        return (
            f"training on {where} with {self.strategy} ({self.replicas} replica"
            f"{'s' if self.replicas != 1 else ''}), precision {self.precision_policy}, "
            f"XLA {'on' if self.jit_compile else 'off'}, deterministic "
            f"{'yes' if self.deterministic else 'no'}{extra}"
        )


def _gpu_supports_float16(details: dict) -> bool:
    capability = details.get("compute_capability")
    return bool(capability) and tuple(capability) >= (7, 0)


def setup_devices(
    *, mixed_precision: str = "auto", xla: bool = False, seed: int | None = None
) -> DeviceSetup:
    """Seeds, picks the distribution strategy and sets Keras' global dtype policy.

    - Every GPU TensorFlow sees is used: ``MirroredStrategy`` when there are several (the caller
      scales the batch by ``replicas``), the default strategy otherwise (CPU or one GPU). Keras
      feeds the strategy's distributed dataset, which prefetches batches to the device.
    - ``mixed_precision``: ``auto`` uses ``mixed_float16`` on GPUs of compute capability 7.0 or
      newer and float32 elsewhere; ``on`` forces it (``mixed_bfloat16`` on a CPU); ``off``:
      float32.
    - ``seed``: seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``) and, on a
      CPU-only machine, enables TensorFlow op determinism, so the run repeats bit for bit.

    ``mixed_precision`` is validated with the other options (``[train]`` of dataprep.toml).
    """
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        # RuntimeError: already initialized in this process; keep its setting.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    notes: list[str] = []
    deterministic = False
    if seed is not None:
        keras.utils.set_random_seed(seed)
        if not gpus:
            tf.config.experimental.enable_op_determinism()
            deterministic = True
        else:
            notes.append("seeded, but GPU kernels are not bit-for-bit deterministic")
    gpu_names = []
    capable = bool(gpus)
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        gpu_names.append(f"{gpu.name} ({details.get('device_name', 'GPU')})")
        capable = capable and _gpu_supports_float16(details)
    if mixed_precision == "off" or (mixed_precision == "auto" and not capable):
        policy = "float32"
    elif gpus:
        policy = "mixed_float16"
    else:
        policy = "mixed_bfloat16"
    keras.mixed_precision.set_dtype_policy(policy)
    if mixed_precision == "auto" and gpus and not capable:
        notes.append("mixed precision off: GPU older than compute capability 7.0")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        name = "MirroredStrategy"
    else:
        strategy = tf.distribute.get_strategy()
        name = "default strategy"
    devices = [d.name for d in tf.config.list_logical_devices()]
    return DeviceSetup(
        devices=devices,
        gpus=gpu_names,
        strategy=name,
        replicas=strategy.num_replicas_in_sync,
        precision_policy=policy,
        jit_compile=bool(xla),
        deterministic=deterministic,
        notes=notes,
        strategy_object=strategy,
    )


def reset_policy() -> None:
    """Puts Keras' global dtype policy back to float32 (after a run, for library callers)."""
    import keras

    keras.mixed_precision.set_dtype_policy("float32")


def backend_devices() -> dict[str, Any]:
    """The accelerator Keras' current backend will use: ``{"backend", "device", "gpu", "name"}``."""
    import keras

    backend = keras.backend.backend()
    info: dict[str, Any] = {"backend": backend, "gpu": False, "device": "cpu", "name": "CPU"}
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            info.update(
                gpu=True,
                device="cuda:0",
                name=torch.cuda.get_device_name(0),
                count=torch.cuda.device_count(),
                capability=list(torch.cuda.get_device_capability(0)),
            )
    elif backend == "jax":
        import jax

        devices = jax.devices()
        if devices and devices[0].platform == "gpu":
            info.update(
                gpu=True, device=str(devices[0]), name=devices[0].device_kind, count=len(devices)
            )
    else:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            info.update(
                gpu=True,
                device=gpus[0].name,
                name=details.get("device_name", "GPU"),
                count=len(gpus),
            )
    return info
