"""MATE Platform: train and study Motion-Aligned Text Encodings at scale."""

__version__ = "0.1.0"
