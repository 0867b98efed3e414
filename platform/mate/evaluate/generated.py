"""Scoring a text-to-motion sampler on a split: `eval/*` with the frozen scoring evaluator, `probe/*` with the
physical probes (docs/architecture.md §7). The same function gives the per-epoch `val/…` objectives (a fixed small val
subset) and the final test figures, so selection and reporting measure exactly the same thing.

A sampler is `sample(texts, lengths, seed) -> [(T_i, D) raw features]` (`mate.evaluate.probes.Sampler`): what a user
would save with `mate sample`, in the dataset's units. Nothing here knows which generator is behind it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mate.config import derive_seed
from mate.data.dataset import MotionDataset
from mate.errors import UserError

from . import pairs as lexicon_pairs
from . import probes
from .bootstrap import ci95
from .metrics import evaluate_embeddings
from .truth import load_pairs

MIN_ITEMS = 32  # R-Precision ranks among 32
# which items and pairs are scored never depends on the trial's seed: every trial of a sweep (a search gives each its
# own seed) is scored on the same subset, so configs are compared on the same items; the seed only drives sampling
ITEMS_SEED = 0


def fixed_items(pack, split: str, n: int = 0, seed: int = 0) -> list[dict]:
    """The split's (clip, caption) items with centred crops; a seeded subset of n (0: all), in dataset order, so
    every epoch and every trial of a sweep scores the same items."""
    ds = MotionDataset(pack, split, random_crop=False)
    if len(ds) < MIN_ITEMS:
        raise UserError(f"the {split} split has {len(ds)} items: scoring needs at least {MIN_ITEMS}")
    keep = np.arange(len(ds))
    if 0 < n < len(ds):
        keep = np.sort(np.random.default_rng([seed, 104_729]).permutation(len(ds))[: max(n, MIN_ITEMS)])
    return [ds[int(i)] for i in keep]


def sample_in_chunks(sample, texts: Sequence[str], lengths: Sequence[int], seed: int, batch: int) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for k, s in enumerate(range(0, len(texts), batch)):
        got = list(sample(list(texts[s : s + batch]), list(lengths[s : s + batch]), seed + k))
        if len(got) != len(texts[s : s + batch]):
            raise ValueError(f"the sampler returned {len(got)} motions for {len(texts[s : s + batch])} texts")
        out.extend(np.asarray(g, dtype=np.float32) for g in got)
    return out


def _probe_accuracy(items: list[dict], motions: list[np.ndarray], notes: dict | None) -> dict[str, float]:
    """Attribute probes on the items whose caption describes the whole clip (spans shifted by the crop)."""
    if not notes:
        return {}
    feats, anns = [], []
    for it, m in zip(items, motions):
        ann = notes.get(it["id"])
        if ann is None:
            continue
        a, b = it["start"], it["start"] + it["length"]
        segs = [{**s, "span": [max(s["span"][0], a) - a, min(s["span"][1], b) - a]} for s in ann["segments"]
                if s["span"][1] > a and s["span"][0] < b]
        feats.append(m)
        anns.append({"id": it["id"], "segments": segs})
    return probes.probe_accuracy(feats, anns) if feats else {}


def _generate(sample, pack, texts: Sequence[str], lengths: Sequence[int], seed: int, batch: int) -> list[np.ndarray]:
    raw = sample_in_chunks(sample, texts, lengths, seed, batch)
    for m, n in zip(raw, lengths):
        if m.shape != (n, pack.dim):
            raise ValueError(f"the sampler returned a motion of shape {m.shape}, expected ({n}, {pack.dim})")
    finite = [bool(np.isfinite(m).all()) for m in raw]
    if not all(finite):
        raise FloatingPointError(f"{finite.count(False)} of {len(raw)} generated motions hold NaN/Inf")
    return raw


def _multimodality_embeddings(sample, pack, evaluator, chosen: list[dict], texts: int, samples: int, seed: int,
                              batch: int) -> np.ndarray:
    """(texts, samples, D): `samples` generations of each of the first `texts` items (Guo et al.: 100 x 30)."""
    some = chosen[:texts]
    out = []
    for j in range(samples):
        raw = _generate(sample, pack, [it["text"] for it in some], [int(it["length"]) for it in some],
                        derive_seed(seed, f"mm:{j}"), batch)
        out.append(evaluator.embed_motions([pack.normalize(m) for m in raw]))
    return np.stack(out, axis=1)


def score_sampler(sample, pack, evaluator, split: str, *, items: int = 0, pairs: int = 0, repeats: int = 20,
                  seed: int = 0, batch: int = 64, notes: dict | None = None, lexicon: int = 0,
                  regenerate: bool = False, mm_texts: int = 0, mm_samples: int = 30) -> dict[str, float]:
    """eval/* (+ _ci95), probe/word_pair_acc* (a corpus with minimal pairs), probe/pair_* (any dataset: `lexicon`
    pairs from the split's captions, 0 = all), probe/*_acc, probe/foot_skate, probe/jitter on `split`; names carry
    `val/` in front when split is val (docs/architecture.md §7).

    `regenerate` is the papers' protocol: each of the `repeats` repetitions generates the items anew and the
    interval is over those generations; otherwise one generation is reshuffled `repeats` times (cheaper, and its
    interval covers the batching only). `mm_texts` > 0 adds eval/multimodality over `mm_samples` generations of
    that many items."""
    chosen = fixed_items(pack, split, items, ITEMS_SEED)
    texts, lengths = [it["text"] for it in chosen], [int(it["length"]) for it in chosen]
    raw = _generate(sample, pack, texts, lengths, seed, batch)
    gen = evaluator.embed_motions([pack.normalize(m) for m in raw])
    real = evaluator.embed_motions([it["motion"] for it in chosen])
    text = evaluator.embed_texts(texts)
    n = len(chosen) // MIN_ITEMS * MIN_ITEMS  # R-Precision batches are whole
    mm = (_multimodality_embeddings(sample, pack, evaluator, chosen, min(mm_texts, len(chosen)), mm_samples, seed,
                                    batch) if mm_texts > 0 else None)
    if regenerate and repeats > 1:
        rows = [evaluate_embeddings(text[:n], real[:n], gen[:n], repeats=1, seed=seed, bootstrap=False, mm_emb=mm)]
        for r in range(1, repeats):
            again = _generate(sample, pack, texts, lengths, derive_seed(seed, f"repeat:{r}"), batch)
            emb = evaluator.embed_motions([pack.normalize(m) for m in again])
            rows.append(evaluate_embeddings(text[:n], real[:n], emb[:n], repeats=1, seed=seed + r, bootstrap=False,
                                            mm_emb=mm))
        metrics = {}
        for name in (k for k in rows[0] if not k.endswith("_ci95")):
            values = [row[name] for row in rows]
            metrics[name], metrics[f"{name}_ci95"] = float(np.mean(values)), float(ci95(values))
    else:
        metrics = evaluate_embeddings(text[:n], real[:n], gen[:n], repeats=repeats, seed=seed, mm_emb=mm)
    metrics.update(probes.plausibility(raw))
    metrics.update(_probe_accuracy(chosen, raw, notes))
    found = load_pairs(pack.source, split)
    if found:
        metrics.update(probes.word_pair_accuracy(found, sample, seed, n=pairs or None, batch_size=batch,
                                                 subset_seed=ITEMS_SEED))
    every = chosen if items == 0 else fixed_items(pack, split, 0, ITEMS_SEED)  # pairs come from every caption
    metrics.update(lexicon_pairs.pair_accuracy(every, sample, seed, n=lexicon or None, batch_size=batch,
                                               subset_seed=ITEMS_SEED))
    prefix = "val/" if split.startswith("val") else ""
    return {prefix + k: float(v) for k, v in metrics.items()}


# ------------------------------------------------------------------------------------------ baseline samplers
# What a generator must beat (issue 12): motion that ignores the text. Both return raw features of the asked length.


def mean_motion_sampler(pack):
    """Every motion the dataset's mean pose and velocity: scores 0 on the minimal pairs by construction."""
    mean = pack.mean.astype(np.float32)

    def sample(texts, lengths, seed):
        return [np.repeat(mean[None], int(n), 0) for n in lengths]

    return sample


def random_clip_sampler(pack, split: str = "train", seed: int = 0):
    """A random real clip of the split per prompt (tiled when shorter than asked): real motion, wrong meaning."""
    clips = pack.split_indices(split)

    def sample(texts, lengths, call_seed):
        rng = np.random.default_rng([seed, call_seed])
        out = []
        for n in lengths:
            m = pack.motion(int(clips[rng.integers(len(clips))]))
            out.append(np.resize(m, (int(n), m.shape[1])) if len(m) < n else m[: int(n)])
        return out

    return sample
