"""The `mate` command. Heavy imports (numpy, torch, matplotlib) happen inside each command so `mate --help` is
instant."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mate.errors import UserError

DEFAULT_WORKSPACE = Path("mate-runs")


class UsageError(UserError):
    """Bad input a user can fix; printed as one line, exit code 2."""


def _cmd_data_synth(args: argparse.Namespace) -> int:
    import json

    from mate.data.synth import corpus, synthesize

    out = Path(args.out)
    meta = out / "meta.json"
    if out.exists() and any(out.iterdir()) and not args.force:
        try:
            made = json.loads(meta.read_text())
        except (OSError, ValueError):
            made = {}
        if (made.get("num"), made.get("seed"), made.get("version")) == (args.num, args.seed, corpus.GENERATOR_VERSION):
            print(f"{out} already holds this corpus ({args.num} clips, seed {args.seed}): nothing to do")
            return 0
        raise UsageError(f"{out} exists and holds something else (pass --force to overwrite)")
    start = time.perf_counter()
    summary = synthesize(out, num=args.num, seed=args.seed, progress=not args.quiet, workers=args.workers)
    splits = ", ".join(f"{k} {v}" for k, v in summary.get("splits", {}).items())
    print(f"wrote {args.num} clips to {out} in {time.perf_counter() - start:.1f} s ({splits})")
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    from mate.data.check import main as check_main

    return check_main(args.dir, strict=args.strict)


def _cmd_data_preview(args: argparse.Namespace) -> int:
    import numpy as np

    from mate.data.captions import read_captions
    from mate.data.render import render_gif

    root = Path(args.dir)
    feats = root / "new_joint_vecs" / f"{args.id}.npy"
    if not feats.is_file():
        raise UsageError(f"{feats}: no such clip (ids are the file names in {root / 'new_joint_vecs'})")
    try:
        motion = np.load(feats)
    except Exception as exc:  # a corrupt .npy is the user's data problem, not a crash
        raise UsageError(f"{feats}: unreadable .npy ({exc})") from None
    title = args.title
    text_file = root / "texts" / f"{args.id}.txt"
    if title is None and text_file.is_file():
        captions = read_captions(text_file)
        title = captions[0].text if captions else ""
    out = Path(args.out) if args.out else DEFAULT_WORKSPACE / "previews" / f"{args.id}.gif"
    try:
        render_gif(motion, out, title=f"{args.id}: {title}" if title else args.id)
    except ValueError as exc:
        raise UsageError(f"{feats}: {exc}") from None
    print(f"wrote {out}")
    return 0


def _cmd_data_pack(args: argparse.Namespace) -> int:
    from mate.data.pack import open_pack

    start = time.perf_counter()
    pack = open_pack(args.data, args.workspace)
    print(
        f"{pack.path}: {len(pack.ids)} clips, {int(pack.lengths.sum())} rows x {pack.dim}, "
        f"hash {pack.content_hash} ({time.perf_counter() - start:.2f} s)"
    )
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    import yaml

    from mate.config import KEYS, TEST_ONLY, load_yaml, resolve

    if args.keys:
        def line(key, mark=""):
            choices = f" [{'|'.join(map(str, key.choices))}]" if key.choices else ""
            return f"{key.name:22s} {key.type.__name__:5s} {key.default!s:10s}{choices}  {mark}{key.doc}"

        print("\n".join(line(k) for k in KEYS.values() if k.name not in TEST_ONLY))
        print("\n# test-only keys: fault injection and a planted effect for the platform's own tests; never set them "
              "in a real run")
        print("\n".join(line(KEYS[name], "[test-only] ") for name in sorted(TEST_ONLY)))
        return 0
    base = load_yaml(args.config) if args.config else None
    cfg = resolve(args.overrides, base=base, where=f"{args.config}: " if args.config else "")
    shown = {k: v for k, v in cfg.to_dict().items() if k not in TEST_ONLY or v != KEYS[k].default}
    print(yaml.safe_dump(shown, sort_keys=True), end="")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from mate.text.artifact import AlignedRows

    rows = AlignedRows.load(args.artifact)
    if args.format == "rows":
        path = rows.export_rows(args.out)
    else:
        path = rows.export_hf(args.out, base_path=args.encoder)
    print(f"wrote {path} ({len(rows.token_ids)} aligned rows of {rows.base_name or rows.family})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mate import __version__

    parser = argparse.ArgumentParser(prog="mate", description="MATE Platform: motion-aligned text encoders for T2M.")
    parser.add_argument("--version", action="version", version=f"mate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    data = sub.add_parser("data", help="datasets: synthesize, validate, pack, preview")
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    p = dsub.add_parser("synth", help="write the synthetic kinematic corpus (HumanML3D layout)")
    p.add_argument("--out", required=True, help="folder to write the corpus into")
    p.add_argument("--num", type=int, default=2000, help="number of clips (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="processes (default: the CPU count, at most 2)")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_data_synth)

    p = dsub.add_parser("check", help="validate a dataset folder; exit 0 when clean, 2 when not")
    p.add_argument("dir")
    p.add_argument("--strict", action="store_true", help="also fail on warnings (clips the loaders skip)")
    p.set_defaults(func=_cmd_data_check)

    p = dsub.add_parser("preview", help="render a clip as an animated stick figure")
    p.add_argument("dir")
    p.add_argument("id")
    p.add_argument("--out", help="GIF path (default: <workspace>/previews/<id>.gif)")
    p.add_argument("--title", help="caption shown above the figure (default: the clip's first caption)")
    p.set_defaults(func=_cmd_data_preview)

    p = dsub.add_parser("pack", help="pack a dataset into the workspace cache (done on first use anyway)")
    p.add_argument("--data", required=True)
    p.add_argument("--workspace", default=str(DEFAULT_WORKSPACE))
    p.set_defaults(func=_cmd_data_pack)

    p = sub.add_parser("export", help="export aligned rows: a Hugging Face model folder, or the bare rows file")
    p.add_argument("artifact", help="an aligned_rows.safetensors file, or a folder holding one")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--format", choices=("hf", "rows"), default="hf",
                   help="hf: model + tokenizer loadable with transformers.AutoModel; rows: token ids + rows only")
    p.add_argument("--encoder", help="the base model folder (default: the one the artifact records)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("config", help="print the resolved config, or every key with --keys")
    p.add_argument("--config", help="a YAML config file")
    p.add_argument("--keys", action="store_true", help="list every config key, its type, default and meaning")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(func=_cmd_config)
    from mate.text.segment.command import add_parser as _add_segment

    _add_segment(sub)
    from mate.evaluate.commands import add_parsers as _add_evaluate

    _add_evaluate(sub)
    from mate.align.command import add_parser as _add_align

    _add_align(sub)
    from mate.train_command import add_parsers as _add_train

    _add_train(sub)
    from mate.tokenizer_command import add_parsers as _add_tokenizer

    _add_tokenizer(sub)
    from mate.sweep.command import add_parsers as _add_sweep

    _add_sweep(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # key=value overrides may stand anywhere among the flags (argparse alone takes only the first run of them)
    args, extra = parser.parse_known_args(argv)
    if extra:
        bad = [w for w in extra if w.startswith("-") or "=" not in w]
        if bad or not hasattr(args, "overrides"):
            parser.error(f"unrecognized arguments: {' '.join(bad or extra)}")
        args.overrides = [*(args.overrides or []), *extra]
    func = getattr(args, "func", None)
    if func is None:
        parser.parse_args([args.command, "--help"] if args.command else ["--help"])
        return 2
    try:
        return int(func(args) or 0)
    except UserError as exc:
        print(f"mate: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
