"""Lock waits announced: a statement of this run that waits for another session's lock
for more than a few seconds is named on stderr, once, with the table, the blocking
session's pid and its query; without this, a run blocked by an open transaction just
stops moving. Advisory: if its own connection fails, it stops watching, and the run goes on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

import anyio

from . import target
from .tasks import task_group

# Seconds a statement waits for a lock before it is announced, and between two looks.
ANNOUNCE_AFTER = 2.0
LOOK_EVERY = 1.0

# This run's sessions (its application_name in its database, minus the watcher itself)
# waiting on a lock for more than $1 seconds, with the relation they wait for and each
# session blocking them. Without the database, another run's waits elsewhere on the server
# were announced too, their tables only a number (regclass resolves in this database alone).
_WAITING = """
SELECT waiting.pid, blocker.pid AS blocker, left(blocker.query, 200) AS blocker_query,
       (SELECT l.relation::regclass::text FROM pg_locks l
        WHERE l.pid = waiting.pid AND NOT l.granted AND l.relation IS NOT NULL LIMIT 1) AS relation
FROM pg_stat_activity waiting
CROSS JOIN LATERAL unnest(pg_blocking_pids(waiting.pid)) AS blocking(pid)
JOIN pg_stat_activity blocker ON blocker.pid = blocking.pid
WHERE waiting.application_name = current_setting('application_name') AND waiting.pid <> pg_backend_pid()
  AND waiting.datname = current_database()
  AND waiting.wait_event_type = 'Lock' AND waiting.state_change < now() - make_interval(secs => $1)
"""


def describe_wait(relation: str | None, blocker: int, query: str | None) -> str:
    what = f"a lock on {relation}" if relation else "a lock"
    doing = f": {' '.join((query or '').split())}" if query else ""
    return (f"copier: waiting for {what} held by pid {blocker}{doing} (end that session, or let it finish; "
            "--lock-timeout 10s gives up instead)")


@asynccontextmanager
async def lock_waits_announced(dsn: str, note: Callable[[str], None]) -> AsyncIterator[None]:
    """Watch for the block's lock waits while it runs (each (waiter, blocker) said once)."""
    said: set[tuple[int, int]] = set()

    async def watch() -> None:
        with suppress(Exception):  # advisory: a lost connection ends the watching only
            async with target.connected(dsn) as connection:
                while True:
                    for pid, blocker, query, relation in await connection.fetch(_WAITING, ANNOUNCE_AFTER):
                        if (pid, blocker) not in said:
                            said.add((pid, blocker))
                            note(describe_wait(relation, blocker, query))
                    await anyio.sleep(LOOK_EVERY)

    async with task_group() as group:
        group.start_soon(watch)
        try:
            yield
        finally:
            group.cancel_scope.cancel()


__all__ = ["lock_waits_announced"]
