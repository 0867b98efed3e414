"""Guo et al.'s T2M evaluator (the text-motion matching model every text-to-motion paper reports FID, R-precision,
MM-Dist, diversity and multimodality with), loaded from a folder the user downloaded it into.

    ev = GuoEvaluator.load("checkpoints", dataset="t2m")          # or "kit"
    t = ev.text_embeddings([caption.tokens for caption in captions])   # (N, 512)
    m = ev.motion_embeddings(raw_features, lengths)                    # (N, 512), raw 263-dim features
    ev.sha                                                             # sha256 of finest.tar

`modules` holds the architecture, `vocab` the word vectors and POS classes, `loader` the folder layout and the
evaluator, `fixtures` random stand-ins in the published layout for tests and demos.
"""

from __future__ import annotations

import importlib

# name -> submodule; resolved on first use, so that `mate.evaluate.guo.vocab` is usable without importing torch
_EXPORTS = {
    "DATASETS": "loader",
    "MAX_MOTION_LENGTH": "loader",
    "GuoEvaluator": "loader",
    "canonical_dataset": "loader",
    "checkpoint_path": "loader",
    "denormalize": "loader",
    "sha256_file": "loader",
    "MotionEncoderBiGRUCo": "modules",
    "MovementConvEncoder": "modules",
    "TextEncoderBiGRUCo": "modules",
    "build_modules": "modules",
    "MAX_TEXT_LEN": "vocab",
    "POS_ENUMERATOR": "vocab",
    "VIP_LISTS": "vocab",
    "GuoEvaluatorError": "vocab",
    "WordVectors": "vocab",
    "pad_tokens": "vocab",
    "pos_index": "vocab",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "MAX_MOTION_LENGTH",
    "MAX_TEXT_LEN",
    "POS_ENUMERATOR",
    "VIP_LISTS",
    "GuoEvaluator",
    "GuoEvaluatorError",
    "MotionEncoderBiGRUCo",
    "MovementConvEncoder",
    "TextEncoderBiGRUCo",
    "WordVectors",
    "build_modules",
    "canonical_dataset",
    "checkpoint_path",
    "denormalize",
    "pad_tokens",
    "pos_index",
    "sha256_file",
]
