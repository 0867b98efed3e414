"""`mate tokenizer train`: the masked generator's motion tokenizer built alone, with the report that gates it.

A masked generator can do no better than its tokenizer, so the report measures what a decoded clip loses, on val
clips the tokenizer never trained on: reconstruction FID with the scoring evaluator beside the random-real-clip
reference (the FID of real motion with the wrong meaning: a reconstruction must sit well below it), MPJPE of the
recovered global joints in mm, foot skating and jitter of the reconstructions against the real clips', and the share
of each codebook's codes the val clips use.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

REAL_CROP = 196  # rows: the T2M evaluators' longest motion


def crop(rows: int, max_rows: int = REAL_CROP) -> tuple[int, int]:
    """(first row, rows kept) of the centred crop to at most `max_rows`, a multiple of 4."""
    n = min(rows, max_rows) // 4 * 4
    return (rows - n) // 2, n


def val_clips(pack, split: str = "val", max_rows: int = REAL_CROP) -> list:
    """The split's whole clips (`crop`), normalised."""
    out = []
    for i in pack.split_indices(split):
        m = pack.motion(int(i))
        a, n = crop(len(m), max_rows)
        out.append(pack.normalize(m[a : a + n]))
    return out


def cropped_annotation(ann: dict, first: int, rows: int) -> dict:
    """A clip's annotation for its crop [first, first + rows): spans moved with it, segments outside it dropped."""
    segments = []
    for seg in ann["segments"]:
        s, e = max(seg["span"][0] - first, 0), min(seg["span"][1] - first, rows)
        if e - s >= 2:
            segments.append({**seg, "span": [s, e]})
    return {**ann, "segments": segments}


def probe_ceiling(raw_recon: list, annotations: list[dict]) -> dict[str, float]:
    """`tokenizer/{turn,direction,speed,action,limb}_acc`: the annotated attributes the probes read back from the
    reconstructions. The generator samples the tokenizer's codes, so this is its ceiling per attribute (real clips
    read 1.0 on the synthetic corpus): a word the decoder cannot render is not the text encoder's fault."""
    from mate.evaluate.probes import probe_accuracy

    return {k.replace("probe/", "tokenizer/"): v for k, v in probe_accuracy(raw_recon, annotations).items()}


def report(tok, pack, evaluator, split: str = "val", seed: int = 0, notes: dict | None = None) -> dict[str, float]:
    """The tokenizer's figures on `split` (module docstring), named `tokenizer/*` (with `val/` in front on val).

    With the synthetic corpus's annotations (`notes`), FID and skating are also given apart for the clips whose
    motion the training split never shows (`*_heldout`: a held-out combination such as a left-hand wave) and the
    rest (`*_seen`), each FID beside its own random-clip reference: a tokenizer rebuilds what it has seen far better,
    and the held-out clips carry most of the overall FID. With annotations for every clip, `probe_ceiling` too
    (overall, seen and held-out)."""
    import numpy as np

    from mate.data.features import features_to_joints
    from mate.evaluate import probes
    from mate.evaluate.metrics import fid
    from mate.generate.tokenizer import reconstruct

    real = val_clips(pack, split)
    recon, codes = reconstruct(tok, real)
    rng = np.random.default_rng(seed)
    train = pack.split_indices("train")
    random_clips = []
    for m in real:  # a random training clip per val clip, of the same length (tiled when shorter)
        r = pack.normalize(pack.motion(int(train[rng.integers(len(train))])))
        random_clips.append(np.resize(r, m.shape) if len(r) < len(m) else r[: len(m)])
    emb_real, emb_recon = evaluator.embed_motions(real), evaluator.embed_motions(recon)
    emb_random = evaluator.embed_motions(random_clips)
    raw_real = [pack.denormalize(m) for m in real]
    raw_recon = [pack.denormalize(m) for m in recon]
    mpjpe = np.mean([np.linalg.norm(features_to_joints(a) - features_to_joints(b), axis=-1).mean()
                     for a, b in zip(raw_recon, raw_real)])
    plaus_real, plaus_recon = probes.plausibility(raw_real), probes.plausibility(raw_recon)
    all_codes = np.concatenate(codes)
    out = {"tokenizer/fid": fid(emb_real, emb_recon), "tokenizer/fid_random_clip": fid(emb_real, emb_random),
           "tokenizer/mpjpe_mm": float(mpjpe * 1000),
           "tokenizer/foot_skate": plaus_recon["probe/foot_skate"],
           "tokenizer/foot_skate_real": plaus_real["probe/foot_skate"],
           "tokenizer/jitter": plaus_recon["probe/jitter"], "tokenizer/jitter_real": plaus_real["probe/jitter"],
           "tokenizer/clips": float(len(real))}
    out["tokenizer/foot_skate_ratio"] = out["tokenizer/foot_skate"] / max(out["tokenizer/foot_skate_real"], 1e-9)
    notes = notes or {}
    idx = pack.split_indices(split)
    ids = [pack.ids[int(i)] for i in idx]
    held = np.array([bool(notes.get(c, {}).get("compositional")) for c in ids])
    annotated = None
    if ids and all(c in notes for c in ids):  # the annotations of the crops `val_clips` took
        annotated = [cropped_annotation(notes[c], *crop(int(pack.lengths[int(i)]))) for c, i in zip(ids, idx)]
        out.update(probe_ceiling(raw_recon, annotated))
    if 1 < held.sum() < len(held) - 1:
        for name, rows in (("seen", ~held), ("heldout", held)):
            recon_rows = [m for m, k in zip(raw_recon, rows) if k]
            out[f"tokenizer/fid_{name}"] = fid(emb_real[rows], emb_recon[rows])
            out[f"tokenizer/fid_random_clip_{name}"] = fid(emb_real[rows], emb_random[rows])
            out[f"tokenizer/foot_skate_{name}"] = probes.plausibility(recon_rows)["probe/foot_skate"]
            out[f"tokenizer/clips_{name}"] = float(rows.sum())
            if annotated:
                ann_rows = [a for a, k in zip(annotated, rows) if k]
                out.update({f"{k}_{name}": v for k, v in probe_ceiling(recon_rows, ann_rows).items()})
    for i in range(tok.layers):
        out[f"tokenizer/codes_used_{i}"] = len(np.unique(all_codes[:, i])) / tok.codes
    prefix = "val/" if split.startswith("val") else ""
    return {prefix + k: float(v) for k, v in out.items()}


def gate(metrics: dict[str, float], prefix: str = "val/") -> dict[str, bool]:
    """Issue 23's bar for a tokenizer: skating at most 1.5x the real clips', FID below the random-real-clip
    reference, at least half of every codebook in use."""
    m = {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix)}
    used = [v for k, v in m.items() if k.startswith("tokenizer/codes_used_")]
    return {"foot_skate <= 1.5x real": m["tokenizer/foot_skate_ratio"] <= 1.5,
            "fid < random real clip": m["tokenizer/fid"] < m["tokenizer/fid_random_clip"],
            "codes used >= 50% per layer": bool(used) and min(used) >= 0.5}


def _cmd_train(args: argparse.Namespace) -> int:
    from mate.evaluate.commands import _setup
    from mate.evaluate.retrieval import train_or_load as evaluator_for
    from mate.generate.tokenizer import train_or_load
    from mate.runinfo import write_outputs

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    cfg, pack, encoder = _setup(args)
    start = time.perf_counter()
    tok = train_or_load(pack, cfg, args.workspace, progress=not args.quiet)
    built = time.perf_counter() - start
    evaluator = evaluator_for(pack, encoder, cfg, args.workspace, seed=cfg.seed_for("evaluator"),
                              progress=not args.quiet)
    from mate.evaluate.truth import load_annotations

    metrics = report(tok, pack, evaluator, "val", seed=cfg.seed_for("eval"), notes=load_annotations(pack.source))
    metrics["tokenizer/train_seconds"] = float(tok.meta["train_seconds"])
    metrics["tokenizer/steps"] = float(tok.meta["steps_done"])
    if "noise_seconds" in tok.meta:
        metrics["tokenizer/noise_seconds"] = float(tok.meta["noise_seconds"])
    out = Path(args.out) if args.out else Path(args.workspace) / "runs" / f"tokenizer-{tok.sha[:12]}"
    write_outputs(out, metrics, cfg, tokenizer_sha=tok.sha, tokenizer_path=str(tok.path),
                  evaluator_sha=evaluator.sha, dataset_hash=pack.content_hash)
    m = {k.split("/")[-1]: v for k, v in metrics.items()}
    used = " ".join(f"{m[f'codes_used_{i}']:.0%}" for i in range(tok.layers))
    own = float(tok.meta.get("noise_seconds", m["train_seconds"]))  # what this call would have had to train
    stages = (f", of which {own:.0f} s the decoder on noisy codes (gen.vq_noise) over the cached first stage"
              if "noise_seconds" in tok.meta else "")
    print(f"tokenizer {tok.sha[:12]}: {tok.layers} x {tok.codes} codes, {int(m['steps'])} steps in "
          f"{m['train_seconds']:.0f} s{stages} ({'cached' if built < 0.5 * own else 'trained now'})\n"
          f"  val reconstruction ({int(m['clips'])} clips): FID {m['fid']:.3f} (random real clip "
          f"{m['fid_random_clip']:.3f}), MPJPE {m['mpjpe_mm']:.1f} mm\n"
          f"  foot skating {m['foot_skate']:.4f} m/s (real {m['foot_skate_real']:.4f}, {m['foot_skate_ratio']:.2f}x),"
          f" jitter {m['jitter']:.0f} (real {m['jitter_real']:.0f}) m/s^3\n"
          f"  codes used per layer: {used}")
    if "fid_seen" in m:
        print("  " + "; ".join(f"{name} motion ({int(m[f'clips_{key}'])} clips): FID {m[f'fid_{key}']:.3f} (random "
                               f"real clip {m[f'fid_random_clip_{key}']:.3f}), skating {m[f'foot_skate_{key}']:.4f}"
                               for name, key in (("seen", "seen"), ("held-out", "heldout"))))
    if "speed_acc" in m:
        from mate.evaluate.probes import PROBE_ATTRIBUTES

        def read(suffix=""):
            return ", ".join(f"{a} {m[f'{a}_acc{suffix}']:.2f}" for a in PROBE_ATTRIBUTES)
        print(f"  probes read back (the generator's ceiling; real clips 1.00): {read()}"
              + (f"; held-out motion: {read('_heldout')}" if "speed_acc_heldout" in m else ""))
    for name, ok in gate(metrics).items():
        print(f"  [{'pass' if ok else 'FAIL'}] {name}")
    print(f"  {tok.path}\n  metrics: {out / 'metrics.json'}")
    return 0


def add_parsers(sub) -> None:
    tok = sub.add_parser("tokenizer", help="the masked generator's motion tokenizer (trained once per dataset)")
    tsub = tok.add_subparsers(dest="tokenizer_command", required=True)
    p = tsub.add_parser("train", help="build (or load) the tokenizer and print its reconstruction report on val")
    p.add_argument("--data", help="dataset folder (default: the synthetic corpus of the profile, in the workspace)")
    p.add_argument("--workspace", default="mate-runs")
    p.add_argument("--out", help="folder for metrics.json and run.json")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(func=_cmd_train)
