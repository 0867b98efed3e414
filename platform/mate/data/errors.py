"""The one exception every dataset reader raises, so callers (and `mate data check`) show a file, not a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError


class DatasetError(UserError):
    """Something wrong with a dataset file: `path` (and `line`, 1-based, for text files) say where."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None):
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = "" if self.path is None else f"{self.path}" + (f":{self.line}" if self.line is not None else "") + ": "
        return where + self.message

    def __reduce__(self):  # keep path/line across processes (DataLoader workers, Ray)
        return (type(self), (self.message, self.path, self.line))
