"""``dataprep audit``: near-duplicates and leaks, likely label errors, bad frames and media.

Modules:

* :mod:`~dataprep.audit.signatures`: one pass over each media's sampled frames gives its
  perceptual hashes (aligned over time) and frame statistics; cached per content hash.
* :mod:`~dataprep.audit.index`: a banded LSH index over the frame hashes (candidate pairs
  without comparing all pairs) and the time-aligned verification of a pair.
* :mod:`~dataprep.audit.duplicates`: near-duplicate pairs, clusters and leaks across splits;
  the group keys of ``split --group-by near-duplicates``.
* :mod:`~dataprep.audit.quality`: blank, dark, blurry and frozen frames, unreadable media,
  classes with too few media, splits whose class balance drifts from the whole.
* :mod:`~dataprep.audit.suspects`: confident-learning label suspects from a run's
  out-of-sample probabilities.
* :mod:`~dataprep.audit.findings` and :mod:`~dataprep.audit.core`: the ``audit`` manifest and
  the stage that writes it; :mod:`~dataprep.audit.report`: the self-contained HTML report.
"""
