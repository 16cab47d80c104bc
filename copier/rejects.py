"""The reject file: one JSON line per row that could not be loaded, with the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from .normalise import describe


class RejectLog:
    """Opened on the first reject, so a clean run leaves no file behind."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._file: TextIO | None = None

    def add(self, table: str, key: object, column: str | None, value: object, reason: str) -> None:
        if self._file is None:
            self._file = self.path.open("w", encoding="utf-8")
        record = {"table": table, "key": _jsonable(key), "column": column,
                  "value": None if column is None else describe(value), "reason": reason}
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _jsonable(key: object) -> object:
    if isinstance(key, tuple):
        return [_jsonable(k) for k in key]
    if key is None or isinstance(key, (int, float, str, bool)):
        return key
    return describe(key)


def read_rejects(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
