"""`mate segment --data DIR [--backend rules|openai|truth] [--workspace W] [--out DIR] [--storage URI] [key=value ...]`.

Fills the workspace's segmentation cache for every caption of the dataset, writes `<out>/metrics.json`
(`segment/captions`, `segment/fallbacks`, and `segment/count_agreement` / `segment/word_agreement` where the dataset
has ground truth) and `<out>/run.json` (the resolved config, which names the key's environment variable but never
holds the key), and prints how many captions fell back to the rules and why. With `--storage`, the cache file is
published where a cluster's sweep finds it (`<storage>/cache/segments/…`), so LLM segmentation runs where the key
is.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("segment", help="split every caption of a dataset into ordered sub-texts (cached)")
    p.add_argument("--data", required=True, help="dataset folder (HumanML3D layout)")
    p.add_argument("--backend", help="rules, openai or truth (default: segment.backend, i.e. rules)")
    p.add_argument("--workspace", default="mate-runs", help="where the cache lives (default ./mate-runs)")
    p.add_argument("--out", help="folder for metrics.json and run.json (default <workspace>/segment/<data>-<backend>)")
    p.add_argument("--storage", help="also publish the cache there (the sweep's --storage: a cluster then "
                                      "localizes with these answers and never needs the API key)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (segment.model=..., ...)")
    p.set_defaults(func=run)
    return p


def _fmt_reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


def run(args: argparse.Namespace) -> int:
    from mate.config import resolve
    from mate.errors import UserError as UsageError
    from mate.runinfo import write_outputs

    from . import dataset_captions, segment_captions
    from .agreement import agreement, summary_line
    from .base import SegmentError
    from .truth import TruthError, has_truth, read_truth

    data = Path(args.data)
    if not data.is_dir():
        raise UsageError(f"{data}: no such dataset folder")
    if not (data / "texts").is_dir():
        raise UsageError(f"{data}: no texts/ folder (expected the HumanML3D layout: texts/<id>.txt)")
    overrides = list(args.overrides)
    if args.backend is not None:
        overrides.append(f"segment.backend={args.backend}")
    config = resolve(overrides)
    backend = config["segment.backend"]
    workspace = Path(args.workspace)
    out = Path(args.out) if args.out else workspace / "segment" / f"{data.resolve().name}-{backend}"

    captions = dataset_captions(data)
    if not captions:
        raise UsageError(f"{data / 'texts'}: no captions")
    start = time.perf_counter()
    try:
        result = segment_captions(captions, config, workspace, data, progress=not args.quiet)
    except SegmentError as exc:
        raise UsageError(str(exc)) from None
    seconds = time.perf_counter() - start
    tally = result.tally

    metrics: dict[str, float] = {"segment/captions": tally.captions, "segment/fallbacks": tally.num_fallbacks}
    agree_line = None
    if has_truth(data):
        try:
            _, refs = read_truth(data)
        except TruthError as exc:
            raise UsageError(str(exc)) from None
        refs = [r for r in refs if r.caption in result.segmentations]
        if refs:
            metrics.update(agreement(result.segmentations, refs))
            agree_line = summary_line(metrics, refs)

    write_outputs(out, metrics, config.section("segment"), data=str(data.resolve()), backend=backend,
                  model=result.model, version=result.version, cache=str(result.path), requests=result.requests,
                  captions=tally.captions, cached=tally.cached, computed=tally.computed,
                  fallbacks=dict(sorted(tally.fallbacks.items())), seconds=round(seconds, 3))

    print(f"segmented {tally.captions} captions with {backend} ({result.model}, {result.version}): "
          f"{tally.cached} from the cache, {tally.computed} computed in {seconds:.1f} s")
    if tally.num_fallbacks:
        print(f"{tally.num_fallbacks} fell back to the rules: {_fmt_reasons(tally.fallbacks)}")
    else:
        print("0 fell back to the rules")
    if agree_line:
        print(agree_line)
    print(f"cache: {result.path}")
    if args.storage:
        from mate.storage import Storage

        store = Storage(args.storage)
        store.check_writable()
        rel = Path(result.path).resolve().relative_to(workspace.resolve()).as_posix()
        store.upload(result.path, rel)
        print(f"published: {store.url(rel)}")
    print(f"wrote {out / 'metrics.json'}")
    return 0
