"""`mate train` (one trial without Ray, optionally logged to MLflow) and `mate sample` (motions from a trained run).

A `mate train` killed mid-way and started again with the same --out continues from the last generator checkpoint;
the same --out with a different config is refused, so two runs never mix in one folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mate.errors import UserError

CONFIG_FILE = "config.json"
SHOWN = ("eval/fid", "eval/r_precision_top3", "probe/word_pair_acc", "probe/word_pair_acc_comp", "probe/foot_skate",
         "cost/trial_seconds")


def _saved_config(path: Path) -> dict:
    """The config of a run's run.json / config.json, or of a YAML file (best.yaml keeps it under `config:`)."""
    if path.suffix == ".json":
        raw = json.loads(path.read_text())
    else:
        import yaml

        raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of config keys")
    return dict(raw.get("config", raw))


def _resolve(args):
    """Defaults < profile < the saved config (--config) < key=value words and --data."""
    from mate.config import parse_overrides, resolve

    saved, where = {}, ""
    if args.config:
        path = Path(args.config)
        path = path / "run.json" if path.is_dir() else path
        if not path.is_file():
            raise UserError(f"--config {args.config}: no such file")
        saved, where = _saved_config(path), str(path)
    over = parse_overrides(args.overrides)
    if args.data:
        over["data.dir"] = args.data
    return resolve(over, profile="bench", base=saved, where=f"{where}: " if where else "")


def _out_folder(args, cfg) -> tuple[Path, Path | None]:
    """The run folder and the checkpoint to resume from (None: a fresh run)."""
    from mate.cache import content_hash

    out = Path(args.out) if args.out else Path(args.workspace) / "runs" / f"train-{content_hash(cfg.to_dict())[:10]}"
    saved = out / CONFIG_FILE
    if saved.is_file():
        before = json.loads(saved.read_text())
        if before != json.loads(json.dumps(cfg.to_dict())):
            changed = sorted(k for k in set(before) | set(cfg.to_dict()) if before.get(k) != cfg.to_dict().get(k))
            raise UserError(f"{out} holds a run with another config (differs in {', '.join(changed[:5])}); "
                            "pass another --out")
        if (out / "metrics.json").is_file():
            raise UserError(f"{out} holds a finished run; pass another --out")
        ckpt = out / "checkpoint"
        return out, ckpt if (ckpt / "gen.pt").is_file() else None
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
    return out, None


def _cmd_train(args: argparse.Namespace) -> int:
    from mate.pipeline import run_trial

    cfg = _resolve(args)
    out, resume = _out_folder(args, cfg)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr))
    if resume:
        log(f"resuming {out} from its last checkpoint")

    def epoch_line(metrics: dict) -> None:
        if not args.quiet and "gen/epoch" in metrics:
            val = {k: v for k, v in metrics.items() if k in ("val/eval/fid", "val/eval/r_precision_top3",
                                                            "val/probe/word_pair_acc")}
            print(f"epoch {int(metrics['gen/epoch'])}: gen/loss {metrics['gen/loss']:.4f} "
                  + " ".join(f"{k} {v:.3f}" for k, v in val.items()), file=sys.stderr)

    def run(report):
        def both(metrics, checkpoint=None):
            epoch_line(metrics)
            report(metrics, checkpoint)

        metrics = run_trial(cfg, both, resume_dir=resume, workspace=args.workspace, out=out, threads=args.threads,
                            progress=not args.quiet, log=log)
        if args.previews:
            from mate.previews import render_previews

            render_previews(out, workspace=args.workspace, prompts=args.previews, pairs=args.previews, log=log)
        return metrics

    if args.tracking_uri:
        metrics = _tracked(args, cfg, out, run)
    else:
        metrics = run(lambda m, c=None: None)
    for k in SHOWN:
        if k in metrics:
            print(f"{k:28s} {metrics[k]:.4f}")
    print(f"wrote {out}")
    return 0


def _tracked(args, cfg, out: Path, run):
    from mate.tracking import track_run

    tags = {"profile": cfg["profile"], "out": str(out.resolve()), "align.enabled": str(cfg["align.enabled"])}
    with track_run(args.tracking_uri, args.workspace, args.experiment, run_name=out.name, params=cfg.to_dict(),
                   tags=tags, identity={"out": str(out.resolve())}) as handle:
        metrics = run(lambda m, c=None: handle.log_metrics(m, step=int(m.get("gen/epoch", 0))))
        handle.log_metrics(metrics, step=int(metrics.get("gen/epoch", 0)))
        info = json.loads((out / "run.json").read_text())
        handle.set_tags({"git_sha": info.get("git_sha"), "git_dirty": info.get("git_dirty"),
                         "evaluator_sha": info.get("evaluator_sha"), "dataset_hash": info.get("dataset_hash"),
                         "tokenizer_sha": info.get("tokenizer_sha") or ""})
        for name in ("metrics.json", "run.json", "generator.pt", "aligned_rows.safetensors"):
            if (out / name).is_file():
                handle.log_artifact(out / name)
        for folder in ("plots", "previews"):
            if (out / folder).is_dir():
                handle.log_artifacts(out / folder, folder)
    return metrics


def _cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from mate.config import resolve
    from mate.pipeline import load_run

    out = Path(args.out)
    if out.suffix not in (".gif", ".npy"):
        raise UserError(f"--out {out}: write a .gif (stick figure) or a .npy (T x D features)")
    if args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    run = load_run(args.run, args.workspace)
    over = {k: v for k, v in (("gen.foot_lock", args.foot_lock), ("gen.smooth", args.smooth)) if v is not None}
    if over:
        run.cfg = resolve(over, base=run.cfg.to_dict(), where="mate sample: ")
    length = args.length or int(np.median(run.pack.lengths[run.pack.split_indices("train")]))
    from mate.data.layout import configured

    limit = configured(run.pack.spec, run.cfg).max_motion_len
    if not 4 <= length <= limit:
        raise UserError(f"--length {length}: between 4 and {limit} feature rows ({run.pack.spec.fps:g} per second)")
    motions = run.sample([args.text], [length], n=args.n, seed=args.seed, steps=args.steps)[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, np.stack(motions) if args.n > 1 else motions[0])
    else:
        from mate.data.render import render_panels

        render_panels(motions, out, titles=[args.text] + [""] * (args.n - 1))
    print(f"wrote {out} ({args.n} x {length} rows)")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("train", help="run one trial: align, retrain the generator, evaluate (no Ray)")
    p.add_argument("--data", help="dataset folder (default: the saved one with --config, else the profile's "
                                  "synthetic corpus in the workspace)")
    p.add_argument("--out", help="run folder (default: a fresh one under <workspace>/runs)")
    p.add_argument("--workspace", default="mate-runs")
    p.add_argument("--config", help="a saved run's run.json (or its folder) or a YAML config such as best.yaml")
    p.add_argument("--tracking-uri", help="MLflow store, e.g. sqlite:///mate-runs/mlflow.db or http://host:5000")
    p.add_argument("--experiment", default="mate-train", help="MLflow experiment name")
    p.add_argument("--previews", type=int, default=2, metavar="K",
                   help="stick-figure GIFs: K generated-vs-real prompts and K minimal pairs (0: none)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("sample", help="generate motion for a caption with a trained run")
    p.add_argument("--run", required=True, help="a run folder written by mate train (or a sweep trial)")
    p.add_argument("--text", required=True, help="the caption")
    p.add_argument("--length", type=int, help="feature rows (default: the median training length)")
    p.add_argument("--n", type=int, default=1, help="samples (a .npy then holds n x length x D)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="DDIM steps (diffusion; default: the run's eval.sampler_steps) or "
                   "re-masking rounds (masked; default: the run's gen.iterations)")
    p.add_argument("--foot-lock", action=argparse.BooleanOptionalAction, default=None,
                   help="hold planted feet still (gen.foot_lock; default: the run's setting)")
    p.add_argument("--smooth", type=float, metavar="SIGMA", help="smooth over time, sigma in frames (gen.smooth; "
                   "default: the run's setting)")
    p.add_argument("--workspace", help="workspace holding the run's dataset pack (default: the run's own)")
    p.add_argument("--out", required=True, help="FILE.gif or FILE.npy")
    p.set_defaults(func=_cmd_sample)
