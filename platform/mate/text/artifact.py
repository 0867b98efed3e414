"""The aligned-rows artifact (docs/architecture.md §3.6): trained token ids and rows, small enough to log per trial.

It names its base model (name, family, a hash of the folder's files) so it is never applied to the wrong one, and
exports either as a full Hugging Face folder that loads with plain `transformers`, or as the bare ids + rows file
that MoMask/MDM-style code writes into its own CLIP's `token_embedding`.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from mate.errors import UserError

from . import families as F

FORMAT = "mate-aligned-rows"
VERSION = "1"
ROWS_FILE = "aligned_rows.safetensors"
_ST_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling")


class ArtifactError(UserError):
    """An aligned-rows file that is unreadable or does not fit the model it is applied to."""


@dataclass
class AlignedRows:
    token_ids: torch.Tensor  # (n,) int64, sorted
    rows: torch.Tensor  # (n, d) float32
    family: str
    base_name: str
    base_hash: str
    base_path: str
    vocab_size: int

    @classmethod
    def from_encoder(cls, encoder) -> "AlignedRows":
        rows = encoder.rows
        return cls(rows.ids.detach().cpu().clone(), rows.rows.detach().float().cpu().clone(), encoder.family,
                   encoder.name, encoder.folder_hash, str(encoder.folder), rows.num_embeddings)

    def save(self, path: str | os.PathLike) -> Path:
        from safetensors.torch import save_file

        meta = {"format": FORMAT, "version": VERSION, "family": self.family, "base_name": self.base_name,
                "base_hash": self.base_hash, "base_path": self.base_path, "vocab_size": str(self.vocab_size)}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:  # temp-then-rename, like every cache write (mate.cache)
            save_file({"token_ids": self.token_ids.contiguous(), "rows": self.rows.contiguous()}, str(tmp),
                      metadata=meta)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "AlignedRows":
        from safetensors import safe_open

        path = Path(path)
        if path.is_dir():
            path = path / ROWS_FILE
        if not path.is_file():
            raise ArtifactError(f"{path}: no such aligned-rows file")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                ids, rows = f.get_tensor("token_ids"), f.get_tensor("rows")
        except Exception as exc:  # safetensors raises several types for a corrupt header
            raise ArtifactError(f"{path}: not an aligned-rows safetensors file ({exc})") from None
        if meta.get("format") != FORMAT:
            raise ArtifactError(f"{path}: not an aligned-rows file (format {meta.get('format')!r})")
        if ids.ndim != 1 or rows.ndim != 2 or len(ids) != len(rows):
            raise ArtifactError(f"{path}: token_ids {tuple(ids.shape)} and rows {tuple(rows.shape)} do not match")
        return cls(ids.long(), rows.float(), meta["family"], meta.get("base_name", ""), meta.get("base_hash", ""),
                   meta.get("base_path", ""), int(meta.get("vocab_size", "0")))

    # -- applying -------------------------------------------------------------------------------------------------
    def _check_table(self, table: torch.Tensor, what: str) -> None:
        if self.vocab_size and table.shape[0] != self.vocab_size:
            raise ArtifactError(f"{what} has {table.shape[0]} embedding rows; these aligned rows are for a "
                                f"vocabulary of {self.vocab_size} ({self.base_name})")
        if table.shape[1] != self.rows.shape[1]:
            raise ArtifactError(f"{what} has {table.shape[1]}-dim embeddings; the aligned rows are "
                                f"{self.rows.shape[1]}-dim ({self.base_name})")

    def apply_to(self, model, inplace: bool = False):
        """The aligned encoder: a `TextEncoder` with these rows selected and set, or a Hugging Face model (any
        `PreTrainedModel`) with them written into its input embedding table. Returns a copy unless `inplace`."""
        from .encoder import TextEncoder

        target = model if inplace else copy.deepcopy(model)
        if isinstance(target, TextEncoder):
            if target.family != self.family:
                raise ArtifactError(f"aligned rows are for a {self.family} model, not {target.family}")
            if self.base_hash and target.folder_hash != self.base_hash:
                raise ArtifactError(f"aligned rows were trained on {self.base_name} ({self.base_hash}); "
                                    f"{target.folder} has hash {target.folder_hash}")
            self._check_table(target.base_table, str(target.folder))
            override = target.set_trainable_rows(self.token_ids.tolist())
            with torch.no_grad():
                override.rows.copy_(self.rows.to(override.rows))
            return target
        emb = target.get_input_embeddings()
        self._check_table(emb.weight, type(target).__name__)
        with torch.no_grad():
            emb.weight[self.token_ids.to(emb.weight.device)] = self.rows.to(emb.weight)
        return target

    # -- export ---------------------------------------------------------------------------------------------------
    def export_hf(self, out: str | os.PathLike, base_path: str | os.PathLike | None = None) -> Path:
        """Write a Hugging Face folder (model + tokenizer) with the aligned rows in its embedding table."""
        folder = F.resolve_path(base_path or self.base_path)
        if self.base_hash and F.folder_hash(folder) != self.base_hash:
            raise ArtifactError(f"{folder} is not the base model these rows were trained on ({self.base_name}, "
                                f"hash {self.base_hash}); pass the right --encoder folder")
        model = self.apply_to(F.load_model(folder, self.family), inplace=True)
        tok = F.load_tokenizer(folder)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
        for name in _ST_FILES:  # keep the sentence-transformers pipeline (pooling, normalisation) of the base
            src = folder / name
            if src.is_dir():
                shutil.copytree(src, out / name, dirs_exist_ok=True)
            elif src.is_file():
                shutil.copy2(src, out / name)
        (out / "mate_aligned.json").write_text(json.dumps(
            {"format": FORMAT, "base_name": self.base_name, "base_hash": self.base_hash, "family": self.family,
             "aligned_tokens": len(self.token_ids)}, indent=2))
        return out

    def export_rows(self, out: str | os.PathLike) -> Path:
        """The bare artifact (token_ids + rows) in `out`, for code that patches its own model's table."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        return self.save(out / ROWS_FILE)
