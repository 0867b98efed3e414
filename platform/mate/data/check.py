"""`mate data check DIR`: every problem in a HumanML3D/KIT-ML-layout dataset, each naming its file.

The readers stop at the first bad file; a user fixing a dataset they built themselves wants the whole list at once,
so this walks everything (folders, Mean/Std, split files, every listed clip's motion and captions, the optional
joints) and never raises, whatever the data (a missing folder included). Clips the T2M loaders would silently drop
(too short, too long) are reported too, since a user who expected them in training should know, but as warnings:
real HumanML3D has such clips and every loader skips them, so they do not make a dataset fail (unless --strict).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import layout as L
from .captions import read_captions
from .errors import DatasetError

# Problems the readers handle the way the field's loaders do (they skip the clip): reported, not failing.
WARNINGS = frozenset({"too_short", "too_long"})


@dataclass(frozen=True)
class Problem:
    path: Path  # the file (or folder) that is wrong
    message: str  # what is wrong with it
    code: str = ""  # a stable short name of the kind of problem (tests, filtering)

    @property
    def severity(self) -> str:
        return "warning" if self.code in WARNINGS else "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class _Checker:
    def __init__(self, root: Path):
        self.root = root
        self.problems: list[Problem] = []
        self.spec: L.DatasetSpec | None = None

    def add(self, path: Path, message: str, code: str) -> None:
        self.problems.append(Problem(Path(path), message, code))

    def stats(self) -> None:
        arrays = {}
        for name in (L.MEAN_FILE, L.STD_FILE):
            try:
                arrays[name] = L.load_npy(self.root / name)
            except DatasetError as e:
                self.add(self.root / name, "missing" if not (self.root / name).exists() else e.message,
                         "missing_stats" if not (self.root / name).exists() else "corrupt")
        if len(arrays) == 2:
            issues = L.stats_issues(arrays[L.MEAN_FILE], arrays[L.STD_FILE])
            for name, code, msg in issues:
                self.add(self.root / name, msg, code)
            if not issues:
                self.spec = L.SPECS[arrays[L.MEAN_FILE].shape[0]]

    def splits(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in (*L.SPLITS, *L.COMP_SPLITS):
            path = L.split_file(self.root, name)
            if not path.exists():
                if name in L.SPLITS:
                    self.add(path, f"missing split file {path.name}", "missing_split")
                continue
            try:
                ids = L.read_split(path)
            except DatasetError as e:
                self.add(path, e.message if e.line is None else f"line {e.line}: {e.message}", "split_syntax")
                continue
            if not ids:
                self.add(path, "split file lists no ids", "empty_split")
            for cid, n in Counter(ids).items():
                if n > 1:
                    self.add(path, f"id {cid} is listed {n} times", "duplicate_id")
            out[name] = ids
        for i, a in enumerate(L.SPLITS):
            for b in L.SPLITS[i + 1:]:
                if a in out and b in out:
                    for cid in sorted(set(out[a]) & set(out[b])):
                        self.add(L.split_file(self.root, b), f"id {cid} is also in {a}.txt (splits must be disjoint)",
                                 "split_overlap")
        for comp, parent in L.COMP_SPLITS.items():
            if comp in out and parent in out:
                for cid in sorted(set(out[comp]) - set(out[parent]), key=out[comp].index):
                    self.add(L.split_file(self.root, comp), f"id {cid} is not in {parent}.txt (a compositional "
                             f"split must be a subset of its split)", "comp_not_subset")
        return out

    def motion(self, cid: str, listed_in: str) -> int | None:
        """Check one clip's features; its row count when readable."""
        path = L.motion_file(self.root, cid)
        if not path.is_file():
            self.add(path, f"no motion file for id {cid} (listed in {listed_in})", "missing_motion")
            return None
        try:
            arr = L.load_npy(path, mmap=True)
            issues = L.motion_issues(arr, self.spec.dim if self.spec else None)
        except DatasetError as e:
            self.add(path, e.message, "corrupt")
            return None
        except Exception as e:  # a truncated file that passed its header check fails on first touch
            self.add(path, f"unreadable .npy data ({type(e).__name__}: {str(e)[:120]})", "corrupt")
            return None
        for code, msg in issues:
            self.add(path, msg, code)
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
            return None
        n = arr.shape[0]
        spec = self.spec or L.SPECS.get(arr.shape[1])
        if n == 0:
            self.add(path, "clip has no rows", "empty")
        elif spec and n < spec.min_len:
            self.add(path, f"{n} rows is shorter than {spec.name}'s minimum {spec.min_len}: the loaders skip it",
                     "too_short")
        elif spec and n >= spec.max_len:
            self.add(path, f"{n} rows is not below {spec.name}'s limit {spec.max_len}: the loaders skip it",
                     "too_long")
        self.joints(cid, n, spec)
        return n

    def joints(self, cid: str, rows: int, spec: L.DatasetSpec | None) -> None:
        path = self.root / L.JOINTS_DIR / f"{cid}.npy"
        if not path.is_file() or spec is None:
            return
        try:
            shape = L.load_npy(path, mmap=True).shape
        except DatasetError as e:
            self.add(path, e.message, "corrupt")
            return
        if shape != (rows, spec.num_joints, 3):
            self.add(path, f"joints of shape {shape}, expected ({rows}, {spec.num_joints}, 3) to match "
                           f"{L.MOTION_DIR}/{cid}.npy", "joints_shape")

    def captions(self, cid: str, listed_in: str, rows: int | None) -> None:
        path = L.text_file(self.root, cid)
        if not path.is_file():
            self.add(path, f"no caption file for id {cid} (listed in {listed_in})", "missing_text")
            return
        errors: list[DatasetError] = []
        try:
            caps = read_captions(path, errors)
        except DatasetError as e:
            self.add(path, e.message, "corrupt")
            return
        for e in errors:
            self.add(path, e.message if e.line is None else f"line {e.line}: {e.message}", "caption_syntax")
        if not caps and not errors:
            self.add(path, "caption file has no captions", "empty_captions")
        fps = self.spec.fps if self.spec else None
        for c in caps:
            if c.whole:
                continue
            span = f"span {c.start:g}-{c.end:g} s of {c.text[:40]!r}"
            if c.end <= c.start:
                self.add(path, f"{span} ends before it starts", "bad_span")
            elif fps and rows is not None and int(c.start * fps) >= rows:
                self.add(path, f"{span} starts at row {int(c.start * fps)}, after the clip's {rows} rows", "bad_span")
            elif fps and rows is not None and int(c.end * fps) > rows + 1:  # one row of slack: T+1 frames give T rows
                self.add(path, f"{span} ends at row {int(c.end * fps)}, beyond the clip's {rows} rows", "bad_span")

    def run(self) -> list[Problem]:
        root = self.root
        if not root.exists():
            self.add(root, "dataset folder does not exist", "missing_dataset")
            return self.problems
        if not root.is_dir():
            self.add(root, "not a folder", "missing_dataset")
            return self.problems
        for sub in (L.MOTION_DIR, L.TEXT_DIR):
            if not (root / sub).is_dir():
                self.add(root / sub, f"missing folder {sub}/", "missing_folder")
        self.stats()
        splits = self.splits()
        listed: dict[str, str] = {}
        for name, ids in splits.items():
            for cid in ids:
                listed.setdefault(cid, f"{name}.txt")
        for cid in sorted(listed):
            rows = self.motion(cid, listed[cid]) if (root / L.MOTION_DIR).is_dir() else None
            if (root / L.TEXT_DIR).is_dir():
                self.captions(cid, listed[cid], rows)
        return self.problems


def check_dataset(path: str | os.PathLike) -> list[Problem]:
    """Every problem found in the dataset at `path` (empty when it is clean). Never raises on bad data."""
    checker = _Checker(Path(path))
    try:
        return checker.run()
    except OSError as e:  # permissions, I/O errors: still a report, not a traceback
        where = Path(getattr(e, "filename", None) or path)
        return checker.problems + [Problem(where, f"cannot read: {e.strerror or e}", "io_error")]
    except Exception as e:  # a validator bug must still end in a report naming the dataset
        return checker.problems + [Problem(Path(path), f"internal error while checking ({type(e).__name__}: {e}); "
                                                       "please report it", "internal")]


def format_report(problems: list[Problem], root: str | os.PathLike | None = None) -> str:
    """One line per problem (paths relative to `root` when given), then a summary line."""
    if not problems:
        return "no problems found"

    def rel(p: Path) -> str:
        if root is not None:
            try:
                return p.relative_to(root).as_posix() or "."
            except ValueError:
                pass
        return str(p)

    lines = [f"{rel(p.path)}: {'warning: ' if p.severity == 'warning' else ''}{p.message}" for p in problems]
    files = len({p.path for p in problems})
    warnings = sum(p.severity == "warning" for p in problems)
    errors = len(problems) - warnings
    counts = ([f"{errors} problem{'s' * (errors != 1)}"]
              + [f"{warnings} warning{'s' * (warnings != 1)}"] * bool(warnings))
    lines.append(f"{' and '.join(counts)} in {files} file{'s' * (files != 1)}")
    return "\n".join(lines)


def main(path: str | os.PathLike | None = None, strict: bool = False) -> int:
    """Print the report for `path` (default: the first command-line argument); exit 0 when clean (warnings allowed
    unless `strict`), 2 when not."""
    if path is None:
        if len(sys.argv) < 2:
            print("usage: python -m mate.data.check DATASET_DIR", file=sys.stderr)
            return 2
        path = sys.argv[1]
    problems = check_dataset(path)
    print(f"{path}:", file=sys.stdout)
    print(format_report(problems, root=path))
    failing = [p for p in problems if strict or p.severity == "error"]
    return 0 if not failing else 2


if __name__ == "__main__":
    sys.exit(main())
