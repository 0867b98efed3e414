"""The segmentation cache file: one JSONL per (backend, model, version), sorted by caption hash, keeping what an
interrupted run computed, and skipping damaged lines."""

from __future__ import annotations

import json

import pytest

from mate.text.segment import RuleSegmenter, SegmentStore
from mate.text.segment.store import caption_key

CAPTIONS = [f"a person walks forward {i} steps and then turns around" for i in range(10)]


class Dies(RuleSegmenter):
    """The rule segmenter, interrupted after `n` answers (as Ctrl-C would)."""

    def __init__(self, n: int):
        self.n = n

    def segment_iter(self, captions):
        for i, c in enumerate(captions):
            if i == self.n:
                raise KeyboardInterrupt
            yield i, self.one(c)


def test_layout_and_content(tmp_path):
    store = SegmentStore(tmp_path, "openai", "org/model:v1", "seg-v1")
    assert store.path.parent == tmp_path / "cache" / "segments" / "openai"
    assert store.path.name.startswith("org_model_v1.seg-v1.") and store.path.suffix == ".jsonl"
    assert SegmentStore(tmp_path, "openai", "org_model_v1", "seg-v1").path != store.path  # no slug collision
    rules = SegmentStore(tmp_path, "rules", "rules", "rules-1")
    run = rules.fill(CAPTIONS + CAPTIONS[:3], RuleSegmenter())
    assert run.tally.captions == 10 and run.tally.computed == 10
    lines = [json.loads(x) for x in rules.path.read_text().splitlines()]
    assert lines[0] == {"header": {"backend": "rules", "format": 1, "model": "rules", "version": "rules-1"}}
    keys = [x["key"] for x in lines[1:]]
    assert keys == sorted(keys) and set(keys) == {caption_key(c) for c in CAPTIONS}
    assert rules.load() == run.segmentations


def test_an_interrupted_run_keeps_its_answers(tmp_path):
    store = SegmentStore(tmp_path, "rules", "rules", "rules-1")
    with pytest.raises(KeyboardInterrupt):
        store.fill(CAPTIONS, Dies(4), flush_every=1)
    assert len(store.load()) == 4
    run = store.fill(CAPTIONS, RuleSegmenter())
    assert run.tally.cached == 4 and run.tally.computed == 6


def test_a_damaged_line_is_recomputed(tmp_path):
    store = SegmentStore(tmp_path, "rules", "rules", "rules-1")
    store.fill(CAPTIONS, RuleSegmenter())
    lines = store.path.read_text().splitlines()
    lines[3] = lines[3][: len(lines[3]) // 2]  # a torn line (e.g. copied half-way)
    store.path.write_text("\n".join(lines) + "\n")
    run = store.fill(CAPTIONS, RuleSegmenter())
    assert run.tally.cached == 9 and run.tally.computed == 1 and len(store.load()) == 10
