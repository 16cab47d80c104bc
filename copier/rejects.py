"""The reject file: one JSON line per row that could not be loaded, with the reason."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring  # how _ENCODER writes a str (ensure_ascii off)
from pathlib import Path
from typing import IO, Protocol, TextIO

from .normalise import describe

_ENCODER = json.JSONEncoder(ensure_ascii=False)  # one for every line: json.dumps makes one per call


class RejectSink(Protocol):
    def add(self, table: str, key: object, column: str | None, value: object, reason: str) -> None: ...

    def extend(self, lines: Iterable[str]) -> None: ...

    def add_reasons(self, table: str, rows: Iterable[tuple[object, str | None, str]]) -> None: ...


# A load's rejects stay in memory up to this many bytes of JSON, then spill to a temporary
# file: an append rerun rejects every row of a table, and memory must not grow with it.
_SPILL_BYTES = 4 * 2**20


class RejectList:
    """Collects a load's rejects as reject-file lines until the load stands (in a worker
    process, for the parent to log), in a temporary file past a few megabytes."""

    def __init__(self) -> None:
        self._lines: tempfile.SpooledTemporaryFile[str] | None = None  # made on the first reject
        self.count = 0

    def add(self, table: str, key: object, column: str | None, value: object, reason: str) -> None:
        self.extend([_ENCODER.encode(_record(table, key, column, value, reason)) + "\n"])

    def add_reasons(self, table: str, rows: Iterable[tuple[object, str | None, str]]) -> None:
        """Rows refused with a reason and no value read ((key, column, reason) each; a set
        query's, screening.py), as `add` writes them: a row keyed by an integer and naming no
        column is written without building and encoding a dict (an append rerun refuses
        every row of its table, a million lines at ~25 µs each that way)."""
        head = '{"table": ' + encode_basestring(table) + ', "key": '
        lines = [f'{head}{key}, "column": null, "value": null, "reason": {encode_basestring(reason)}}}\n'
                 if type(key) is int and column is None  # not a bool: its JSON is not its str
                 else _ENCODER.encode(_record(table, key, column, None, reason)) + "\n"
                 for key, column, reason in rows]
        self.extend(lines)

    def extend(self, lines: Iterable[str]) -> None:
        """Lines another RejectList gave (lines()), from a worker's chunk."""
        lines = list(lines)
        if not lines:
            return
        if self._lines is None:
            self._lines = tempfile.SpooledTemporaryFile(max_size=_SPILL_BYTES, mode="w+", encoding="utf-8")
        self._lines.write("".join(lines))
        self.count += len(lines)

    def take(self, other: RejectList) -> None:
        """Every line of `other`, which is left empty: its file itself when this list has none
        yet, else copied in blocks (an append rerun's may be hundreds of megabytes)."""
        if other._lines is None:
            return
        if self._lines is None:
            self._lines, self.count = other._lines, other.count
        else:
            self.count += other.count
            other.copy_to(self._lines)
            other.close()
        other._lines, other.count = None, 0

    def copy_to(self, out: IO[str]) -> None:
        """Every line so far written to `out`, in blocks."""
        if self._lines is None:
            return
        self._lines.flush()
        self._lines.seek(0)
        shutil.copyfileobj(self._lines, out)
        self._lines.seek(0, 2)

    def lines(self) -> Iterator[str]:
        """Every line so far, each ending in a newline, read back from the start."""
        if self._lines is None:
            return
        self._lines.flush()
        self._lines.seek(0)
        yield from self._lines
        self._lines.seek(0, 2)

    def clear(self) -> None:
        """Forget every reject: a load undone is loaded again, rejects and all."""
        self.close()
        self.count = 0

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()
            self._lines = None

    def __del__(self) -> None:
        self.close()  # an attempt that failed drops its list: its spill file goes with it


class DeferredRejects(RejectList):
    """Holds rejects until the load that found them stands; a load that is undone (and
    done again another way) must not report them twice. On disk past a few megabytes,
    as RejectList: an append rerun rejects every row of its table here."""

    def pass_to(self, sink: RejectSink) -> None:
        if isinstance(sink, RejectList):
            sink.take(self)
        else:
            sink.extend(self.lines())
        self.clear()


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
        self.write_lines(_ENCODER.encode(record) + "\n" for record in records)

    def write_lines(self, lines: Iterable[str]) -> None:
        """Lines already encoded (RejectList.lines), then one flush; the file is opened
        only if there is one."""
        for line in lines:
            if self._file is None:
                self._file = self.path.open("a" if self._append else "w", encoding="utf-8")
            self._file.write(line)
        if self._file is not None:
            self._file.flush()

    def write_list(self, rejects: RejectList) -> None:
        """A load's rejects, copied in blocks, then one flush; the file is opened only if
        there is one."""
        if rejects.count == 0:
            return
        if self._file is None:
            self._file = self.path.open("a" if self._append else "w", encoding="utf-8")
        rejects.copy_to(self._file)
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
