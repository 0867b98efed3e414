"""Training, storing and loading the frozen retrieval model, once per (dataset, normalisation, config, seed).

It learns from captions and whole clips only (never from the synthetic annotations). Its identity is the sha256 of
its weights file, which every score records; loading it for another dataset or normalisation is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import ConcatDataset

from mate.cache import content_hash, file_sha256, get_or_build
from mate.config import derive_seed
from mate.data.captions import canonical_text
from mate.data.dataset import MotionDataset, collate
from mate.errors import UserError
from mate.loop import Loop, Plan, Task, resolve_device, to_device
from mate.text.cached import FrozenFeatures, frozen_features

from ..metrics import r_precision
from .model import DOWNSAMPLE, RetrievalModel, info_nce

WEIGHTS = "model.safetensors"
META = "meta.json"


class EvaluatorMismatch(UserError):
    """An evaluator used with a dataset, normalisation or text model other than the one it was trained on."""


@dataclass
class Evaluator:
    model: RetrievalModel
    sha: str
    path: Path
    meta: dict
    texts: FrozenFeatures

    def embed_texts(self, captions: Sequence[str], batch: int = 256) -> np.ndarray:
        return embed_texts(self.model, self.texts, captions, batch)

    def embed_motions(self, motions: Sequence[np.ndarray], batch: int = 128) -> np.ndarray:
        """Embeddings of motions normalised with the dataset's Mean/Std."""
        return embed_motions(self.model, motions, batch)


def all_captions(pack) -> list[str]:
    return list(dict.fromkeys(pack.caption_texts()))


@torch.no_grad()
def embed_texts(model: RetrievalModel, feats: FrozenFeatures, captions: Sequence[str], batch: int = 256) -> np.ndarray:
    model.eval()
    idx = [feats.index[c] for c in captions]
    out = []
    for s in range(0, len(idx), batch):
        tok, mask = feats.padded(idx[s : s + batch])
        out.append(model.encode_text(tok, mask))
    return torch.cat(out).numpy() if out else np.zeros((0, model.config["dim"]), np.float32)


@torch.no_grad()
def embed_motions(model: RetrievalModel, motions: Sequence[np.ndarray], batch: int = 128) -> np.ndarray:
    """Embeddings of normalised motions (lists of (T, D) arrays, any lengths; cropped to a multiple of 4)."""
    model.eval()
    out = []
    for s in range(0, len(motions), batch):
        chunk = motions[s : s + batch]
        rows = [max(DOWNSAMPLE, len(m) // DOWNSAMPLE * DOWNSAMPLE) for m in chunk]  # whole motion-tower tokens
        items = [{"motion": m[:n], "length": n, "text": "", "tokens": [], "id": "", "caption": 0, "start": 0}
                 for m, n in zip(chunk, rows)]
        b = collate(items)
        out.append(model.encode_motion(b["motion"], b["lengths"]))
    return torch.cat(out).numpy() if out else np.zeros((0, model.config["dim"]), np.float32)


def partition_seed(cfg) -> int:
    """Seed of the partition model (`align.partition_seed`, else derived): a different training from the scorer."""
    seed = cfg.get("align.partition_seed")
    return int(seed) if seed is not None else derive_seed(int(cfg.get("seed", 0)), "partition")


def training_splits(cfg, pack) -> list[str]:
    names = [s.strip() for s in cfg["evaluator.splits"].split(",") if s.strip()]
    if not names or "test" in names or any(s.startswith("test") for s in names):
        raise UserError(f"evaluator.splits={cfg['evaluator.splits']!r}: name one or more of train, val (never test)")
    missing = [s for s in names if s not in pack.splits]
    if missing:
        raise UserError(f"evaluator.splits: {', '.join(missing)} not in the dataset (it has {', '.join(pack.splits)})")
    return names


def _evaluate_split(model, pack, feats, split: str) -> dict[str, float]:
    ds = MotionDataset(pack, split, random_crop=False)
    if len(ds) < 32:
        return {}
    items = [ds[i] for i in range(len(ds))]
    order = np.random.default_rng(0).permutation(len(items))  # mix clips: consecutive items share a clip
    items = [items[i] for i in order]
    t = embed_texts(model, feats, [it["text"] for it in items])
    m = embed_motions(model, [it["motion"] for it in items])
    r = r_precision(t, m, batch_size=32, top_k=3)
    return {"r_precision_top1": float(r[0]), "r_precision_top2": float(r[1]), "r_precision_top3": float(r[2])}


class _Retrieval(Task):
    """InfoNCE between captions and clips over the training splits, for `mate.loop`."""

    def __init__(self, model: RetrievalModel, parts: list[MotionDataset], feats: FrozenFeatures, cfg, seed: int,
                 sched: torch.optim.lr_scheduler.OneCycleLR):
        self.model, self.parts, self.feats, self.cfg, self.seed, self.sched = model, parts, feats, cfg, seed, sched
        self.data = ConcatDataset(parts)
        self.sent = torch.nn.functional.normalize(feats.sentence, dim=-1)

    def begin_epoch(self, epoch: int) -> None:
        self.model.train()
        for part in self.parts:
            part.set_epoch(epoch)

    def batches(self, epoch: int):
        batch = self.cfg["evaluator.batch"]
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.data))
        for s in range(0, len(order) - batch + 1, batch):  # whole batches: InfoNCE wants its negatives
            yield collate([self.data[int(i)] for i in order[s : s + batch]])

    def loss(self, batch):
        feats, cfg = self.feats, self.cfg
        idx = [feats.index[t] for t in batch["text"]]
        tok, mask = feats.padded(idx)
        s = self.sent[idx]
        ids, same = np.asarray(batch["ids"]), np.asarray([canonical_text(t) for t in batch["text"]])
        not_neg = (s @ s.T > cfg["evaluator.false_neg_cos"]) | torch.from_numpy(
            (ids[:, None] == ids[None, :]) | (same[:, None] == same[None, :]))
        device = next(self.model.parameters()).device  # the loop moved the batch; the frozen features follow
        tok, mask, not_neg = to_device((tok, mask, not_neg), device)
        motion, lengths = to_device((batch["motion"], batch["lengths"]), device)
        return info_nce(self.model.encode_text(tok, mask), self.model.encode_motion(motion, lengths),
                        cfg["evaluator.temperature"], not_neg)

    def after_step(self, step: int) -> None:
        if self.sched.last_epoch + 1 < self.sched.total_steps:
            self.sched.step()

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "schedule": self.sched.state_dict()}

    def load_state(self, state) -> None:
        self.model.load_state_dict(state["model"])
        self.sched.load_state_dict(state["schedule"])


def _train(pack, feats: FrozenFeatures, cfg, seed: int, progress: bool,
           checkpoint: Path | None = None) -> tuple[RetrievalModel, dict]:
    """Train on `mate.loop`; `checkpoint` (a file) is written every epoch and resumed from when present, so a killed
    paper-size training continues instead of starting over."""
    torch.manual_seed(seed)
    device = resolve_device()  # CUDA where the training runs has one; scoring uses the CPU copy returned
    model = RetrievalModel(pack.dim, feats.tokens.shape[1], cfg["evaluator.hidden"], cfg["evaluator.dim"]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["evaluator.lr"], weight_decay=1e-4)
    parts = [MotionDataset(pack, s, random_crop=True, seed=seed) for s in training_splits(cfg, pack)]
    per_epoch = max(1, sum(len(p) for p in parts) // cfg["evaluator.batch"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["evaluator.lr"],
                                                total_steps=max(1, cfg["evaluator.epochs"] * per_epoch))
    plan = Plan("evaluator", cfg["evaluator.epochs"], seed=seed, max_seconds=cfg["evaluator.max_seconds"],
                clip_norm=None, hint="lower evaluator.lr")
    loop = Loop(_Retrieval(model, parts, feats, cfg, seed, sched), opt, plan, checkpoint=checkpoint, device=device,
                progress=progress)
    loop.resume(checkpoint)
    history = loop.fit()
    model.to("cpu")
    stats = {"epochs_done": len(history), "train_seconds": loop.seconds,
             "final_loss": history[-1]["evaluator/loss"] if history else float("nan")}
    held = next((s for s in ("val", "test") if s not in training_splits(cfg, pack)), None)
    if held is not None:  # its own check, on the first split it did not train on (test carries no prefix)
        prefix = "val/" if held == "val" else ""
        stats.update({f"{prefix}{k}": v for k, v in _evaluate_split(model, pack, feats, held).items()})
    return model, stats


def evaluator_dir(pack, encoder, cfg, seed: int, workspace) -> Path:
    key = content_hash({"data": pack.content_hash, "norm": pack.norm_hash, "text": encoder.folder_hash,
                        "config": {k: v for k, v in cfg.section("evaluator").items()
                                   if k not in ("evaluator.seed", "evaluator.sha", "evaluator.val_sha",
                                                "evaluator.max_seconds")},
                        "seed": seed, "format": 2})  # 2: trained on mate.loop
    return Path(workspace) / "cache" / "evaluators" / key


def train_or_load(pack, encoder, cfg, workspace, seed: int, progress: bool = True) -> Evaluator:
    """The retrieval model for this dataset, config and seed: loaded from the workspace, or trained once."""
    from safetensors.torch import save_file

    feats = frozen_features(encoder, all_captions(pack), workspace, progress=progress)
    path = evaluator_dir(pack, encoder, cfg, seed, workspace)
    partial = path.with_name(f".{path.name}.checkpoint.pt")  # a killed training resumes from here

    def build(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        model, stats = _train(pack, feats, cfg, seed, progress, checkpoint=partial)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / WEIGHTS))
        meta = {"dataset_hash": pack.content_hash, "norm_hash": pack.norm_hash, "text_model": encoder.folder_hash,
                "text_family": encoder.family, "model_config": model.config, "seed": seed,
                "config": cfg.section("evaluator"), "sha": file_sha256(tmp / WEIGHTS), **stats}
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True))

    get_or_build(path, build)
    partial.unlink(missing_ok=True)
    return load(path, pack, encoder, feats)


def val_scorer_config(cfg, pack):
    """The config of the evaluator that scores the val objectives: the scoring recipe on the training splits less
    val, so that the figures that choose between trials come from a model that never saw those clips. None when the
    scoring evaluator itself never trained on val (it then scores val as well)."""
    from mate.config import resolve

    splits = training_splits(cfg, pack)
    if "val" not in splits:
        return None
    rest = [s for s in splits if s != "val"]
    if not rest:
        raise UserError("evaluator.splits=val: the val objectives need an evaluator that never saw val; "
                        "train the scorer on train (or train,val)")
    return resolve({**cfg.to_dict(), "evaluator.splits": ",".join(rest), "evaluator.sha": None})


def val_scorer(pack, encoder, cfg, workspace, scorer: Evaluator | None = None, progress: bool = True) -> Evaluator:
    """The evaluator behind `val/eval/*` (`val_scorer_config`), trained once and cached like the scorer."""
    vcfg = val_scorer_config(cfg, pack)
    if vcfg is None:
        return scorer or train_or_load(pack, encoder, cfg, workspace, seed=cfg.seed_for("evaluator"),
                                       progress=progress)
    return train_or_load(pack, encoder, vcfg, workspace, seed=cfg.seed_for("evaluator"), progress=progress)


def load(path, pack, encoder, feats: FrozenFeatures | None = None) -> Evaluator:
    from safetensors.torch import load_file

    path = Path(path)
    try:
        meta = json.loads((path / META).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not an evaluator folder ({exc})") from None
    if meta["dataset_hash"] != pack.content_hash:
        raise EvaluatorMismatch(f"{path}: evaluator trained on dataset {meta['dataset_hash']}, not "
                                f"{pack.content_hash} ({pack.path}); train one for this dataset")
    if meta["norm_hash"] != pack.norm_hash:
        raise EvaluatorMismatch(f"{path}: evaluator trained with other Mean/Std normalisation")
    if meta["text_model"] != encoder.folder_hash:
        raise EvaluatorMismatch(f"{path}: evaluator reads the token features of another language model "
                                f"({meta['text_model']}, not {encoder.folder_hash})")
    sha = file_sha256(path / WEIGHTS)
    if sha != meta["sha"]:
        raise EvaluatorMismatch(f"{path / WEIGHTS}: weights changed since training (sha {sha[:12]}, "
                                f"recorded {meta['sha'][:12]})")
    model = RetrievalModel(**meta["model_config"])
    model.load_state_dict(load_file(str(path / WEIGHTS)))
    model.eval()
    feats = feats or frozen_features(encoder, all_captions(pack), path.parents[2], progress=False)
    return Evaluator(model, sha, path, meta, feats)
