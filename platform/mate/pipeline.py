"""One trial: config -> data -> align (cached) -> text features -> generator -> evaluation -> artifacts.

`run_trial(config, report, resume_dir)` is the only function a sweep runs: `report(metrics, checkpoint_dir)` is
`tune.report` under Ray and a logger elsewhere, and `resume_dir` is the checkpoint a retry or a restore hands back.
Stages that other trials can share (the dataset, the evaluators, the alignment, the text features) are cached in the
workspace by the hash of exactly what they depend on, so trials that differ only in `gen.*` keys reuse the alignment.
Nothing here imports Ray, MLflow or Optuna. Stages, reports and resume: docs/architecture.md §4.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mate.cache import content_hash, get_or_build, write_json
from mate.config import TRIAL_SCORER, Config, resolve
from mate.errors import UserError

Report = Callable[[dict, "Path | None"], None]
HISTORY = "history.jsonl"  # one line per generator epoch: what `report` was given
CHECKPOINT_ALIGN = "align"  # the aligned rows inside a trial checkpoint, so a resume on another machine skips them
CHECKPOINT_SPENT = "spent.json"  # the trial's seconds up to this checkpoint: a resumed trial's cost counts every try
ALIGN_STAGE_VERSION = 2  # 2: trained on mate.loop (per-epoch re-seeding)
# keys that never change what the alignment learns (how the LLM is reached, how a crop is drawn for the generator,
# which scoring evaluator a sweep pins: the alignment reads the partition model, keyed by align.partition_seed)
_ALIGN_IGNORES = ("segment.concurrency", "segment.max_retries", "segment.timeout", "segment.api_key_env",
                  "evaluator.seed", "evaluator.sha", "evaluator.val_sha", "data.seed", "data.random_crop", "data.kind")


class EvaluatorMismatch(UserError):
    """`evaluator.sha` names another scoring evaluator than the one this dataset and config give."""


class TokenizerShaMismatch(UserError):
    """`tokenizer.sha` names another motion tokenizer than the one this dataset and config give."""


@dataclass
class Trial:
    """What the stages hand on: the resolved config, the dataset, the models and what was measured so far."""

    cfg: Config
    workspace: Path
    out: Path
    progress: bool
    log: Callable[[str], None]
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def align_key(cfg: Config, dataset_hash: str, encoder_hash: str) -> str:
    from mate.evaluate.retrieval.train import partition_seed

    keys = {k: v for k, v in cfg.items() if k.split(".")[0] in ("align", "encoder", "segment", "evaluator", "data")
            and k not in _ALIGN_IGNORES and k != "data.dir"}
    return content_hash({"keys": keys, "align_seed": cfg.seed_for("align"), "partition_seed": partition_seed(cfg),
                         "dataset": dataset_hash, "encoder": encoder_hash, "version": ALIGN_STAGE_VERSION})


def align_stage(t: Trial, data_dir: Path, pack, encoder, resume_dir: str | Path | None = None) -> Path | None:
    """The aligned rows (a cached stage folder), or None for the baseline (`align.enabled=false`).

    A trial resumed from a checkpoint takes the rows the checkpoint carries (`CHECKPOINT_ALIGN`, same key) instead
    of training them again: a restored sweep often puts a trial on another node, whose cache never saw them."""
    if not t.cfg["align.enabled"]:
        return None
    from mate.align.run import run_align

    folder = t.workspace / "cache" / "align" / align_key(t.cfg, pack.content_hash, encoder.folder_hash)
    carried = Path(resume_dir) / CHECKPOINT_ALIGN if resume_dir else None
    if carried is not None and not ((carried / "metrics.json").is_file()
                                    and (carried / "key").is_file() and (carried / "key").read_text() == folder.name):
        carried = None
    built = []

    def build(tmp: Path) -> None:
        if carried is not None:
            t.log(f"align: the rows from the checkpoint ({folder.name})")
            shutil.copytree(carried, tmp, ignore=shutil.ignore_patterns("key"))
            return
        t.log(f"align: training the rows ({folder.name})")
        metrics = run_align(t.cfg, data_dir, t.workspace, tmp, progress=t.progress, log=t.log)
        shutil.rmtree(tmp / "checkpoint", ignore_errors=True)  # the stage is whole or absent: no resume inside it
        write_json(tmp / "metrics.json", metrics)
        built.append(True)

    get_or_build(folder, build, exists=lambda p: (p / "metrics.json").is_file())
    if not built:
        t.log(f"align: reusing {folder}")
    t.metrics.update(json.loads((folder / "metrics.json").read_text()))
    t.info["align_dir"] = str(folder)
    return folder


def tokenizer_stage(t: Trial, pack):
    """The shared motion tokenizer of `gen.kind=masked` (trained once per dataset and `gen.vq_*` keys), else None."""
    if t.cfg["gen.kind"] != "masked":
        return None
    from mate.generate.tokenizer import train_or_load

    tok = train_or_load(pack, t.cfg, t.workspace, progress=t.progress, log=t.log)
    if t.cfg["tokenizer.sha"] and t.cfg["tokenizer.sha"] != tok.sha:
        raise TokenizerShaMismatch(f"the motion tokenizer is {tok.sha[:12]} ({tok.path}), but tokenizer.sha="
                                   f"{t.cfg['tokenizer.sha'][:12]}: this trial would not be comparable with its sweep")
    t.info["tokenizer_sha"] = tok.sha
    return tok


def carry_rows(rows_dir: Path, checkpoint: Path) -> None:
    """Put the aligned rows (small: the motion words' rows) into the checkpoint folder, with their cache key."""
    dest = checkpoint / CHECKPOINT_ALIGN
    if not (dest / "key").is_file() or (dest / "key").read_text() != rows_dir.name:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(rows_dir, dest, ignore=shutil.ignore_patterns("plots"))
        (dest / "key").write_text(rows_dir.name)


def _sampler(gen, pack, cfg: Mapping[str, Any]):
    from mate.generate.cleanup import postprocess

    post = postprocess(cfg)

    def sample(texts, lengths, seed):  # each generator's own evaluation steps (eval.sampler_steps, gen.iterations)
        return [post(pack.denormalize(s[0])) for s in gen.sample(texts, lengths, n=1, seed=seed)]

    return sample


def _check_pinned(cfg: Config, key: str, sha: str, what: str, whose: str) -> None:
    """A sweep pins each scorer's sha (`key`): a trial that would score with another one stops before training."""
    if cfg[key] and cfg[key] != sha:
        raise EvaluatorMismatch(f"{what} is {sha[:12]}, but {key}={cfg[key][:12]}: {whose} would not be comparable "
                                "with its sweep")


def run_trial(config: Mapping[str, Any], report: Report | None = None, resume_dir: str | Path | None = None, *,
              workspace: str | Path = "mate-runs", out: str | Path | None = None, threads: int | None = None,
              progress: bool = False, log: Callable[[str], None] = print,
              checkpoint_dir: str | Path | None = None) -> dict[str, float]:
    """Run one trial and return its final metrics (also in `<out>/metrics.json`). Its checkpoint (weights and
    optimizer state, the folder `report` is handed) goes to `checkpoint_dir`, default `<out>/checkpoint`; a sweep
    keeps it out of the synced artifacts, so only Tune's checkpoint carries it."""
    import torch

    from mate.data.dataset import MotionDataset
    from mate.data.pack import open_pack
    from mate.data.source import resolve_dataset
    from mate.evaluate.generated import score_sampler
    from mate.evaluate.retrieval import train_or_load, val_scorer
    from mate.evaluate.retrieval.train import all_captions
    from mate.evaluate.truth import load_annotations
    from mate.generate.base import make_generator
    from mate.generate.text import EncoderFeatures
    from mate.runinfo import write_outputs
    from mate.text.artifact import AlignedRows
    from mate.text.cached import frozen_features
    from mate.text.encoder import TextEncoder

    start = time.perf_counter()
    earlier = _seconds_spent(resume_dir)  # the earlier tries' seconds, up to the checkpoint this one resumes
    cfg = config if isinstance(config, Config) else resolve(dict(config))
    if cfg["eval.scorer"] != "ours":
        raise UserError(f"eval.scorer={cfg['eval.scorer']}: {TRIAL_SCORER}")
    if threads:
        torch.set_num_threads(threads)
    workspace = Path(workspace)
    out = Path(out) if out else workspace / "runs" / f"trial-{content_hash(cfg.to_dict())}"
    out.mkdir(parents=True, exist_ok=True)
    t = Trial(cfg, workspace, out, progress, log)
    report = report or (lambda metrics, checkpoint=None: None)

    # 1. prepare: the dataset, the base encoder and the frozen scoring evaluator (built here only outside a sweep)
    data_dir = resolve_dataset(cfg, workspace, progress=progress)
    pack = open_pack(data_dir, workspace, progress=progress)
    base = TextEncoder.load(cfg["encoder.path"], cfg["encoder.family"])
    evaluator = train_or_load(pack, base, cfg, workspace, seed=cfg.seed_for("evaluator"), progress=progress)
    _check_pinned(cfg, "evaluator.sha", evaluator.sha, "the scoring evaluator", "this trial")
    val_evaluator = val_scorer(pack, base, cfg, workspace, scorer=evaluator, progress=progress)  # never saw val
    _check_pinned(cfg, "evaluator.val_sha", val_evaluator.sha, "the val scorer", "this trial's objectives")
    tokenizer = tokenizer_stage(t, pack)
    t.metrics["cost/prepare_seconds"] = time.perf_counter() - start

    # 2. align (cached), 3. the encoder the generator reads, its features computed once per (rows, dataset)
    t0 = time.perf_counter()
    rows_dir = align_stage(t, data_dir, pack, base, resume_dir)
    t.metrics["cost/align_seconds"] = time.perf_counter() - t0
    encoder = AlignedRows.load(rows_dir).apply_to(base) if rows_dir else base
    text = EncoderFeatures(encoder, frozen_features(encoder, all_captions(pack), workspace, progress=progress))

    # 4. the generator, with the val objectives after each epoch (the align metrics ride on the first report)
    t0 = time.perf_counter()
    notes = load_annotations(data_dir)
    gen = make_generator(cfg, pack.dim, (text.sentence_dim, text.token_dim), tokenizer=tokenizer)
    train = MotionDataset.from_config(pack, "train", cfg)
    eval_seed = cfg.seed_for("eval")
    ckpt = Path(checkpoint_dir) if checkpoint_dir else out / "checkpoint"
    if rows_dir:
        carry_rows(rows_dir, ckpt)

    def score(split: str, items: int, pairs: int, repeats: int, lexicon: int) -> dict:
        scorer, test = (val_evaluator, False) if split == "val" else (evaluator, True)
        return score_sampler(_sampler(gen, pack, cfg), pack, scorer, split, items=items, pairs=pairs,
                             lexicon=lexicon, repeats=repeats, seed=eval_seed, notes=notes,
                             regenerate=test and cfg["eval.regenerate"], mm_texts=cfg["eval.mm_texts"] if test else 0,
                             mm_samples=cfg["eval.mm_samples"])

    def score_val(metrics: dict) -> None:
        val = score("val", cfg["eval.val_items"], cfg["eval.val_items"], 1, cfg["eval.val_items"])
        metrics.update({k: v + cfg["debug.val_offset"] for k, v in val.items()})
        if metrics["gen/epoch"] == 1:
            metrics.update({k: v for k, v in t.metrics.items() if k not in metrics})  # the align stage's figures
        _append_history(out / HISTORY, metrics)

    loop = gen.trainer(train, text, checkpoint_dir=ckpt, progress=progress)
    last: dict = {}
    if done := loop.resume(resume_dir):  # killed after an epoch's checkpoint but before its val line: score again
        last = {m["gen/epoch"]: m for m in read_history(out)}.get(done[-1]["gen/epoch"], {})
        if not last:
            last = dict(done[-1])
            score_val(last)
    for metrics in loop.run():  # each epoch: its val objectives, then its report (the last one waits for test)
        score_val(metrics)
        last = metrics
        if not loop.finished:
            write_json(ckpt / CHECKPOINT_SPENT, {"seconds": earlier + time.perf_counter() - start})
            report(dict(metrics), ckpt)
    t.metrics.update(last)
    t.metrics["cost/gen_seconds"] = time.perf_counter() - t0

    # 5. test scoring and artifacts; the last epoch's report carries them, so a scheduler that stops the trial at
    # that report (ASHA at max_t) loses nothing
    t1 = time.perf_counter()
    t.metrics.update(score("test", cfg["eval.samples"], cfg["eval.pairs"], cfg["eval.repeats"],
                           cfg["eval.lexicon_pairs"]))
    t.metrics["cost/eval_seconds"] = time.perf_counter() - t1
    t.metrics["cost/trial_seconds"] = earlier + time.perf_counter() - start  # every try; the stages' are this try's
    gen.save(out / "generator.pt")
    if rows_dir:
        shutil.copy2(rows_dir / "aligned_rows.safetensors", out / "aligned_rows.safetensors")
        if (rows_dir / "plots").is_dir():
            shutil.copytree(rows_dir / "plots", out / "plots", dirs_exist_ok=True)
    write_outputs(out, t.metrics, cfg.to_dict(), evaluator_sha=evaluator.sha, val_evaluator_sha=val_evaluator.sha,
                  dataset_hash=pack.content_hash,
                  data_dir=str(data_dir), workspace=str(workspace), **t.info)
    report(dict(t.metrics), ckpt)
    return t.metrics


def _seconds_spent(resume_dir: str | Path | None) -> float:
    """What the earlier tries of a resumed trial spent up to its checkpoint (0 for a fresh trial, or a checkpoint
    written before this was recorded); the seconds between that checkpoint and a kill are lost with the try."""
    path = Path(resume_dir) / CHECKPOINT_SPENT if resume_dir else None
    try:
        return float(json.loads(path.read_text())["seconds"]) if path and path.is_file() else 0.0
    except (ValueError, KeyError, TypeError):
        return 0.0


def read_history(folder: str | Path) -> list[dict]:
    """The per-epoch metrics a run folder holds (`history.jsonl`), oldest first; empty before the first epoch."""
    path = Path(folder) / HISTORY
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []


def _append_history(path: Path, metrics: dict) -> None:
    """The learning curve beside the run (MLflow has it too). A trial resumed from an earlier checkpoint repeats
    epochs: their old lines are replaced, so the file holds each epoch once."""
    epoch = metrics["gen/epoch"]
    lines = path.read_text().splitlines() if path.is_file() else []
    kept = [x for x in lines if x.strip() and json.loads(x).get("gen/epoch", 0) < epoch]
    path.write_text("".join(x + "\n" for x in kept) + json.dumps(metrics) + "\n")


@dataclass
class TrainedRun:
    """A finished run folder brought back: its config, dataset, the encoder it conditioned on and the generator."""

    cfg: Config
    pack: Any
    generator: Any
    folder: Path

    def sample(self, texts, lengths, n: int = 1, seed: int = 0, steps: int | None = None) -> list[list]:
        """Raw (denormalised) features, out[i][k] for text i and sample k."""
        from mate.generate.cleanup import postprocess

        got = self.generator.sample(texts, lengths, n=n, seed=seed, steps=steps)
        post = postprocess(self.cfg)
        return [[post(self.pack.denormalize(m)) for m in per_text] for per_text in got]


def load_run(folder: str | Path, workspace: str | Path | None = None) -> TrainedRun:
    """A run written by `run_trial` (its generator.pt, aligned rows and run.json)."""
    from mate.data.pack import open_pack
    from mate.generate.base import Generator
    from mate.generate.text import EncoderFeatures
    from mate.text.artifact import AlignedRows
    from mate.text.encoder import TextEncoder

    folder = Path(folder)
    if not (folder / "generator.pt").is_file() or not (folder / "run.json").is_file():
        raise UserError(f"{folder}: not a finished run (it needs generator.pt and run.json; a run still training "
                        "has only checkpoint/)")
    info = json.loads((folder / "run.json").read_text())
    cfg = resolve({}, base=info["config"], where=f"{folder / 'run.json'}: ")
    pack = open_pack(info["data_dir"], workspace or info.get("workspace", "mate-runs"), progress=False)
    encoder = TextEncoder.load(cfg["encoder.path"], cfg["encoder.family"])
    if (folder / "aligned_rows.safetensors").is_file():
        encoder = AlignedRows.load(folder / "aligned_rows.safetensors").apply_to(encoder)
    generator = Generator.load(folder / "generator.pt", EncoderFeatures(encoder))
    return TrainedRun(cfg, pack, generator, folder)
