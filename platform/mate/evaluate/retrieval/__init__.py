"""The frozen text-motion retrieval model: scores generators (`evaluator.seed`) and partitions motions for MATE
(`align.partition_seed`): two trainings of the same recipe, two shas."""

from .model import RetrievalModel, info_nce
from .train import Evaluator, EvaluatorMismatch, embed_motions, embed_texts, load, train_or_load, val_scorer

__all__ = ["Evaluator", "EvaluatorMismatch", "RetrievalModel", "embed_motions", "embed_texts", "info_nce", "load",
           "train_or_load", "val_scorer"]
