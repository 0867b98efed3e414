"""The segmentation cache: one JSONL file per (backend, model, prompt/rules version) in the workspace.

Layout: `<workspace>/cache/segments/<backend>/<model>.<version>.<hash8>.jsonl`, where `<model>` is the model name
made safe for a file name and `<hash8>` hashes the exact (backend, model, version) triple, so two names that slug
alike never share a file. Line 1 is a header (`{"header": {...}}`); every other line is one caption:
`{"key": <sha256 of the caption, 16 hex>, "caption": ..., "subtexts": [[text, start, end], ...], "backend": ...}`
plus `fallback` and `detail` when the rules answered instead. Lines are sorted by key, so a file's bytes depend
only on its content. 30k captions are one file of a few MB, read in well under a second.

Writing (`fill`): the whole fill runs under the file's lock (`mate.cache.lock_for`), so two processes never ask
the LLM for the same captions: the second waits, then finds them cached. New answers are merged into what the
file holds and the file is rewritten atomically (temp file + rename, `mate.cache.atomic_write`) after
max(`flush_every`, a quarter of the file) new answers or `flush_seconds`, and once more at the end or on an
interruption, so a long run that dies keeps what it paid for (and 30k answers cost a few rewrites, not 60).
The model's server (`segment.base_url`) is not part of the key: one model name should mean one model.
Readers need no lock: they always see a whole file.

What is cached: every answer except transient fallbacks (timeouts, rate limits, server errors, dropped connections):
those are asked again by the next run. An invalid answer is cached with its fallback, since at temperature 0 the
model would give it again; a new PROMPT_VERSION (or RULES_VERSION) starts a new file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mate.cache import atomic_write, content_hash, lock_for

from .base import Segmentation, Segmenter, Tally, unique

log = logging.getLogger("mate.text.segment")

FORMAT = 1


def caption_key(caption: str) -> str:
    return hashlib.sha256(caption.encode("utf-8")).hexdigest()[:16]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"


def store_path(workspace: str | Path, backend: str, model: str, version: str) -> Path:
    digest = content_hash({"backend": backend, "model": model, "version": version}, 8)
    return Path(workspace) / "cache" / "segments" / _slug(backend) / f"{_slug(model)}.{_slug(version)}.{digest}.jsonl"


@dataclass
class SegmentRun:
    """The result of `fill`: a Segmentation for every distinct caption asked, and what it took."""

    segmentations: dict[str, Segmentation]
    tally: Tally
    path: Path
    backend: str
    model: str
    version: str
    seconds: float = 0.0
    requests: int | None = None  # HTTP requests sent (LLM backends only)
    extra: dict = field(default_factory=dict)


class SegmentStore:
    def __init__(self, workspace: str | Path, backend: str, model: str, version: str):
        self.backend, self.model, self.version = backend, model, version
        self.path = store_path(workspace, backend, model, version)

    @classmethod
    def for_segmenter(cls, workspace: str | Path, segmenter: Segmenter) -> "SegmentStore":
        return cls(workspace, segmenter.backend, segmenter.model, segmenter.version)

    def header(self) -> dict:
        return {"format": FORMAT, "backend": self.backend, "model": self.model, "version": self.version}

    def load(self) -> dict[str, Segmentation]:
        """Caption -> cached Segmentation (empty when there is no file yet)."""
        out: dict[str, Segmentation] = {}
        try:
            f = open(self.path, encoding="utf-8")
        except FileNotFoundError:
            return out
        with f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    if "header" in obj:
                        continue
                    seg = Segmentation.from_json(obj)
                    if obj.get("key") != caption_key(seg.caption):
                        raise ValueError("key does not match the caption")
                except (ValueError, KeyError, TypeError) as exc:  # a damaged line is recomputed, not fatal
                    log.warning("%s:%d: ignoring a damaged cache line (%s)", self.path, lineno, exc)
                    continue
                out[seg.caption] = seg
        return out

    def _write(self, entries: dict[str, Segmentation]) -> None:
        rows = sorted(((caption_key(c), s) for c, s in entries.items()), key=lambda kv: kv[0])
        with atomic_write(self.path, "w") as f:
            f.write(json.dumps({"header": self.header()}, sort_keys=True) + "\n")
            for key, seg in rows:
                f.write(json.dumps({"key": key, **seg.to_json()}, sort_keys=True, ensure_ascii=False) + "\n")

    def fill(self, captions: Iterable[str], segmenter: Segmenter | Callable[[], Segmenter], *,
             flush_every: int = 500, flush_seconds: float = 60.0) -> SegmentRun:
        """Segment every distinct caption not cached yet, store the answers, return all of them.

        `segmenter` may be a factory, called only when some caption is missing: a complete cache is read without
        building the backend (no API key needed where the cache was published, e.g. on a cluster).
        """
        start = time.perf_counter()
        wanted = unique(captions)
        tally = Tally(captions=len(wanted))
        have = self.load()  # no lock needed to find that nothing is missing
        if any(c not in have for c in wanted):
            with lock_for(self.path):
                have = self.load()
                result, seg_obj = self._fill_locked(wanted, have, segmenter, tally, flush_every, flush_seconds)
        else:
            result, seg_obj = dict(have), None
        tally.cached = tally.captions - tally.computed
        for c in wanted:
            tally.add(result[c])
        return SegmentRun({c: result[c] for c in wanted}, tally, self.path, self.backend, self.model, self.version,
                          time.perf_counter() - start, getattr(seg_obj, "requests", None))

    def _fill_locked(self, wanted, have, segmenter, tally, flush_every, flush_seconds):
        missing = [c for c in wanted if c not in have]
        result = {c: have[c] for c in wanted if c in have}
        if not missing:
            return result, None
        seg_obj = segmenter if isinstance(segmenter, Segmenter) else segmenter()
        if (seg_obj.backend, seg_obj.model, seg_obj.version) != (self.backend, self.model, self.version):
            raise ValueError(f"segmenter {seg_obj.backend}/{seg_obj.model}/{seg_obj.version} does not match the "
                             f"store {self.backend}/{self.model}/{self.version}")
        dirty = 0
        last = time.monotonic()
        try:
            for _, seg in seg_obj.segment_iter(missing):
                result[seg.caption] = seg
                tally.computed += 1
                if not seg.transient:
                    have[seg.caption] = seg
                    dirty += 1
                # Rewrites grow with the file: flushing after a quarter of it again keeps the total write linear.
                if dirty and (dirty >= max(flush_every, len(have) // 4) or time.monotonic() - last > flush_seconds):
                    self._write(have)
                    dirty, last = 0, time.monotonic()
        finally:
            if dirty:
                self._write(have)
        return result, seg_obj
