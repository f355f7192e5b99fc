"""Checks of a serialized albumentations pipeline, transform by transform.

albumentations fails deep inside (or, worse, warns and ignores an argument) when a pipeline file
names an unknown transform or argument; :func:`check_transform` finds the bad transform or
argument first, so that the error names it (used by :func:`dataprep.augment.pipeline_from_dict`).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import warnings
from pathlib import Path

from dataprep.errors import UsageError

_COMPOSITIONS = {
    "Compose",
    "OneOf",
    "SomeOf",
    "Sequential",
    "OneOrOther",
    "SelectiveChannelTransform",
    "RandomOrder",
    "ReplayCompose",
}
_RESERVED = {"__class_fullname__", "transforms", "__version__"}


def raise_on_ignored_arguments(caught: list, source: str, where: str) -> None:
    """albumentations only warns about arguments it does not know (and ignores them): an error
    here. Other warnings (deprecations) are passed on."""
    for warning in caught:
        text = str(warning.message)
        if "are not valid for transform" in text:
            raise UsageError(f"{source}: {where}: {text}; fix the pipeline file")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _transform_class(name: str):
    import albumentations as A
    from albumentations.core.serialization import SERIALIZABLE_REGISTRY

    short = name.rsplit(".", 1)[-1]
    cls = getattr(A, short, None)
    if cls is None:
        registered = (
            SERIALIZABLE_REGISTRY.get(name) if hasattr(SERIALIZABLE_REGISTRY, "get") else None
        )
        cls = registered
    return cls if inspect.isclass(cls) else None


def check_transform(entry: dict, source: str, where: str) -> None:
    import difflib

    import albumentations as A

    if not isinstance(entry, dict) or "__class_fullname__" not in entry:
        raise UsageError(f"{source}: {where} has no __class_fullname__; each transform needs one")
    name = str(entry["__class_fullname__"])
    cls = _transform_class(name)
    if cls is None:
        known = [n for n in dir(A) if inspect.isclass(getattr(A, n)) and n[:1].isupper()]
        close = difflib.get_close_matches(name.rsplit(".", 1)[-1], known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UsageError(f"{source}: {where}: unknown transform {name!r}{hint}")
    allowed = _allowed_arguments(cls)
    for argument in entry:
        if argument in _RESERVED or argument.startswith("__"):
            continue
        if argument not in allowed:
            close = difflib.get_close_matches(argument, sorted(allowed), n=1)
            hint = (
                f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(sorted(allowed))}"
            )
            raise UsageError(
                f"{source}: {_place(where, name)}: unknown argument {argument!r}; {hint}"
            )
    if name.rsplit(".", 1)[-1] in _COMPOSITIONS or "transforms" in entry:
        children = entry.get("transforms")
        if not isinstance(children, list) or not children:
            raise UsageError(f"{source}: {_place(where, name)} needs a non-empty `transforms` list")
        for i, child in enumerate(children):
            label = child.get("__class_fullname__", "?") if isinstance(child, dict) else "?"
            check_transform(child, source, f"{where}.transforms[{i}] {label}")
        return
    arguments = {k: v for k, v in entry.items() if k not in _RESERVED and not k.startswith("__")}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cls(**arguments)
        except Exception as exc:  # noqa: BLE001 - any failure here is a bad argument
            raise UsageError(
                f"{source}: {_place(where, name)}: {_validation_message(exc)}"
            ) from None
    raise_on_ignored_arguments(caught, source, _place(where, name))


def _place(where: str, name: str) -> str:
    return where if where.endswith(name) else f"{where} ({name})"


def _allowed_arguments(cls) -> set[str]:
    allowed: set[str] = set()
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for parameter in inspect.signature(init).parameters.values():
            if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                continue
            allowed.add(parameter.name)
        break  # the class's own __init__ lists what it accepts
    schema = getattr(cls, "InitSchema", None)
    if schema is not None and hasattr(schema, "model_fields"):
        allowed |= set(schema.model_fields)
    allowed.discard("self")
    allowed.add("p")
    return allowed


def _validation_message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        with contextlib.suppress(Exception):
            first = errors()[0]
            where = ".".join(
                str(p)
                for p in first.get("loc", ())
                if not str(p).startswith(("tuple[", "float", "int"))
            )
            return f"argument {where or '?'}: {first.get('msg')} (got {first.get('input')!r})"
    text = first_line(exc)
    if "validation error" in text:
        lines = str(exc).strip().splitlines()
        if len(lines) >= 3:
            import re

            detail = lines[2].strip()
            got = re.search(r"input_value=(.*?), input_type", detail)
            detail = re.sub(r"\s*\[type=.*$", "", detail)
            suffix = f" (got {got.group(1)})" if got else ""
            return f"argument {lines[1].split('.')[0].strip()}: {detail}{suffix}"
    return text


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_pipeline_file(path: Path) -> dict:
    """The serialized pipeline in a YAML or JSON file (``A.save``'s format).

    Raises:
        UsageError: naming the file, when it is not valid YAML/JSON or not a pipeline.
    """
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise UsageError(f"{path}: not valid {kind} ({first}); fix the file") from None
    if not isinstance(data, dict) or "transform" not in data:
        raise UsageError(
            f"{path}: not an albumentations pipeline (expected a top-level `transform:` key as "
            "written by albumentations.save); start from a preset in dataprep/presets/"
        )
    return data
