"""Pack build/reuse time and peak RSS of reading a HumanML3D-sized (30,000-clip) corpus through the pack.

    python bench/pack_rss.py [--corpus DIR] [--clips 30000] [--tmp DIR] [--keep]

Tiles a corpus (default: a 2,000-clip synthetic corpus made with mate.data.synth) to --clips clips in a temporary
folder (hard links with new ids, consistent split and caption files), then in fresh subprocesses opens it through the
pack (first: build; second: reuse), reads every clip of every split with Pack.motion and iterates a DataLoader over
the train split, and reports each child's open time, read time and peak RSS (ru_maxrss). For contrast, one child reads
every clip through the memory map instead (touched mmap pages count as RSS). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_base(out: Path, num: int) -> str:
    from mate.data.synth import synthesize

    synthesize(out, num=num, seed=0)
    return f"synthetic corpus, {num} clips (mate.data.synth, seed 0)"


def tile(src: Path, dst: Path, clips: int) -> int:
    """Hard-link (or copy) `src`'s listed clips under new ids `<id>_t<k>` until there are `clips`; returns the count."""
    from mate.data import layout as L

    names = [s for s in (*L.SPLITS, *L.COMP_SPLITS) if L.split_file(src, s).is_file()]
    splits = {s: L.read_split(L.split_file(src, s)) for s in names}
    base = sorted({c for s in L.SPLITS for c in splits[s]})
    (dst / L.MOTION_DIR).mkdir(parents=True)
    (dst / L.TEXT_DIR).mkdir()
    for f in (L.MEAN_FILE, L.STD_FILE):
        shutil.copy(src / f, dst / f)
    link = os.link
    new_ids: dict[str, list[str]] = {c: [] for c in base}
    made, k = 0, 0
    while made < clips:
        for cid in base[: clips - made]:
            nid = f"{cid}_t{k:02d}"
            for a, b in ((L.motion_file(src, cid), L.motion_file(dst, nid)),
                         (L.text_file(src, cid), L.text_file(dst, nid))):
                try:
                    link(a, b)
                except OSError:
                    link = shutil.copyfile
                    link(a, b)
            new_ids[cid].append(nid)
            made += 1
        k += 1
    for s in names:
        (dst / f"{s}.txt").write_text("".join(f"{n}\n" for c in splits[s] for n in new_ids.get(c, [])))
    return made


def child(data: str, workspace: str, via: str) -> None:
    """One measurement in a fresh process: open, read every clip of every split, iterate a DataLoader."""
    from mate.data.dataset import MotionDataset, make_loader
    from mate.data.pack import open_pack

    t0 = time.perf_counter()
    pack = open_pack(data, workspace, progress=False)
    t_open = time.perf_counter() - t0
    rss_open = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, rows, total = time.perf_counter(), 0, 0.0
    for s in pack.splits:
        for i in pack.split_indices(s):
            if via == "mmap":
                o, n = int(pack.offsets[i]), int(pack.lengths[i])
                m = np.asarray(pack.array[o:o + n])
            else:
                m = pack.motion(int(i))
            rows += len(m)
            total += float(m[:, 0].sum())
    t_read = time.perf_counter() - t0
    t0, batches = time.perf_counter(), 0
    if via != "mmap":
        for b in make_loader(MotionDataset(pack, "train"), batch_size=64):
            batches += 1
    t_loader = time.perf_counter() - t0
    print(json.dumps(dict(built=pack.built, clips=len(pack), rows=rows, gb=pack.meta["rows"] * pack.dim * 4 / 1e9,
                          open_s=t_open, read_s=t_read, loader_s=t_loader, batches=batches,
                          rss_open_mb=rss_open / 1024,
                          peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))


def run_child(data: Path, ws: Path, via: str = "pread") -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "platform"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, __file__, "--child", str(data), str(ws), via], capture_output=True,
                         text=True, env=env)
    if out.returncode:
        sys.exit(f"child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, help="corpus to tile (default: make a 2,000-clip one)")
    ap.add_argument("--base-clips", type=int, default=2000)
    ap.add_argument("--clips", type=int, default=30000)
    ap.add_argument("--tmp", type=Path, default=None, help="scratch folder (default: a new temporary one)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--child", nargs=3, metavar=("DATA", "WORKSPACE", "VIA"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child)
    tmp = Path(tempfile.mkdtemp(prefix="pack_rss.", dir=args.tmp))
    try:
        if args.corpus:
            base, what = args.corpus, f"{args.corpus}"
        else:
            base = tmp / "base"
            t0 = time.perf_counter()
            what = make_base(base, args.base_clips)
            print(f"made the base corpus in {time.perf_counter() - t0:.1f} s: {what}", file=sys.stderr)
        big = tmp / "tiled"
        n = tile(base, big, args.clips)
        base_n = len(list((base / "new_joint_vecs").glob("*.npy")))
        rows = []
        print(f"base corpus: {what}")
        for label, data in ((f"base ({base_n} clips)", base), (f"tiled to {n} clips", big)):
            ws = tmp / f"ws-{data.name}"
            for attempt in ("first open (build)", "second open (reuse)"):
                r = run_child(data, ws)
                rows.append((label, attempt, r))
                print(f"{label}, {attempt}: {r}", file=sys.stderr)
        r = run_child(big, tmp / f"ws-{big.name}", via="mmap")
        rows.append((f"tiled to {n} clips", "reuse, clips read through the mmap", r))
        print("| corpus | open | clips | pack GB | open s | read all clips s | DataLoader(train) s | peak RSS MB |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for label, attempt, r in rows:
            loader = f"{r['loader_s']:.2f} ({r['batches']} batches)" if r["batches"] else "-"
            print(f"| {label} | {attempt} | {r['clips']} | {r['gb']:.2f} | {r['open_s']:.2f} | {r['read_s']:.2f} | "
                  f"{loader} | {r['peak_rss_mb']:.0f} |")
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
