"""HumanML3D caption lines: `caption#word/POS word/POS …#start#end`, one annotation a line.

The format is the dataset's own (and KIT-ML's in the T2M release). Times are seconds; `0.0#0.0` means the whole clip,
and `nan` (as real HumanML3D writes it for some clips) is read as 0.0 the way the public loaders do, so `nan#nan`
is a whole-clip caption too. Malformed lines raise DatasetError naming the file and the line, never an IndexError.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError


@dataclass(frozen=True)
class Caption:
    text: str  # the original sentence
    tokens: list[tuple[str, str]]  # (lemmatised word, universal POS tag)
    start: float = 0.0  # seconds; start == end == 0.0 is the whole clip
    end: float = 0.0

    @property
    def whole(self) -> bool:
        """True when the caption describes the whole clip (no time span)."""
        return self.start == 0.0 and self.end == 0.0

    def rows(self, length: int, fps: float) -> tuple[int, int]:
        """The feature rows [a, b) this caption covers in a clip of `length` rows, as the T2M loaders cut them."""
        if self.whole:
            return 0, length
        a = int(self.start * fps)
        return min(a, length), max(min(int(self.end * fps), length), min(a, length))

    @property
    def words(self) -> list[str]:
        return [w for w, _ in self.tokens]


def _time(field: str, what: str, path, lineno) -> float:
    try:
        t = float(field)
    except ValueError:
        raise DatasetError(f"{what} time {field!r} is not a number", path, lineno) from None
    if math.isnan(t):
        return 0.0
    if math.isinf(t) or t < 0:
        raise DatasetError(f"{what} time {field!r} must be a finite number >= 0", path, lineno)
    return t


def parse_tokens(field: str, path=None, lineno: int | None = None) -> list[tuple[str, str]]:
    tokens = []
    for tok in field.split():
        word, sep, pos = tok.rpartition("/")
        if not sep or not word or not pos or not pos.isalpha():
            raise DatasetError(f"token {tok!r} is not word/POS", path, lineno)
        tokens.append((word, pos))
    if not tokens:
        raise DatasetError("no word/POS tokens", path, lineno)
    return tokens


def parse_line(line: str, path: str | os.PathLike | None = None, lineno: int | None = None) -> Caption:
    """Parse one caption line (the sentence itself may contain '#': the last three fields are split off)."""
    parts = line.strip().rsplit("#", 3)
    if len(parts) != 4:
        raise DatasetError("expected 'caption#tokens#start#end' (4 fields split by '#'), "
                           f"got {len(parts)}: {line.strip()[:80]!r}", path, lineno)
    text, toks, start, end = (p.strip() for p in parts)
    if not text:
        raise DatasetError("empty caption text", path, lineno)
    return Caption(text, parse_tokens(toks, path, lineno), _time(start, "start", path, lineno),
                   _time(end, "end", path, lineno))


def read_captions(path: str | os.PathLike, errors: list[DatasetError] | None = None) -> list[Caption]:
    """All captions of one text file (blank lines skipped).

    Raises DatasetError on the first malformed line, or, when `errors` is a list, appends every error to it and
    returns the lines that parsed (the validator reports them all).
    """
    path = Path(path)
    try:
        content = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DatasetError("caption file does not exist", path) from None
    except UnicodeDecodeError as e:
        err = DatasetError(f"not UTF-8 text ({e.reason} at byte {e.start})", path)
        if errors is None:
            raise err from None
        errors.append(err)
        return []
    except OSError as e:
        raise DatasetError(f"cannot read caption file: {e.strerror}", path) from None
    out = []
    for lineno, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(parse_line(line, path, lineno))
        except DatasetError as e:
            if errors is None:
                raise
            errors.append(e)
    return out


def _fmt_time(t: float) -> str:
    return repr(float(t))


def canonical_text(text: str) -> str:
    """A caption up to case, punctuation and spacing: two captions equal here are the same caption."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def format_caption(c: Caption) -> str:
    """The line for `c` (no newline); parse_line(format_caption(c)) == c."""
    toks = " ".join(f"{w}/{p}" for w, p in c.tokens)
    return f"{c.text}#{toks}#{_fmt_time(c.start)}#{_fmt_time(c.end)}"


def write_captions(path: str | os.PathLike, captions: list[Caption]) -> None:
    Path(path).write_text("".join(format_caption(c) + "\n" for c in captions), encoding="utf-8")
