"""Guo et al.'s evaluator, loaded from the folder a user downloaded it into.

Layout (the published one; `official_dir` is what the T2M code bases call `./checkpoints`):

    <official_dir>/t2m/text_mot_match/model/finest.tar     HumanML3D (263-dim features)
    <official_dir>/kit/text_mot_match/model/finest.tar     KIT-ML (251-dim features)
    <official_dir>/glove/our_vab_{data.npy,words.pkl,idx.pkl}   (or `glove_dir`; `<official_dir>/../glove` is tried
                                                                 too, where MoMask/T2M-GPT keep it beside checkpoints/)
    <official_dir>/<t2m|kit>/Comp_v6_KLD005/meta/{mean,std}.npy (or Comp_v6_KLD01; or `meta_dir`): the statistics the
                                                                 evaluator's input is normalised with

finest.tar is a torch pickle dict with the state dicts `text_encoder`, `movement_encoder`, `motion_encoder`, plus
`epoch` (and, as saved by training, optimizer states and `iter`, which are ignored). It is read with
`torch.load(weights_only=True)`: tensors and plain containers only.

Motion input follows the evaluation code: features normalised with the evaluator's mean/std (not a generator's), the
4 foot contacts dropped, lengths cut down to a multiple of 4 (the first frames kept), zero-padded (in normalised
units) to 196 frames, movement-encoded, and read by the motion GRU packed to length // 4. Embeddings come back in
input order. A clip longer than 196 frames (outside what the evaluator was trained on) is encoded unpadded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mate.loop import resolve_device

from .modules import (
    CHECKPOINT_MODULES,
    EMBED_DIM,
    FOOT_CONTACT_DIMS,
    UNIT_LENGTH,
    build_modules,
)
from .vocab import GLOVE_DIRNAME, MAX_TEXT_LEN, GuoEvaluatorError, WordVectors

DATASETS = {"t2m": 263, "kit": 251}  # published dataset names -> feature width
_ALIASES = {"humanml3d": "t2m", "humanml": "t2m", "hml3d": "t2m", "t2m": "t2m", "kit": "kit", "kit-ml": "kit",
            "kitml": "kit", "kit_ml": "kit"}
MAX_MOTION_LENGTH = 196  # frames; the evaluation code pads every motion to this

CHECKPOINT_SUBPATH = ("text_mot_match", "model", "finest.tar")
META_SUBDIRS = ("Comp_v6_KLD005/meta", "Comp_v6_KLD01/meta")
MEAN_FILE, STD_FILE = "mean.npy", "std.npy"


def canonical_dataset(dataset: str) -> str:
    key = str(dataset).strip().lower()
    if key not in _ALIASES:
        raise GuoEvaluatorError(f"unknown dataset {dataset!r} for Guo's evaluator: use 't2m' (HumanML3D, 263-dim) "
                                f"or 'kit' (KIT-ML, 251-dim)")
    return _ALIASES[key]


def checkpoint_path(official_dir: str | os.PathLike, dataset: str = "t2m") -> Path:
    return Path(official_dir).joinpath(canonical_dataset(dataset), *CHECKPOINT_SUBPATH)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _first(items, k=3) -> str:
    items = list(items)
    s = ", ".join(repr(x) for x in items[:k])
    return s + (f" (+{len(items) - k} more)" if len(items) > k else "")


def check_state_dicts(ckpt: dict, modules: dict[str, torch.nn.Module], source: str, dataset: str) -> None:
    """Raise GuoEvaluatorError naming `source` and the first missing / unexpected / mis-shaped keys, if any."""
    absent = [k for k in CHECKPOINT_MODULES if not isinstance(ckpt.get(k), dict)]
    if absent:
        raise GuoEvaluatorError(f"{source}: not a Guo et al. evaluator checkpoint: no state dict under "
                                f"{_first(absent)} (found keys {_first(sorted(map(str, ckpt)), 6)})")
    problems = []
    for name in CHECKPOINT_MODULES:
        sd, expected = ckpt[name], modules[name].state_dict()
        missing = [k for k in expected if k not in sd]
        unexpected = [k for k in sd if k not in expected]
        if missing:
            problems.append(f"{name} is missing {_first(missing)}")
        if unexpected:
            problems.append(f"{name} has unexpected {_first(unexpected)}")
        for k, v in expected.items():
            got = sd.get(k)
            if got is None or not isinstance(got, torch.Tensor) or tuple(got.shape) == tuple(v.shape):
                continue
            msg = f"{name}.{k} has shape {tuple(got.shape)}, expected {tuple(v.shape)}"
            if name == "movement_encoder" and k == "main.0.weight" and got.ndim == 3:
                width = got.shape[1] + FOOT_CONTACT_DIMS
                other = [d for d, w in DATASETS.items() if w == width]
                msg += (f": the checkpoint reads {width}-dim features"
                        + (f" (dataset {other[0]!r})" if other else "")
                        + f", dataset {dataset!r} has {DATASETS[dataset]}")
            problems.append(msg)
            break
    if problems:
        raise GuoEvaluatorError(f"{source}: the checkpoint does not fit Guo et al.'s evaluator: " + "; ".join(problems))


def _load_checkpoint(path: Path) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a file boundary: whatever torch's unpickler trips on, the file is not a checkpoint
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GuoEvaluatorError(f"{path}: cannot read as a torch checkpoint of tensors ({first})") from None
    if not isinstance(ckpt, dict):
        raise GuoEvaluatorError(f"{path}: expected a dict of state dicts, got {type(ckpt).__name__}")
    return ckpt


def _find_glove(official_dir: Path, glove_dir) -> Path:
    if glove_dir is not None:
        return Path(glove_dir)
    tried = [official_dir / GLOVE_DIRNAME, official_dir.parent / GLOVE_DIRNAME]
    for d in tried:
        if d.is_dir():
            return d
    raise GuoEvaluatorError(f"no word-vector folder: tried {', '.join(map(str, tried))} (pass glove_dir=…)")


def _find_meta(official_dir: Path, dataset: str, meta_dir) -> tuple[Path, Path]:
    """(mean, std) files: `meta_dir`/{mean,std}.npy or `meta_dir`/<dataset>_{mean,std}.npy (MDM's names), else the
    first of the published meta folders that exists."""
    if meta_dir is not None:
        d = Path(meta_dir)
        for m, s in ((MEAN_FILE, STD_FILE), (f"{dataset}_mean.npy", f"{dataset}_std.npy")):
            if (d / m).is_file() and (d / s).is_file():
                return d / m, d / s
        raise GuoEvaluatorError(f"meta folder {d} has neither {MEAN_FILE}/{STD_FILE} nor "
                                f"{dataset}_mean.npy/{dataset}_std.npy")
    tried = [official_dir / dataset / sub for sub in META_SUBDIRS]
    for d in tried:
        if (d / MEAN_FILE).is_file() and (d / STD_FILE).is_file():
            return d / MEAN_FILE, d / STD_FILE
    raise GuoEvaluatorError(f"no evaluator normalisation statistics: tried {', '.join(map(str, tried))} "
                            f"(each should hold {MEAN_FILE} and {STD_FILE}; pass meta_dir=…)")


def _load_stat(path: Path, dim: int) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise GuoEvaluatorError(f"{path}: not a numeric .npy array ({e})") from None
    a = np.asarray(a, dtype=np.float64)
    if a.size == dim:
        a = a.reshape(-1)
    if a.shape != (dim,):
        raise GuoEvaluatorError(f"{path}: shape {a.shape}, expected ({dim},) for this dataset")
    if not np.all(np.isfinite(a)):
        raise GuoEvaluatorError(f"{path}: contains NaN or inf")
    return a


def denormalize(x, mean, std) -> np.ndarray:
    """Features normalised with (mean, std), e.g. a generator's output, back to raw units."""
    return np.asarray(x, dtype=np.float64) * np.asarray(std, dtype=np.float64) + np.asarray(mean, dtype=np.float64)


class GuoEvaluator:
    """Frozen text and motion encoders of Guo et al. with their word vectors and normalisation statistics."""

    max_text_len = MAX_TEXT_LEN
    unit_length = UNIT_LENGTH
    max_motion_length = MAX_MOTION_LENGTH
    embed_dim = EMBED_DIM

    def __init__(self, modules: dict[str, torch.nn.Module], vocab: WordVectors, mean, std, dataset: str = "t2m",
                 device: str | torch.device | None = None, sha: str | None = None, source: str | None = None,
                 epoch: int | None = None):
        self.dataset = canonical_dataset(dataset)
        self.dim_pose = DATASETS[self.dataset]
        self.device = resolve_device(device)  # the GPU where there is one, as every trainer
        self.modules = {k: m.to(self.device).eval() for k, m in modules.items()}
        for m in self.modules.values():
            m.requires_grad_(False)
        self.vocab = vocab
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1)
        if self.mean.shape != (self.dim_pose,) or self.std.shape != (self.dim_pose,):
            raise GuoEvaluatorError(f"normalisation statistics of shape {self.mean.shape}/{self.std.shape}, expected "
                                    f"({self.dim_pose},) for dataset {self.dataset!r}")
        if np.any(self.std <= 0):
            raise GuoEvaluatorError(f"evaluator std has {int((self.std <= 0).sum())} non-positive entries")
        self.sha = sha
        self.source = source
        self.epoch = epoch

    # ----------------------------------------------------------------------------------------------------- loading

    @classmethod
    def load(cls, official_dir: str | os.PathLike, dataset: str = "t2m", device: str | torch.device | None = None,
             glove_dir: str | os.PathLike | None = None, meta_dir: str | os.PathLike | None = None) -> GuoEvaluator:
        """Load the published evaluator for `dataset` from `official_dir` (see the module docstring for the layout)."""
        dataset = canonical_dataset(dataset)
        root = Path(official_dir)
        if not root.is_dir():
            raise GuoEvaluatorError(f"evaluator folder {root} does not exist")
        path = checkpoint_path(root, dataset)
        if not path.is_file():
            found = [d for d in DATASETS if checkpoint_path(root, d).is_file()]
            hint = f" (it has the {found[0]!r} one: dataset={found[0]!r}?)" if found else ""
            raise GuoEvaluatorError(f"{path} does not exist: expected Guo et al.'s {dataset!r} evaluator at "
                                    f"<folder>/{dataset}/{'/'.join(CHECKPOINT_SUBPATH)}{hint}")
        mean_path, std_path = _find_meta(root, dataset, meta_dir)
        mean = _load_stat(mean_path, DATASETS[dataset])
        std = _load_stat(std_path, DATASETS[dataset])
        vocab = WordVectors.load(_find_glove(root, glove_dir))

        ckpt = _load_checkpoint(path)
        modules = build_modules(DATASETS[dataset])
        check_state_dicts(ckpt, modules, str(path), dataset)
        for name in CHECKPOINT_MODULES:
            try:
                modules[name].load_state_dict(ckpt[name], strict=True)
            except RuntimeError as e:  # dtype oddities the key/shape check did not catch
                first = str(e).strip().splitlines()[0]
                raise GuoEvaluatorError(f"{path}: {name} does not load: {first}") from None
        epoch = ckpt.get("epoch")
        return cls(modules, vocab, mean, std, dataset=dataset, device=device, sha=sha256_file(path),
                   source=str(path), epoch=int(epoch) if isinstance(epoch, (int, np.integer)) else None)

    # -------------------------------------------------------------------------------------------------------- text

    def encode_text_inputs(self, captions_tokens: Sequence):
        """Word vectors (N, 22, 300), POS one-hots (N, 22, 15), lengths (N,), as Guo's dataset builds them."""
        return self.vocab.encode_batch(captions_tokens, self.max_text_len)

    @torch.no_grad()
    def text_embeddings(self, captions_tokens: Sequence, batch_size: int = 256) -> np.ndarray:
        """(N, 512) text co-embeddings in input order. Each caption is a list of (word, POS) pairs ('word/POS'
        strings and objects with `.tokens`, like `mate.data.captions.Caption`, work too)."""
        words, pos, lens = self.encode_text_inputs(list(captions_tokens))
        out = np.zeros((len(lens), self.embed_dim), np.float32)
        order = np.argsort(-lens, kind="stable")  # packing wants the longest first
        enc = self.modules["text_encoder"]
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            n = int(lens[idx].max())
            emb = enc(torch.from_numpy(words[idx, :n]).to(self.device), torch.from_numpy(pos[idx, :n]).to(self.device),
                      torch.from_numpy(lens[idx]))
            out[idx] = emb.float().cpu().numpy()
        return out

    # ------------------------------------------------------------------------------------------------------ motion

    def normalize(self, raw) -> np.ndarray:
        """Raw features -> the evaluator's normalised units."""
        return (np.asarray(raw, dtype=np.float64) - self.mean) / self.std

    def renormalize(self, x, mean, std) -> np.ndarray:
        """Features normalised with another model's (mean, std) (a generator's) -> the evaluator's units."""
        for what, v in (("mean", mean), ("std", std)):
            if np.shape(v) != (self.dim_pose,):
                raise GuoEvaluatorError(f"the generator's {what} has shape {np.shape(v)}, expected ({self.dim_pose},)")
        return self.normalize(denormalize(x, mean, std))

    def _motion_list(self, motions, lengths, mean, std) -> tuple[list[np.ndarray], np.ndarray]:
        if isinstance(motions, torch.Tensor):
            motions = motions.detach().cpu().numpy()
        if isinstance(motions, np.ndarray) and motions.ndim == 2:
            raise GuoEvaluatorError("motion_embeddings takes a list of (T, D) arrays or an (N, T, D) array, "
                                    f"got one array of shape {motions.shape}")
        seqs = []
        for i, m in enumerate(motions):
            if isinstance(m, torch.Tensor):
                m = m.detach().cpu().numpy()
            m = np.asarray(m)
            if m.ndim != 2 or m.shape[1] != self.dim_pose:
                raise GuoEvaluatorError(f"motion {i} has shape {m.shape}; the {self.dataset!r} evaluator reads "
                                        f"(T, {self.dim_pose}) features")
            seqs.append(m)
        if lengths is None:
            lengths = [len(m) for m in seqs]
        if isinstance(lengths, torch.Tensor):
            lengths = lengths.detach().cpu().numpy()
        lengths = np.asarray(lengths).astype(np.int64).reshape(-1)
        if len(lengths) != len(seqs):
            raise GuoEvaluatorError(f"{len(seqs)} motions but {len(lengths)} lengths")
        for i, (m, n) in enumerate(zip(seqs, lengths)):
            if n > len(m):
                raise GuoEvaluatorError(f"motion {i}: length {n} exceeds its {len(m)} frames")
            if n < self.unit_length:
                raise GuoEvaluatorError(f"motion {i}: length {n} is shorter than the evaluator's unit of "
                                        f"{self.unit_length} frames")
        lengths = lengths // self.unit_length * self.unit_length
        out = []
        for m, n in zip(seqs, lengths):
            x = m[:n]
            x = self.renormalize(x, mean, std) if mean is not None else self.normalize(x)
            if not np.all(np.isfinite(x)):
                raise GuoEvaluatorError("a motion has NaN or inf features")
            out.append(x.astype(np.float32))
        return out, lengths

    @torch.no_grad()
    def motion_embeddings(self, motions, lengths=None, *, mean=None, std=None, batch_size: int = 256) -> np.ndarray:
        """(N, 512) motion co-embeddings in input order.

        `motions`: raw (un-normalised) (T, D) feature arrays (a list, or an (N, T, D) array with `lengths`), or, when
        `mean`/`std` are given, features normalised with those (a generator's statistics: they are de-normalised
        first). `lengths` (default: each array's T) are cut down to a multiple of 4.
        """
        if (mean is None) != (std is None):
            raise GuoEvaluatorError("give both mean and std (the statistics the motions are normalised with), "
                                    "or neither")
        seqs, lengths = self._motion_list(motions, lengths, mean, std)
        out = np.zeros((len(seqs), self.embed_dim), np.float32)
        if not seqs:
            return out
        movement_enc, motion_enc = self.modules["movement_encoder"], self.modules["motion_encoder"]
        d = self.dim_pose - FOOT_CONTACT_DIMS

        # Movement codes, computed at the padded length the evaluation code uses (196), so that a clip's codes never
        # depend on the other clips of its batch (the last codes see the zero padding).
        codes: list[torch.Tensor | None] = [None] * len(seqs)
        padded = np.maximum(lengths, self.max_motion_length)
        for p in np.unique(padded):
            members = np.flatnonzero(padded == p)
            for i in range(0, len(members), batch_size):
                idx = members[i:i + batch_size]
                x = np.zeros((len(idx), int(p), d), np.float32)
                for row, j in enumerate(idx):
                    x[row, :lengths[j]] = seqs[j][:, :d]
                mov = movement_enc(torch.from_numpy(x).to(self.device))
                for row, j in enumerate(idx):
                    codes[j] = mov[row, :lengths[j] // self.unit_length]

        steps = lengths // self.unit_length
        order = np.argsort(-steps, kind="stable")  # packing wants the longest first
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            n = int(steps[idx].max())
            batch = torch.zeros((len(idx), n, codes[idx[0]].shape[-1]), device=self.device)
            for row, j in enumerate(idx):
                batch[row, :steps[j]] = codes[j]
            out[idx] = motion_enc(batch, torch.from_numpy(steps[idx])).float().cpu().numpy()
        return out

    def info(self) -> dict:
        """What run.json records about the evaluator."""
        return {"kind": "guo", "dataset": self.dataset, "sha": self.sha, "checkpoint": self.source,
                "epoch": self.epoch, "glove": self.vocab.source, "vocab_size": len(self.vocab)}
