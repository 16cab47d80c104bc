"""Progress display. The only module that imports tqdm: bars on a terminal; off one (CI,
nohup, a pipe, a terminal of width 0) the same tqdm bars printed as throttled lines; NullProgress
when quiet."""

from __future__ import annotations

import io
import os
import sys
from typing import Protocol, TextIO

from tqdm import tqdm


class TableBar(Protocol):
    def advance(self, rows: int) -> None: ...
    def close(self) -> None: ...


class Progress(Protocol):
    def table(self, name: str, total: int) -> TableBar: ...
    def phase(self, name: str, total: int) -> TableBar: ...  # after the load: keys, foreign keys, verify
    def note(self, line: str) -> None: ...  # one line for the user (a retry), between the bars
    def close(self) -> None: ...


class _NullBar:
    def advance(self, rows: int) -> None:
        pass

    def close(self) -> None:
        pass


class NullProgress:
    def __init__(self, quiet: bool = True) -> None:
        self._quiet = quiet

    def table(self, name: str, total: int) -> TableBar:
        return _NullBar()

    def phase(self, name: str, total: int) -> TableBar:
        return _NullBar()

    def note(self, line: str) -> None:
        if not self._quiet:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class _TqdmBar:
    def __init__(self, bar: tqdm, overall: tqdm, slots: list[bool], slot: int) -> None:
        self._bar, self._overall, self._slots, self._slot = bar, overall, slots, slot

    def advance(self, rows: int) -> None:
        self._bar.update(rows)
        self._overall.update(rows)

    def close(self) -> None:
        self._bar.close()
        self._slots[self._slot] = False


class _PhaseBar:
    def __init__(self, bar: tqdm) -> None:
        self._bar = bar

    def advance(self, steps: int) -> None:
        self._bar.update(steps)

    def close(self) -> None:
        self._bar.close()


# Off a terminal, a table's or phase's line at most this often (and always when it starts
# and ends): a line every few seconds shows a long run is moving without flooding a log.
LOG_INTERVAL_SECONDS = 5.0
# What a log line says: rows (or steps) done of the total, the rate and the time left.
_LOG_FORMAT = ("copier: {desc}: {n_fmt} of {total_fmt}{unit} ({percentage:.0f} %) in {elapsed}, {rate_fmt}, "
               "ETA {remaining}")


class _Lines(io.TextIOBase):
    """tqdm redraws a bar in place (a carriage return, then the bar); in a log, each redraw
    becomes a line of its own."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        for part in text.replace("\n", "\r").split("\r"):
            if part.strip():
                self._stream.write(part.rstrip() + "\n")
        self._stream.flush()
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


class TqdmProgress:
    """An overall bar (rows of all tables) above one bar per running table, and one per phase.

    With log=True (stderr is not a terminal, or a terminal of width 0) the same bars are
    printed as lines: when each starts and ends, and every LOG_INTERVAL_SECONDS in between."""

    def __init__(self, total_rows: int, *, log: bool = False) -> None:
        self._log = log
        self._out: io.TextIOBase | TextIO = _Lines(sys.stderr) if log else sys.stderr
        self._overall = self._bar(total_rows, "all tables", " rows", position=0, leave=not log)
        self._slots: list[bool] = []

    def _bar(self, total: int, desc: str, unit: str, position: int, leave: bool) -> tqdm:
        if self._log:  # no cursor movement, no bar: a line per update, each with the ETA
            return tqdm(total=total, desc=desc, unit=unit, file=self._out, position=0, leave=True,
                        mininterval=LOG_INTERVAL_SECONDS, miniters=1, bar_format=_LOG_FORMAT)
        return tqdm(total=total, desc=desc[:30], unit=unit, unit_scale=unit == " rows", position=position,
                    leave=leave, file=self._out, dynamic_ncols=True)

    def table(self, name: str, total: int) -> TableBar:
        slot = next((i for i, used in enumerate(self._slots) if not used), len(self._slots))
        if slot == len(self._slots):
            self._slots.append(True)
        self._slots[slot] = True
        return _TqdmBar(self._bar(total, name, " rows", slot + 1, False), self._overall, self._slots, slot)

    def phase(self, name: str, total: int) -> TableBar:
        return _PhaseBar(self._bar(total, name, " steps", len(self._slots) + 1, False))

    def note(self, line: str) -> None:
        if self._log:
            self._out.write(line + "\n")
        else:
            tqdm.write(line, file=sys.stderr)

    def close(self) -> None:
        self._overall.close()


def _terminal_width() -> int:
    """Columns of the terminal stderr is, or 0 when it is none (or one of width 0, as under `script`)."""
    if not sys.stderr.isatty():
        return 0
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        return 0


def make_progress(total_rows: int, *, quiet: bool) -> Progress:
    if quiet:
        return NullProgress(quiet)
    return TqdmProgress(total_rows, log=_terminal_width() == 0)
