"""Progress display. The only module that imports tqdm; NullProgress when quiet or not a TTY."""

from __future__ import annotations

import sys
import time
from typing import Protocol

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


class _LineBar:
    def __init__(self, name: str, total: int, unit: str = "rows", verb: str = "loading") -> None:
        self._name, self._total, self._done, self._started = name, total, 0, time.monotonic()
        self._unit = unit
        _line(f"copier: {name}: {verb} {total:,} {unit}")

    def advance(self, rows: int) -> None:
        self._done += rows

    def close(self) -> None:
        _line(f"copier: {self._name}: {self._done:,} of {self._total:,} {self._unit} in "
              f"{time.monotonic() - self._started:.1f} s")


def _line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class LineProgress:
    """Where stderr is not a terminal (CI, nohup, a pipe): a line per table and per phase,
    so a long run shows it is moving without bars."""

    def table(self, name: str, total: int) -> TableBar:
        return _LineBar(name, total)

    def phase(self, name: str, total: int) -> TableBar:
        return _LineBar(name, total, "steps", "starting")

    def note(self, line: str) -> None:
        _line(line)

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


class TqdmProgress:
    """An overall bar (rows of all tables) above one bar per running table."""

    def __init__(self, total_rows: int) -> None:
        self._overall = tqdm(total=total_rows, desc="all tables", unit=" rows", unit_scale=True,
                             position=0, file=sys.stderr, dynamic_ncols=True)
        self._slots: list[bool] = []

    def table(self, name: str, total: int) -> TableBar:
        slot = next((i for i, used in enumerate(self._slots) if not used), len(self._slots))
        if slot == len(self._slots):
            self._slots.append(True)
        self._slots[slot] = True
        bar = tqdm(total=total, desc=name[:30], unit=" rows", unit_scale=True, position=slot + 1,
                   leave=False, file=sys.stderr, dynamic_ncols=True)
        return _TqdmBar(bar, self._overall, self._slots, slot)

    def phase(self, name: str, total: int) -> TableBar:
        bar = tqdm(total=total, desc=name[:30], unit=" steps", position=len(self._slots) + 1, leave=False,
                   file=sys.stderr, dynamic_ncols=True)
        return _PhaseBar(bar)

    def note(self, line: str) -> None:
        tqdm.write(line, file=sys.stderr)

    def close(self) -> None:
        self._overall.close()


def make_progress(total_rows: int, *, quiet: bool) -> Progress:
    if quiet:
        return NullProgress(quiet)
    if not sys.stderr.isatty():
        return LineProgress()
    return TqdmProgress(total_rows)
