"""Labels: Label Studio push, sync and import, converted into ``manifests/labels.parquet``.

Modules: :mod:`config_xml` (labeling configs), :mod:`convert` (pure converters from Label Studio
results to manifest rows), :mod:`resolve` (resolution policies and agreement statistics),
:mod:`client` (the one adapter that owns the SDK client), :mod:`push`, :mod:`sync`,
:mod:`importer`.
"""
