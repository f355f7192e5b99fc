"""dataprep: raw videos and images to labelled, normalized, augmented training data."""

__version__ = "0.1.0"
