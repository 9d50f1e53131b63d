"""Database faults under the running `run` process.

* Contention: another process holds a write lock for seconds; the collector waits and
  retries, acknowledges nothing meanwhile, and loses nothing (SQLite and PostgreSQL).
* A database that cannot be written: the SQLite file sits on a small tmpfs of the test's
  own, which is then filled up (ENOSPC: SQLite says "database or disk is full"). A
  read-only remount is not possible while the database is open (the kernel answers EBUSY),
  and chmod does nothing to a file already open: a full disk is the real way writes fail
  underneath a running process. The collector stops acknowledging (RabbitMQ still counts
  every message, ready or unacknowledged), /healthz and the log name the cause, and it
  resumes once space is freed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rintik_lite.db import close_database, database, open_database, sqlite_path
from tests.conftest import POSTGRES_URL, SCHEMA, Broker, reset_postgres
from tests.faults import workload
from tests.faults.harness import (
    RunProcess,
    declare,
    free_port,
    publish_all,
    queue_counts,
    wait_for,
    write_config,
)


def stored(url: str) -> int:
    open_database(url, migrate=False)
    try:
        return workload.counts()["events"]
    finally:
        close_database()


def stored_keys(url: str) -> set[str]:
    open_database(url, migrate=False)
    try:
        return {key for (key,) in database.execute_sql('SELECT "key" FROM "event"')}
    finally:
        close_database()


def _locker(url: str) -> subprocess.Popen[str]:
    """Another process that takes the write lock, says "locked", and holds it until a line
    comes on its standard input (or 30 s pass)."""
    path = sqlite_path(url)
    if path is not None:
        code = (
            "import sqlite3, sys, time\n"
            f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "db.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "db.execute('ROLLBACK')\n"
        )
    else:
        code = (
            "import sys\n"
            "from playhouse.db_url import connect\n"
            f"db = connect({POSTGRES_URL!r})\n"
            "with db.atomic():\n"
            f"    db.execute_sql('LOCK TABLE {SCHEMA}.event IN EXCLUSIVE MODE')\n"
            "    print('locked', flush=True)\n"
            "    sys.stdin.readline()\n"
        )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "locked"
    return process


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_write_lock_held_by_another_process(tmp_path: Path, broker: Broker, kind: str) -> None:
    url = f"sqlite:///{tmp_path / 'rintik.db'}" if kind == "sqlite" else reset_postgres()
    messages = workload.stream(total=600, instances=20, volumes=10, projects=2, seed=3)
    distinct = workload.distinct(messages)
    port = free_port()
    sections = {"database": {"busy_timeout_ms": 200}}
    run = RunProcess(write_config(tmp_path / "rintik.toml", broker, url, port, sections), port)
    declare(broker)
    try:
        run.start()
        publish_all(broker, messages[:200])
        first = workload.distinct(messages[:200])
        wait_for(lambda: stored(url) >= first, 30, "the first messages stored")
        locker = _locker(url)
        started = time.monotonic()
        try:
            publish_all(broker, messages[200:])
            if kind == "sqlite":  # the busy timeout expires, again and again
                wait_for(lambda: "database is locked; not acknowledged" in run.text, 30)
            else:  # PostgreSQL has no busy timeout: the INSERT just waits for the lock
                time.sleep(1.0)
            during = stored(url) if kind == "sqlite" else None  # PostgreSQL readers wait too
            held = queue_counts(broker)  # nothing acknowledged while the lock is held
        finally:
            assert locker.stdin is not None
            locker.stdin.write("release\n")
            locker.stdin.close()
            locker.wait(30)
        wait_for(lambda: stored(url) >= distinct, 60, "every event stored")
        waited = time.monotonic() - started
        assert run.terminate() == 0
    finally:
        run.stop_quietly()
    print(f"\n{kind} write lock: held {held} (ready, unacked) meanwhile; done after {waited:.1f} s")
    assert sum(held) == len(messages) - 200  # ready or unacknowledged: none acknowledged
    if kind == "sqlite":
        assert during is not None and during < distinct
        assert "database is locked; not acknowledged, retrying" in run.text
    open_database(url, migrate=False)
    counts = workload.counts()
    close_database()
    assert counts == {"events": distinct, "distinct_keys": distinct, "quarantined": 0}
    assert broker.queue_depth() == 0
    assert "Traceback" not in run.text


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (ours, removed after)."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the test (root is needed): {mounted.stderr}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30, check=False)


def fill(folder: Path) -> Path:
    """Take every free byte of the filesystem with one file; return it."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as out:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9):
            chunk = b"\0" * size
            try:
                while True:
                    out.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler


@pytest.mark.slow
def test_a_full_disk_stops_acknowledgements_until_space_returns(
    tmp_path: Path, broker: Broker
) -> None:
    messages = workload.stream(total=700, instances=20, volumes=10, projects=2, seed=4)
    distinct = workload.distinct(messages)
    with small_filesystem(tmp_path / "fs") as folder:
        url = f"sqlite:///{folder / 'rintik.db'}"
        port = free_port()
        run = RunProcess(write_config(tmp_path / "rintik.toml", broker, url, port), port)
        declare(broker)
        try:
            run.start()
            publish_all(broker, messages[:200])
            first = workload.distinct(messages[:200])
            wait_for(lambda: stored(url) >= first, 30, "the first messages stored")
            before = stored(url)
            filler = fill(folder)
            publish_all(broker, messages[200:])

            def failing() -> bool:
                status, body = run.health()
                return status == 503 and bool(body["database"]["error"])

            wait_for(failing, 30, "/healthz shows the database error")
            status, health = run.health()
            time.sleep(1.0)  # a few retries more
            ready, unacked = queue_counts(broker)
            during_keys = stored_keys(url)
            during = len(during_keys)
            filler.unlink()  # space again
            wait_for(lambda: stored(url) >= distinct, 60, "every event stored")
            wait_for(lambda: run.health()[0] == 200, 10, "healthy again")
            after = run.health()[1]
            assert run.terminate() == 0
        finally:
            run.stop_quietly()
        counts = None
        open_database(url, migrate=False)
        counts = workload.counts()
        close_database()
    error = health["database"]["error"]
    print(
        f"\nfull disk: /healthz {status} {health['database']}; queue held {ready} ready + "
        f"{unacked} unacknowledged of {len(messages) - 200} published during the fault; "
        f"events {before} -> {during} -> {counts['events']}"
    )
    assert health["healthy"] is False and health["database"]["writable"] is False
    assert "full" in error
    assert "database or disk is full; not acknowledged, retrying" in run.text
    # Nothing acknowledged before it was committed. A commit can still succeed while the
    # disk is full, into WAL pages the file already has (the WAL is not cut back below
    # `journal_size_limit`), and is then acknowledged: real commits, not a leak. One
    # consumer, one queue, acknowledgements cumulative in order: what left the queue during
    # the fault is the first `acked` messages published during it.
    fault = messages[200:]
    acked = len(fault) - (ready + unacked)
    assert 0 <= acked < len(fault)  # the fault held messages back
    assert {m["message_id"] for _, m in fault[:acked]} <= during_keys
    assert before <= during < distinct
    assert after["database"] == {"writable": True, "error": None}
    assert counts == {"events": distinct, "distinct_keys": distinct, "quarantined": 0}
    assert broker.queue_depth() == 0
    assert "Traceback" not in run.text
