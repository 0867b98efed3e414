"""Caption segmentation (docs/method.md §3): N temporally ordered sub-texts per caption, one sub-action each.

Backends behind one interface (`Segmenter.segment(captions) -> list[Segmentation]`):
- `rules`  (`RuleSegmenter`): offline and deterministic;
- `openai` (`OpenAISegmenter`): an LLM behind an OpenAI-compatible API, validated, falling back to the rules;
- `truth`  (`GroundTruthSegmenter`): the synthetic corpus's annotated sub-texts.
Answers are cached in the workspace per (backend, model, prompt version, caption) (`store.py`), so a dataset is
segmented once, never per trial. `segment_dataset` is what the prepare stage and the `mate segment` command call.
"""

from __future__ import annotations

from pathlib import Path

from .base import Segmentation, Segmenter, SegmentError, SubText, Tally, validate
from .rules import RULES_VERSION, RuleSegmenter
from .store import SegmentRun, SegmentStore, store_path

__all__ = ["Segmentation", "SegmentError", "Segmenter", "SubText", "Tally", "validate", "RULES_VERSION",
           "RuleSegmenter", "SegmentRun", "SegmentStore", "store_path", "make_segmenter", "identity",
           "segment_captions", "dataset_captions", "segment_dataset"]


def make_segmenter(config, data_dir: str | Path | None = None, *, progress: bool = True) -> Segmenter:
    """The backend `segment.backend` names. `truth` needs the dataset; `openai` the key in `segment.api_key_env`."""
    from mate.config import ConfigError

    backend = config["segment.backend"]
    if backend == "rules":
        return RuleSegmenter()
    if backend == "openai":
        from .llm import OpenAISegmenter

        return OpenAISegmenter.from_config(config, progress=progress)
    if backend == "truth":
        from .truth import GroundTruthSegmenter, TruthError

        if data_dir is None:
            raise ConfigError("segment.backend=truth needs a dataset (its annotations.jsonl)")
        try:
            return GroundTruthSegmenter(data_dir)
        except TruthError as exc:
            raise ConfigError(f"segment.backend=truth: {exc}") from None
    raise ConfigError(f"config key 'segment.backend' must be one of rules, openai, truth; got {backend!r}")


def identity(config, data_dir: str | Path | None = None) -> tuple[str, str, str]:
    """(backend, model, version): what keys the cache, known without building the backend (so without the key)."""
    backend = config["segment.backend"]
    if backend == "openai":
        from .llm import PROMPT_VERSION

        return backend, config["segment.model"], PROMPT_VERSION
    seg = make_segmenter(config, data_dir, progress=False)  # rules and truth are cheap and need no secret
    return seg.backend, seg.model, seg.version


def segment_captions(captions, config, workspace: str | Path, data_dir: str | Path | None = None, *,
                     progress: bool = True) -> SegmentRun:
    """Segment (or read from the cache) every distinct caption. The backend is built only when some caption is
    not cached, so a published cache of LLM answers is read where no API key is set."""
    store = SegmentStore(workspace, *identity(config, data_dir))
    return store.fill(captions, lambda: make_segmenter(config, data_dir, progress=progress))


def dataset_captions(data_dir: str | Path) -> list[str]:
    """Every distinct caption text of a dataset (`<data>/texts/*.txt`), in file-name order."""
    from mate.data.captions import read_captions

    texts = Path(data_dir) / "texts"
    out: dict[str, None] = {}
    for path in sorted(texts.glob("*.txt")):
        for cap in read_captions(path):
            out.setdefault(cap.text, None)
    return list(out)


def segment_dataset(data_dir: str | Path, config, workspace: str | Path, *, progress: bool = True) -> SegmentRun:
    """Segment every caption of a dataset once (cached in the workspace): caption text -> Segmentation."""
    return segment_captions(dataset_captions(data_dir), config, workspace, data_dir, progress=progress)
