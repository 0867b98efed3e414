"""Measures that need the synthetic corpus's ground truth (`annotations.jsonl`, `prompts/minimal_pairs.jsonl`): the
R-Precision ceiling of a template corpus, how well a retrieval model partitions motions into the annotated segments,
and the readers of both files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .metrics import r_precision_ceiling
from .partition import equal_split, mean_frame_iou, partition_dataset, tokens_to_frames


def load_annotations(data_dir: str | Path) -> dict[str, dict] | None:
    path = Path(data_dir) / "annotations.jsonl"
    if not path.is_file():
        return None
    return {a["id"]: a for a in map(json.loads, path.read_text().splitlines())}


def load_pairs(data_dir: str | Path, split: str | None = None) -> list[dict]:
    """The corpus's minimal pairs (of one split, or all); [] for a dataset without them (real data)."""
    path = Path(data_dir) / "prompts" / "minimal_pairs.jsonl"
    if not path.is_file():
        return []
    pairs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [p for p in pairs if split is None or p["split"] == split]


def caption_meaning(caption: dict) -> tuple:
    """What a caption says: its motion words' (segment, attribute, value), in segment order."""
    return tuple(sorted((w["segment"], w["attribute"], w["value"]) for w in caption["words"]))


def ceiling(notes: dict[str, dict], texts: list[str], seed: int = 0, repeats: int = 20) -> dict[str, float]:
    """R@1..3 of an ideal retriever that cannot tell same-meaning captions apart, for these test items."""
    meanings = {c["text"]: caption_meaning(c) for a in notes.values() for c in a["captions"]}
    groups = np.unique([str(meanings.get(t, t)) for t in texts], return_inverse=True)[1]
    return r_precision_ceiling(groups, batch_size=32, seed=seed, repeats=repeats)


def partition_cases(notes: dict[str, dict], ids) -> list[tuple[str, list[str], list[tuple[int, int]]]]:
    """(clip, ground-truth sub-texts in temporal order, their annotated spans) for captions with >= 2 sub-texts
    that name every segment of their clip once."""
    cases = []
    for cid in ids:
        a = notes[cid]
        spans = [tuple(s["span"]) for s in a["segments"]]
        for cap in a["captions"]:
            subs = sorted(cap["subtexts"], key=lambda s: s["segment"])
            if len(subs) >= 2 and [s["segment"] for s in subs] == list(range(len(spans))):
                cases.append((cid, [s["text"] for s in subs], [spans[s["segment"]] for s in subs]))
    return cases


def partition_iou(model, embed_subtexts, pack, cases, min_len: int = 2) -> dict[str, float]:
    """Mean frame IoU of the model's optimal partitions with the annotated spans, and of the equal-length split.

    `embed_subtexts(texts) -> (n, D)`: the model's text embeddings of sub-texts. Segments are at least `min_len`
    motion tokens (4 rows each)."""
    if not cases:
        return {}
    texts = sorted({t for _, subs, _ in cases for t in subs})
    emb = dict(zip(texts, embed_subtexts(texts)))
    with torch.no_grad():
        tokens = {cid: model.motion.tokens(torch.from_numpy(pack.normalize(pack.motion(cid))[None]))[0].numpy()
                  for cid in {c for c, _, _ in cases}}
    parts = partition_dataset([tokens[c] for c, _, _ in cases], [np.stack([emb[t] for t in s]) for _, s, _ in cases],
                              min_len=min_len, pool=model.window_head)
    lengths = [int(pack.lengths[pack.index(c)]) for c, _, _ in cases]
    truth = [t for _, _, t in cases]
    preds = [tokens_to_frames(p, n) for p, n in zip(parts, lengths)]
    equal = [equal_split(n, len(t)) for n, t in zip(lengths, truth)]
    return {"eval/partition_iou": mean_frame_iou(preds, truth),
            "eval/partition_iou_equal": mean_frame_iou(equal, truth),
            "partition_captions": float(len(cases))}
