"""A load's rejects are held until the load stands: in memory up to a few megabytes, then
in a temporary file, so an append rerun that rejects every row does not grow memory."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

from copier.rejects import RejectList, RejectLog


def test_many_rejects_spill_to_disk_and_reach_the_reject_file_in_order(tmp_path: Path) -> None:
    rejects = RejectList()
    reason = "duplicate key value violates unique constraint \"t_pkey\" " + "x" * 120
    tracemalloc.start()
    try:
        for key in range(100_000):  # about 22 MB of JSON lines
            rejects.add("t", key, "name", f"value {key}", reason)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rejects.count == 100_000
    assert peak < 10 * 2**20, f"{peak / 2**20:.1f} MB held for 22 MB of rejects"
    log = RejectLog(tmp_path / "r.jsonl")
    log.write_lines(rejects.lines())
    log.close()
    lines = (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 100_000
    assert json.loads(lines[0]) == {"table": "t", "key": 0, "column": "name", "value": "'value 0'", "reason": reason}
    assert json.loads(lines[-1])["key"] == 99_999


def test_a_load_undone_forgets_its_rejects_and_takes_a_workers_lines(tmp_path: Path) -> None:
    rejects = RejectList()
    rejects.add("t", 1, None, None, "gone")
    rejects.clear()
    assert rejects.count == 0 and list(rejects.lines()) == []
    worker = RejectList()
    worker.add("t", (2, "b"), "c", b"\x00", "bad")
    rejects.extend(worker.lines())
    rejects.add("t", 3, None, None, "why")
    assert [json.loads(line)["key"] for line in rejects.lines()] == [[2, "b"], 3]
    assert list(RejectList().lines()) == []  # no reject: no file made
    log = RejectLog(tmp_path / "none.jsonl")
    log.write_lines(RejectList().lines())
    log.close()
    assert not (tmp_path / "none.jsonl").exists()


def test_rejects_by_reason_are_written_as_one_by_one(tmp_path: Path) -> None:
    # Rows a set query refused: the bulk writer's lines, written out here, are add()'s.
    rows = [(7, None, 'dup "k" \\ é\x01\n'), (8, "name", "null value"), (True, None, "a bool key"), ("k", None, "x")]
    bulk, single = RejectList(), RejectList()
    bulk.add_reasons('t"ä', rows)
    for key, column, reason in rows:
        single.add('t"ä', key, column, None, reason)
    expected = [
        '{"table": "t\\"ä", "key": 7, "column": null, "value": null, "reason": "dup \\"k\\" \\\\ é\\u0001\\n"}\n',
        '{"table": "t\\"ä", "key": 8, "column": "name", "value": "None", "reason": "null value"}\n',
        '{"table": "t\\"ä", "key": true, "column": null, "value": null, "reason": "a bool key"}\n',
        '{"table": "t\\"ä", "key": "k", "column": null, "value": null, "reason": "x"}\n']
    assert list(bulk.lines()) == expected
    assert list(single.lines()) == expected
    # Passed on whole (the file itself, or copied after lines already there), then to the log.
    first, second = RejectList(), RejectList()
    first.take(bulk)
    second.add("t", 1, None, None, "before")
    second.take(first)
    assert bulk.count == first.count == 0 and list(first.lines()) == []
    assert second.count == 5
    log = RejectLog(tmp_path / "r.jsonl")
    log.write_list(second)
    log.write_list(RejectList())
    log.close()
    assert (tmp_path / "r.jsonl").read_text(encoding="utf-8") == (
        '{"table": "t", "key": 1, "column": null, "value": null, "reason": "before"}\n' + "".join(expected))
    log = RejectLog(tmp_path / "none.jsonl")
    log.write_list(RejectList())
    log.close()
    assert not (tmp_path / "none.jsonl").exists()
