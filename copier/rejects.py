"""The reject file: one JSON line per row that could not be loaded, with the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol, TextIO

from .normalise import describe

_ENCODER = json.JSONEncoder(ensure_ascii=False)  # one for every line: json.dumps makes one per call


class RejectSink(Protocol):
    def add(self, table: str, key: object, column: str | None, value: object, reason: str) -> None: ...


class RejectList:
    """Collects rejects as reject-file records (in a worker process, for the parent to log)."""

    def __init__(self) -> None:
        self.records: list[dict[str, object]] = []

    def add(self, table: str, key: object, column: str | None, value: object, reason: str) -> None:
        self.records.append(_record(table, key, column, value, reason))


class DeferredRejects:
    """Holds rejects until the load that found them stands; a load that is undone (and
    done again another way) must not report them twice."""

    def __init__(self) -> None:
        self._held: list[tuple[str, object, str | None, object, str]] = []

    def add(self, table: str, key: object, column: str | None, value: object, reason: str) -> None:
        self._held.append((table, key, column, value, reason))

    def pass_to(self, sink: RejectSink) -> None:
        for held in self._held:
            sink.add(*held)
        self._held.clear()


def _record(table: str, key: object, column: str | None, value: object, reason: str) -> dict[str, object]:
    return {"table": table, "key": _jsonable(key), "column": column,
            "value": None if column is None else describe(value), "reason": reason}


class RejectLog:
    """Opened on the first reject, so a clean run leaves no file behind."""

    def __init__(self, path: Path, *, append: bool = False) -> None:
        self.path = path
        self._append = append  # a resumed run keeps the rejects of the tables already loaded
        self._file: TextIO | None = None
        if not append:
            # An earlier run's file describes a load this run replaces; verify would count it.
            path.unlink(missing_ok=True)

    def write(self, record: dict[str, object]) -> None:
        self.write_all([record])

    def write_all(self, records: list[dict[str, object]]) -> None:
        """The records, then one flush (an append rerun may reject every row of a table)."""
        if not records:
            return
        if self._file is None:
            self._file = self.path.open("a" if self._append else "w", encoding="utf-8")
        self._file.writelines(_ENCODER.encode(record) + "\n" for record in records)
        self._file.flush()

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
