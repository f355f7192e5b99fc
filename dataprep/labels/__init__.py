"""Labels: Label Studio push, sync and import, converted into ``manifests/labels.parquet``.

Modules: :mod:`config_xml` (labeling configs), :mod:`convert` (pure converters from Label Studio
results to manifest rows, checked against their media), :mod:`clock` (Label Studio frames and
times against decoder frames), :mod:`boxes` (box geometry, clipping and track interpolation),
:mod:`resolve` (resolution policies and agreement statistics), :mod:`tasks` (task paths, matching
tasks to media, converting tasks), :mod:`merge` (merge by media or replace labels.parquet),
:mod:`client` (the one adapter that owns the SDK client; retry-safe writes) with
:mod:`client_errors` (one-line errors without the key), :mod:`push`, :mod:`sync`,
:mod:`importer`, :mod:`predictions`, :mod:`stats`.
"""
