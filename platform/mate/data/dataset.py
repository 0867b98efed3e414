"""A torch Dataset over one split of a pack, with the T2M loaders' item rules, and padded batch collation.

Items are (clip, caption) pairs: every whole-clip caption is an item over the whole clip, and every timed caption an
item over its own sub-clip [int(start*fps), int(end*fps)), each kept only when its length passes the dataset's filter
(HumanML3D 40 <= rows < 200, KIT-ML from 24) and, as in the T2M loaders, only when the whole clip passes it too. (The
T2M loaders group a clip's whole-clip captions into one item and draw one per access; pairs make an epoch cover every
caption and make evaluation deterministic.) Each access crops to a multiple of 4 rows, at most 196 (the family's;
`MotionDataset.from_config` applies `data.unit_len`, `data.max_len` and `data.min_len` instead), at a random offset
drawn from (seed, epoch, item), so crops are reproducible whatever the number of DataLoader workers, and normalises
with the dataset's Mean/Std.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .pack import Pack


def _mix(*values: int) -> int:
    """A well-mixed 64-bit hash of small ints (splitmix64 steps): a random crop offset that costs ~1 us, not a
    Generator."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h


class MotionDataset(Dataset):
    def __init__(self, pack: Pack, split: str, *, normalize: bool = True, random_crop: bool = True, seed: int = 0,
                 min_len: int | None = None, max_len: int | None = None, max_motion_len: int | None = None,
                 unit_len: int | None = None):
        spec = pack.spec
        self.pack, self.split, self.normalize, self.random_crop, self.seed = pack, split, normalize, random_crop, seed
        self.min_len = spec.min_len if min_len is None else min_len
        self.max_len = spec.max_len if max_len is None else max_len
        self.max_motion_len = spec.max_motion_len if max_motion_len is None else max_motion_len
        self.unit_len = spec.unit_len if unit_len is None else unit_len
        self.epoch = 0
        clips = pack.split_indices(split).astype(np.int64)
        first, counts = pack.cap_ptr[clips], pack.cap_ptr[clips + 1] - pack.cap_ptr[clips]
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        cap = np.repeat(first, counts) + within
        rows = pack.cap_rows[cap].astype(np.int64).reshape(-1, 2)
        n = rows[:, 1] - rows[:, 0]
        clip_of = np.repeat(clips, counts)
        whole = pack.lengths[clip_of].astype(np.int64)
        keep = (n >= self.min_len) & (n < self.max_len) & (whole >= self.min_len) & (whole < self.max_len)
        self.clip = clip_of[keep]  # clip index of each item
        self.cap = cap[keep]  # global caption index of each item
        self.rows = rows[keep]  # [a, b) rows of the clip each item covers
        self.mean, self.std = pack.mean.astype(np.float32), pack.std.astype(np.float32)

    @classmethod
    def from_config(cls, pack: Pack, split: str, cfg, **kwargs) -> "MotionDataset":
        """The dataset a config asks for: `data.kind` checked and `data.min_len`, `data.max_len` (longest crop) and
        `data.unit_len` (crop unit) applied over the family's values (`mate.data.layout.configured`);
        `random_crop` and `seed` default to `data.random_crop` and the config's data seed. `kwargs` win."""
        from .layout import configured

        spec = configured(pack.spec, cfg)
        seed = cfg.seed_for("data") if hasattr(cfg, "seed_for") else (cfg.get("data.seed") or 0)
        args = {"random_crop": cfg.get("data.random_crop", True), "seed": seed, "min_len": spec.min_len,
                "max_motion_len": spec.max_motion_len, "unit_len": spec.unit_len}
        return cls(pack, split, **{**args, **kwargs})

    def __len__(self) -> int:
        return len(self.cap)

    def set_epoch(self, epoch: int) -> None:
        """Change the random crops (call once per epoch, before iterating)."""
        self.epoch = epoch

    def crop(self, index: int) -> tuple[int, int]:
        """The rows [a, b) of the clip that item `index` returns this epoch."""
        a, b = (int(v) for v in self.rows[index])
        m = min(self.max_motion_len, ((b - a) // self.unit_len) * self.unit_len)
        if self.random_crop:
            off = _mix(self.seed, self.epoch, index) % (b - a - m + 1)
        else:
            off = (b - a - m) // 2
        return a + off, a + off + m

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        ci, k = int(self.clip[index]), int(self.cap[index])
        a, b = self.crop(index)
        x = self.pack.motion(ci, a, b)
        if self.normalize:  # in place: x is a fresh array
            x -= self.mean
            x /= self.std
        cap = self.pack.caption(k)
        return {"motion": x, "length": b - a, "text": cap.text, "tokens": cap.tokens, "id": self.pack.ids[ci],
                "caption": k, "start": a}


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad motions to the longest in the batch: motion (B, Lmax, D) float32, lengths (B,), mask (B, Lmax) True on
    real rows, and the captions' text, tokens, clip ids, caption indices and crop starts as lists."""
    lengths = torch.tensor([int(b["length"]) for b in batch], dtype=torch.long)
    dim = batch[0]["motion"].shape[1] if batch else 0
    lmax = int(lengths.max()) if batch else 0
    motion = torch.zeros(len(batch), lmax, dim, dtype=torch.float32)
    for i, b in enumerate(batch):
        motion[i, : b["length"]] = torch.from_numpy(np.asarray(b["motion"], dtype=np.float32))
    mask = torch.arange(lmax)[None, :] < lengths[:, None]
    return {"motion": motion, "lengths": lengths, "mask": mask, "text": [b["text"] for b in batch],
            "tokens": [b["tokens"] for b in batch], "ids": [b["id"] for b in batch],
            "caption": [b["caption"] for b in batch], "start": [b["start"] for b in batch]}


def make_loader(dataset: MotionDataset, batch_size: int = 32, shuffle: bool = True, seed: int = 0,
                num_workers: int = 0, drop_last: bool = False) -> DataLoader:
    """A DataLoader with `collate` and a seeded shuffle."""
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=g if shuffle else None,
                      num_workers=num_workers, collate_fn=collate, drop_last=drop_last,
                      persistent_workers=num_workers > 0)
