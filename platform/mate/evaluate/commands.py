"""`mate evaluator train` and `mate evaluate`: the retrieval model trained once per dataset, and T2M scores of a
folder of motions against a dataset's test captions (scoring the dataset's own test motions gives the Real row)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mate.errors import UserError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="dataset folder (default: the synthetic corpus of the profile, in the workspace)")
    p.add_argument("--workspace", default="mate-runs")
    p.add_argument("--out", help="folder for metrics.json and run.json")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="key=value")


def _setup(args, extra: dict | None = None):
    from mate.config import resolve
    from mate.data.pack import open_pack
    from mate.data.source import resolve_dataset
    from mate.text.encoder import TextEncoder

    over = list(args.overrides) + ([f"data.dir={args.data}"] if args.data else [])
    cfg = resolve(over + [f"{k}={v}" for k, v in (extra or {}).items()], profile="bench")
    data = resolve_dataset(cfg, args.workspace, progress=not args.quiet)
    pack = open_pack(data, args.workspace, progress=not args.quiet)
    encoder = TextEncoder.load(cfg["encoder.path"], cfg["encoder.family"])
    return cfg, pack, encoder


def _cmd_train(args: argparse.Namespace) -> int:
    from mate.evaluate.retrieval import train_or_load
    from mate.evaluate.retrieval.train import partition_seed
    from mate.runinfo import write_outputs

    cfg, pack, encoder = _setup(args, {"evaluator.seed": args.seed} if args.seed is not None else None)
    seed = partition_seed(cfg) if args.role == "partition" else cfg.seed_for("evaluator")
    start = time.perf_counter()
    ev = train_or_load(pack, encoder, cfg, args.workspace, seed=seed, progress=not args.quiet)
    metrics = {f"evaluator/{k}": v for k, v in ev.meta.items()
               if k.startswith(("val/", "r_precision")) or k == "epochs_done"}
    metrics = {k.replace("evaluator/val/", "val/evaluator/"): v for k, v in metrics.items()}
    from mate.evaluate.truth import load_annotations

    notes = load_annotations(pack.source)
    if notes and args.role == "partition":  # how well it partitions into the annotated segments (synthetic truth)
        from mate.evaluate.retrieval import embed_texts
        from mate.evaluate.truth import partition_cases, partition_iou
        from mate.text.cached import frozen_features

        def embed(texts):
            return embed_texts(ev.model, frozen_features(encoder, texts, args.workspace, progress=False), texts)

        from mate.evaluate.retrieval.train import training_splits

        held = "val" if "val" not in training_splits(cfg, pack) else "test"  # a split it did not train on
        found = partition_iou(ev.model, embed, pack, partition_cases(notes, pack.split(held)))
        prefix = "val/" if held == "val" else ""
        metrics.update({f"{prefix}{k}": v for k, v in found.items() if k.startswith("eval/")})
    out = Path(args.out) if args.out else Path(args.workspace) / "runs" / f"evaluator-{ev.sha[:12]}"
    write_outputs(out, metrics, cfg, role=args.role, seed=seed, evaluator_sha=ev.sha, evaluator_path=str(ev.path),
                  dataset_hash=pack.content_hash)
    r = ", ".join(f"{k.split('/')[-1]} {v:.3f}" for k, v in metrics.items() if "r_precision" in k or "iou" in k)
    print(f"{args.role} evaluator {ev.sha[:12]} ({ev.meta['epochs_done']} epochs, {time.perf_counter() - start:.1f} s):"
          f" val {r}\n  {ev.path}\n  metrics: {out / 'metrics.json'}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from mate.data.dataset import MotionDataset
    from mate.evaluate.metrics import evaluate_embeddings
    from mate.runinfo import write_outputs

    cfg, pack, encoder = _setup(args)
    folder = Path(args.motions)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder of motions (<id>.npy, T x {pack.dim} features)")
    ds = MotionDataset(pack, args.split, random_crop=False)
    items = [ds[i] for i in range(len(ds))]
    if len(items) < 32:
        raise UserError(f"{args.split} has {len(items)} items: R-Precision needs at least 32")
    gen = _read_motions(folder, ds, items, pack)
    text, real, gen, sha = _embed(cfg, args, pack, encoder, items, gen)
    metrics = evaluate_embeddings(text, real, gen, repeats=cfg["eval.repeats"], seed=cfg.seed_for("eval"))
    from mate.evaluate.truth import ceiling, load_annotations

    notes = load_annotations(pack.source)
    if notes:  # a template corpus repeats meanings: the R@1 an ideal retriever could reach
        metrics["eval/r_precision_ceiling"] = ceiling(notes, [it["text"] for it in items], seed=cfg.seed_for("eval"),
                                                      repeats=cfg["eval.repeats"])["top1"]
    if cfg["eval.scorer"] == "guo" and pack.dim == 263 and folder.resolve() == (pack.source / "new_joint_vecs"):
        _check_real_row(metrics)
    out = Path(args.out) if args.out else Path(args.workspace) / "runs" / f"evaluate-{folder.name}"
    write_outputs(out, metrics, cfg, evaluator_sha=sha, dataset_hash=pack.content_hash, motions=str(folder),
                  split=args.split, items=len(items), scorer=cfg["eval.scorer"])
    for k in ("eval/r_precision_top1", "eval/r_precision_top3", "eval/fid", "eval/mm_dist", "eval/diversity"):
        print(f"{k:24s} {metrics[k]:.4f} ± {metrics[k + '_ci95']:.4f}")
    print(f"metrics: {out / 'metrics.json'}")
    return 0


# The "Real" row of Guo et al.'s evaluator on HumanML3D's test set, as papers report it.
REAL_HUMANML3D = {"eval/r_precision_top3": (0.797, 0.02), "eval/fid": (0.002, 0.05), "eval/mm_dist": (2.974, 0.15)}


def _check_real_row(metrics: dict) -> None:
    import sys

    off = [f"{k.split('/')[1]} {metrics[k]:.3f} (papers: {ref})" for k, (ref, tol) in REAL_HUMANML3D.items()
           if abs(metrics[k] - ref) > tol]
    if off:
        print("warning: the Real row differs from the published one: " + ", ".join(off) + "; check the dataset "
              "build, the evaluator checkpoint and its meta (mean/std)", file=sys.stderr)


def _read_motions(folder: Path, ds, items: list, pack) -> list:
    """One normalised motion per item from `<folder>/<id>.npy`; every bad or missing file in one error."""
    import numpy as np

    from mate.data.errors import DatasetError
    from mate.data.layout import load_npy

    motions, problems, loaded = [], [], {}
    for i, it in enumerate(items):
        path = folder / f"{it['id']}.npy"
        if it["id"] not in loaded:
            if not path.is_file():
                problems.append(f"{path.name}: missing ({ds.split} id {it['id']} has no motion)")
                loaded[it["id"]] = None
                continue
            try:
                m = load_npy(path)
            except DatasetError as exc:
                problems.append(f"{path.name}: {exc.message}")
                loaded[it["id"]] = None
                continue
            if m.ndim != 2 or m.shape[1] != pack.dim or len(m) < 4:
                problems.append(f"{path.name}: expected (T >= 4, {pack.dim}) features, got shape {m.shape}")
                m = None
            elif not np.isfinite(m).all():
                problems.append(f"{path.name}: {int((~np.isfinite(m)).sum())} NaN/Inf values")
                m = None
            loaded[it["id"]] = m
        m = loaded[it["id"]]
        if m is None:
            continue
        if len(m) == int(pack.lengths[pack.index(it["id"])]):  # a whole clip (e.g. the Real row): crop it
            a, b = ds.crop(i)  # like the item, so real and "generated" see the same rows
            m = m[a:b]
        motions.append(pack.normalize(np.asarray(m[: ds.max_motion_len], dtype=np.float32)))
    if problems:
        shown = "\n  ".join(problems[:8]) + (f"\n  ... and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise UserError(f"{folder}: {len(problems)} motion file(s) cannot be scored:\n  {shown}")
    return motions


def _embed(cfg, args, pack, encoder, items, gen):
    """Text, real-motion and generated-motion embeddings with the configured scorer, and that scorer's sha."""
    import numpy as np

    if cfg["eval.scorer"] == "guo":
        from mate.evaluate.guo import GuoEvaluator

        if not cfg["eval.official_dir"]:
            raise UserError("eval.scorer=guo needs eval.official_dir=<folder holding t2m/ (or kit/) and glove/>")
        guo = GuoEvaluator.load(cfg["eval.official_dir"], dataset="t2m" if pack.dim == 263 else "kit")
        raw = [pack.denormalize(np.asarray(it["motion"])) for it in items]
        text = guo.text_embeddings([it["tokens"] for it in items])
        return text, guo.motion_embeddings(raw), guo.motion_embeddings(gen, mean=pack.mean, std=pack.std), guo.sha
    from mate.evaluate.retrieval import train_or_load

    ev = train_or_load(pack, encoder, cfg, args.workspace, seed=cfg.seed_for("evaluator"), progress=not args.quiet)
    if cfg["evaluator.sha"] and cfg["evaluator.sha"] != ev.sha:
        raise UserError(f"evaluator sha {ev.sha[:12]} does not match evaluator.sha={cfg['evaluator.sha'][:12]}")
    text = ev.embed_texts([it["text"] for it in items])
    return text, ev.embed_motions([it["motion"] for it in items]), ev.embed_motions(gen), ev.sha


def add_parsers(sub) -> None:
    ev = sub.add_parser("evaluator", help="the frozen text-motion retrieval model")
    esub = ev.add_subparsers(dest="evaluator_command", metavar="SUBCOMMAND")
    p = esub.add_parser("train", help="train (or load) the retrieval model of a dataset")
    _common(p)
    p.add_argument("--seed", type=int, help="evaluator.seed")
    p.add_argument("--role", choices=("scoring", "partition"), default="scoring",
                   help="scoring (evaluator.seed) or the partition model (align.partition_seed)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="score a folder of motions (<id>.npy) against a dataset's test captions")
    _common(p)
    p.add_argument("--motions", required=True, help="folder of <id>.npy feature files (the dataset's "
                                                    "new_joint_vecs gives the Real row)")
    p.add_argument("--split", default="test", choices=("test", "val", "test_comp", "val_comp"))
    p.set_defaults(func=_cmd_evaluate)
