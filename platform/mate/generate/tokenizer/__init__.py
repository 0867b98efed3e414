"""The motion tokenizer (a residual VQ-VAE) that the masked generator predicts the codes of: trained once per
dataset and shared by every trial, like the scoring evaluator."""

from .model import DOWNSAMPLE, MotionTokenizer
from .train import Tokenizer, TokenizerMismatch, load, reconstruct, train_or_load

__all__ = ["DOWNSAMPLE", "MotionTokenizer", "Tokenizer", "TokenizerMismatch", "load", "reconstruct", "train_or_load"]
