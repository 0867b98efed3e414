"""Motion localization for MATE's training items (docs/method.md §4): every caption's sub-texts with their motion rows.

`localize(pack, encoder, cfg, workspace)` segments every caption of the pack (`segment.backend`: rules, openai or
truth; the segmentation cache of `mate.text.segment`), and partitions each caption's motion among its N sub-texts:

- N = 1: the sub-text gets the caption's whole row range (the whole clip, or a timed caption's sub-clip);
- N >= 2: the optimal partition (`mate.evaluate.partition.partition_dataset`) with the PARTITION evaluator (the
  retrieval model trained with seed `align.partition_seed`, else `derive_seed(seed, "partition")`; a different model
  from the scoring evaluator): sub-texts embedded by its text tower over the base LM's frozen features, the caption's
  normalised rows through its motion tower (local token features, one token per 4 rows), every window scored through
  its head (`pool=model.window_head`), segments of at least `align.min_segment` tokens, spans mapped back to rows
  with `tokens_to_frames`;
- fallback, a caption too short for N segments of `align.min_segment` tokens: the equal split of its rows
  (`equal_split`), counted in `meta["counts"]["short"]` (a caption with fewer rows than sub-texts gives every
  sub-text the whole range).

Timed captions (start/end) are partitioned on their own sub-clip; every row span is in the CLIP's rows (offset by the
caption's first row). `spans="truth"` (synthetic corpus only) takes the annotated spans instead of the model's, for
measuring segmentation and partition separately: a caption whose sub-texts (character spans, temporal order) equal
the annotated ones gets their annotated row spans (a one-sub-text caption included); any other caption falls back to
the equal split, counted in `counts["truth_mismatch"]`.

Cache: computed once per dataset for every caption of the pack (all splits; `splits` only filters what is returned),
under `<workspace>/cache/localize/<key>/` with `spans.npz` (ptr (captions+1,) int64: caption k's sub-texts are
rows ptr[k]:ptr[k+1] of chars (S, 2) int32 and rows (S, 2) int32; kind (captions,) int8, see KINDS) and
`meta.json` (the key's parts, counts, seconds). The key hashes the dataset's content hash, the segmentation identity
(backend, model, version), the partition evaluator's sha (or the annotations' sha for `spans="truth"`), the minimum
segment length and the format. Sub-text texts are not stored: a sub-text is caption[start:end].
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from mate.cache import content_hash, file_sha256, get_or_build, note
from mate.errors import UserError
from mate.evaluate.retrieval.model import DOWNSAMPLE  # the partition model's rows per token (not data.unit_len)
from mate.evaluate.retrieval.train import partition_seed

FORMAT = 1
SPANS = "spans.npz"
META = "meta.json"
KINDS = ("single", "partition", "short", "truth", "truth_mismatch")
SINGLE, PARTITION, SHORT, TRUTH, TRUTH_MISMATCH = range(5)
CHUNK = 2048  # captions partitioned per call (bounds the float64 token features partition_dataset holds)

Entry = tuple[str, int, int, int, int]  # (sub-text, char start, char end, row start, row end)


class Localization(dict):
    """(clip id, caption index within the clip) -> [(sub-text, char start, char end, row start, row end), ...] in
    temporal order, rows of the clip. `meta` holds the cache key's parts and the counts; `path` the cache folder."""

    def __init__(self, entries=(), *, meta: dict | None = None, path: Path | None = None):
        super().__init__(entries)
        self.meta = meta or {}
        self.path = path

    @property
    def counts(self) -> dict[str, int]:
        return self.meta.get("counts", {})


def _opt(cfg, key: str, default):
    values = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    v = values.get(key)
    return default if v is None else v


def localize_dir(workspace) -> Path:
    return Path(workspace) / "cache" / "localize"


def _equal_rows(a: int, b: int, n: int) -> list[tuple[int, int]]:
    from mate.evaluate.partition import equal_split

    if b - a < n:
        return [(a, b)] * n
    return [(a + s, a + e) for s, e in equal_split(b - a, n)]


def _annotated(notes: dict, clip_id: str, text: str) -> list[tuple[int, int, int, int]] | None:
    """The annotated sub-texts of a caption of a clip, temporal order: (char start, char end, row start, row end)."""
    clip = notes.get(clip_id)
    if clip is None:
        return None
    for cap in clip.get("captions", ()):
        if cap["text"] == text:
            subs = sorted(cap["subtexts"], key=lambda s: (s["segment"], s["chars"][0]))
            return [(int(s["chars"][0]), int(s["chars"][1]), int(s["span"][0]), int(s["span"][1])) for s in subs]
    return None


@torch.no_grad()
def _token_features(model, pack, keys: Sequence[tuple[int, int, int]], batch: int = 64) -> dict:
    """(clip, a, b) -> (tokens, H) float32 local token features of the normalised rows [a, b) (equal lengths batched:
    the motion tower's GroupNorm sees the whole sequence, so padding would change the features)."""
    model.eval()
    by_len: dict[int, list] = defaultdict(list)
    for key in keys:
        by_len[key[2] - key[1]].append(key)
    out = {}
    mean, std = pack.mean.astype(np.float32), pack.std.astype(np.float32)
    for _, group in by_len.items():
        for at in range(0, len(group), batch):
            part = group[at:at + batch]
            x = np.stack([(pack.motion(c, a, b) - mean) / std for c, a, b in part]).astype(np.float32)
            tok = model.motion.tokens(torch.from_numpy(x)).float().numpy()
            for key, t in zip(part, tok):
                out[key] = t
    return out


def _trained_sha(pack, encoder, cfg, workspace, seed: int) -> str | None:
    """The sha of the partition evaluator when it is already trained (read from its folder without loading the
    model or the frozen caption features, which a cached localization does not need), else None."""
    from mate.evaluate.retrieval.train import META as EVAL_META, WEIGHTS, evaluator_dir

    folder = evaluator_dir(pack, encoder, cfg, seed, workspace)
    try:
        sha = json.loads((folder / EVAL_META).read_text())["sha"]
    except (OSError, ValueError, KeyError):
        return None
    if not ((folder / WEIGHTS).is_file() and file_sha256(folder / WEIGHTS) == sha):
        return None
    note(folder)  # a trial keys its localization on this folder: a cluster ships it with the prepare outputs
    return sha


def _build(pack, encoder, cfg, workspace, texts, segs, evaluator, notes, min_len, spans, progress, tmp: Path,
           meta: dict) -> None:
    from mate.evaluate.partition import partition_dataset, tokens_to_frames

    start = time.perf_counter()
    num = len(texts)
    clip_of = pack.caption_clip
    rows = pack.cap_rows.astype(np.int64)
    kind = np.zeros(num, np.int8)
    per_cap: list[list[tuple[int, int, int, int]] | None] = [None] * num
    pending: list[int] = []  # captions for the model partition
    counts: Counter = Counter()
    for k in range(num):
        subs = segs[texts[k]].subtexts
        a, b = int(rows[k, 0]), int(rows[k, 1])
        n = len(subs)
        if spans == "truth":
            truth = _annotated(notes, pack.ids[clip_of[k]], texts[k])
            if truth is not None and [(s, e) for s, e, _, _ in truth] == [(s.start, s.end) for s in subs]:
                per_cap[k], kind[k] = truth, TRUTH
            else:
                per_cap[k], kind[k] = [(s.start, s.end, ra, rb) for s, (ra, rb) in zip(subs, _equal_rows(a, b, n))], \
                    TRUTH_MISMATCH
        elif n == 1:
            per_cap[k], kind[k] = [(subs[0].start, subs[0].end, a, b)], SINGLE
        elif (b - a) // DOWNSAMPLE < n * min_len:
            per_cap[k], kind[k] = [(s.start, s.end, ra, rb) for s, (ra, rb) in zip(subs, _equal_rows(a, b, n))], SHORT
        else:
            pending.append(k)
    if pending:
        model = evaluator.model
        from mate.evaluate.retrieval import embed_texts
        from mate.text.cached import frozen_features

        sub_texts = list(dict.fromkeys(s.text for k in pending for s in segs[texts[k]].subtexts))
        feats = frozen_features(encoder, sub_texts, workspace, progress=progress)
        emb = dict(zip(sub_texts, embed_texts(model, feats, sub_texts)))
        bar = tqdm(total=len(pending), desc="partition", unit="caption", disable=not progress)
        for at in range(0, len(pending), CHUNK):
            chunk = pending[at:at + CHUNK]
            keys = [(int(clip_of[k]), int(rows[k, 0]), int(rows[k, 1])) for k in chunk]
            toks = _token_features(model, pack, list(dict.fromkeys(keys)))
            todo, short = [], []
            for k, key in zip(chunk, keys):
                n = len(segs[texts[k]].subtexts)
                (todo if len(toks[key]) >= n * min_len else short).append(k)
            for k in short:  # the token grid can hold fewer tokens than rows // 4
                subs, a, b = segs[texts[k]].subtexts, int(rows[k, 0]), int(rows[k, 1])
                per_cap[k] = [(s.start, s.end, ra, rb) for s, (ra, rb) in zip(subs, _equal_rows(a, b, len(subs)))]
                kind[k] = SHORT
            if todo:
                tk = [(int(clip_of[k]), int(rows[k, 0]), int(rows[k, 1])) for k in todo]
                parts = partition_dataset([toks[key] for key in tk],
                                          [np.stack([emb[s.text] for s in segs[texts[k]].subtexts]) for k in todo],
                                          min_len=min_len, pool=model.window_head)
                for k, (_, a, b), p in zip(todo, tk, parts):
                    subs = segs[texts[k]].subtexts
                    frames = tokens_to_frames(p, b - a)
                    per_cap[k] = [(s.start, s.end, a + fs, a + fe) for s, (fs, fe) in zip(subs, frames)]
                    kind[k] = PARTITION
            bar.update(len(chunk))
        bar.close()
    ptr = np.zeros(num + 1, np.int64)
    ptr[1:] = np.cumsum([len(p) for p in per_cap])  # type: ignore[arg-type]
    flat = [e for p in per_cap for e in p]  # type: ignore[union-attr]
    arr = np.array(flat, np.int32).reshape(-1, 4)
    tmp.mkdir(parents=True)
    with open(tmp / SPANS, "wb") as f:
        np.savez(f, ptr=ptr, chars=arr[:, :2], rows=arr[:, 2:], kind=kind)
    counts.update({name: int((kind == i).sum()) for i, name in enumerate(KINDS)})
    meta = dict(meta, counts=dict(counts, captions=num), seconds=round(time.perf_counter() - start, 3))
    (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True))


def localize(pack, encoder, cfg, workspace, splits: Iterable[str] | None = None, progress: bool = True, *,
             spans: str = "model", data_dir=None, min_len: int | None = None) -> Localization:
    """Sub-texts and their row spans for every caption of the pack's clips in `splits` (None: all); see the module
    docstring. `encoder` is the base text encoder (no trainable rows selected): the partition evaluator reads its
    frozen features. `data_dir` defaults to the folder the pack was built from (the truth backend and
    `spans="truth"` read its annotations.jsonl)."""
    from mate.text.segment import identity, segment_captions

    if spans not in ("model", "truth"):
        raise ValueError(f"spans must be 'model' or 'truth', got {spans!r}")
    data_dir = Path(data_dir) if data_dir is not None else pack.source
    min_len = int(min_len if min_len is not None else _opt(cfg, "align.min_segment", 2))
    if min_len < 1:
        raise UserError(f"align.min_segment must be >= 1 motion token, got {min_len}")
    backend, model_name, version = identity(cfg, data_dir)
    key_parts = {"format": FORMAT, "data": pack.content_hash, "segment": [backend, model_name, version],
                 "min_len": min_len, "spans": spans}
    evaluator, notes, seed = None, None, None
    if spans == "model":
        from mate.evaluate.retrieval import train_or_load

        seed = partition_seed(cfg)
        sha = _trained_sha(pack, encoder, cfg, workspace, seed)
        if sha is None:
            evaluator = train_or_load(pack, encoder, cfg, workspace, seed=seed, progress=progress)
            sha = evaluator.sha
        key_parts.update(evaluator=sha, partition_seed=seed)
    else:
        from mate.evaluate.truth import load_annotations

        notes = load_annotations(data_dir)
        if notes is None:
            raise UserError(f"spans='truth' needs the synthetic corpus's annotations.jsonl, not found in {data_dir}")
        key_parts.update(annotations=file_sha256(data_dir / "annotations.jsonl")[:16])
    key = content_hash(key_parts)
    path = localize_dir(workspace) / key

    def build(tmp: Path) -> None:
        nonlocal evaluator
        if spans == "model" and evaluator is None:
            from mate.evaluate.retrieval import train_or_load

            evaluator = train_or_load(pack, encoder, cfg, workspace, seed=seed, progress=progress)
            if evaluator.sha != key_parts["evaluator"]:
                raise UserError(f"{evaluator.path}: partition evaluator changed while localizing; run again")
        texts = pack.caption_texts()
        run = segment_captions(texts, cfg, workspace, data_dir, progress=progress)
        meta = dict(key_parts, key=key, segment_fallbacks=dict(run.tally.fallbacks),
                    evaluator_path=str(evaluator.path) if evaluator is not None else None)
        _build(pack, encoder, cfg, workspace, texts, run.segmentations, evaluator, notes, min_len, spans, progress,
               tmp, meta)

    get_or_build(path, build)
    return load_localization(path, pack, splits)


def load_localization(path, pack, splits: Iterable[str] | None = None) -> Localization:
    """A cached localization folder as a Localization over the clips of `splits` (None: every clip)."""
    path = Path(path)
    meta = json.loads((path / META).read_text())
    if meta.get("data") != pack.content_hash:
        raise UserError(f"{path}: localization of dataset {meta.get('data')}, not {pack.content_hash}")
    with np.load(path / SPANS) as z:
        ptr, chars, rows = z["ptr"], z["chars"], z["rows"]
    if splits is None:
        clips = np.arange(len(pack), dtype=np.int64)
    else:
        clips = np.unique(np.concatenate([pack.split_indices(s) for s in splits] or [np.zeros(0, np.int64)]))
    out: dict = {}
    for c in clips.tolist():
        cid = pack.ids[c]
        for j, k in enumerate(range(int(pack.cap_ptr[c]), int(pack.cap_ptr[c + 1]))):
            text = pack.caption(k).text
            out[(cid, j)] = [(text[int(cs):int(ce)], int(cs), int(ce), int(rs), int(re))
                             for (cs, ce), (rs, re) in zip(chars[ptr[k]:ptr[k + 1]], rows[ptr[k]:ptr[k + 1]])]
    return Localization(out, meta=meta, path=path)


def localization_iou(localization, pack, notes: dict, splits: Iterable[str] | None = None) -> dict[str, float]:
    """Mean frame IoU of the localized row spans with the annotated ones (synthetic corpus), over captions of >= 2
    sub-texts that equal the annotated sub-texts, and of the equal split of the same captions (the baseline)."""
    from mate.evaluate.partition import equal_split, mean_frame_iou

    want = None if splits is None else {pack.ids[i] for s in splits for i in pack.split_indices(s)}
    preds, truths, equal = [], [], []
    for (cid, j), entries in localization.items():
        if len(entries) < 2 or (want is not None and cid not in want):
            continue
        k = int(pack.cap_ptr[pack.index(cid)]) + j
        truth = _annotated(notes, cid, pack.caption(k).text)
        if truth is None or [(s, e) for s, e, _, _ in truth] != [(e[1], e[2]) for e in entries]:
            continue
        a, b = (int(v) for v in pack.cap_rows[k])
        preds.append([(e[3], e[4]) for e in entries])
        truths.append([(rs, re) for _, _, rs, re in truth])
        equal.append([(a + s, a + e) for s, e in equal_split(b - a, len(entries))])
    if not preds:
        return {"captions": 0.0}
    return {"iou": mean_frame_iou(preds, truths), "iou_equal": mean_frame_iou(equal, truths),
            "captions": float(len(preds))}
