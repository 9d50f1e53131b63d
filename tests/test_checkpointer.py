"""The WAL checkpointer: committed writes reach the database file from a thread of its own,
not from inside the writer's COMMIT."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

from rintik_lite import db
from rintik_lite.db import Checkpointer, close_database, database, open_database, write_transaction
from rintik_lite.models import VolumeType
from tests.conftest import NOW


def _wait_for(predicate, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _main_file_has(path: Path, tmp_path: Path, type_id: str) -> bool:
    """Whether the database file alone (without its WAL) holds the row: only a checkpoint
    copies committed pages from the WAL into it."""
    copy = tmp_path / f"copy-{time.monotonic_ns()}.db"
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    try:
        rows = conn.execute("SELECT 1 FROM volume_type WHERE type_id = ?", (type_id,)).fetchall()
    except sqlite3.OperationalError as exc:  # not even the schema is in the file yet
        assert "no such table" in str(exc)
        return False
    finally:
        conn.close()
    return bool(rows)


def test_a_commit_is_checkpointed_by_the_checkpointer_thread(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    open_database(f"sqlite:///{path}")
    try:
        checkpointer = Checkpointer._current
        assert checkpointer is not None and checkpointer.thread.is_alive()
        assert checkpointer.path == path
        # The writer's own checkpoints start only far past SQLite's default of 1000 pages.
        pages = database.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert pages == db.WAL_AUTOCHECKPOINT_PAGES
        before = checkpointer.checkpoints
        with write_transaction():
            VolumeType.create(type_id="t-1", name="ssd", updated_at=NOW)
        assert _wait_for(lambda: checkpointer.checkpoints > before)
        assert _wait_for(lambda: _main_file_has(path, tmp_path, "t-1"))
    finally:
        close_database()
        Checkpointer.stop_current()


def test_without_the_checkpointer_the_commit_stays_in_the_wal(tmp_path: Path) -> None:
    """The check above can fail: with no checkpointer and a small write, the row is only
    in the WAL."""
    path = tmp_path / "ledger.db"
    open_database(f"sqlite:///{path}")
    try:
        Checkpointer.stop_current()
        with write_transaction():
            VolumeType.create(type_id="t-2", name="hdd", updated_at=NOW)
        time.sleep(0.2)
        assert not _main_file_has(path, tmp_path, "t-2")
    finally:
        close_database()


def test_one_checkpointer_per_process_and_it_stops(tmp_path: Path) -> None:
    open_database(f"sqlite:///{tmp_path / 'a.db'}")
    first = Checkpointer._current
    assert first is not None
    open_database(f"sqlite:///{tmp_path / 'b.db'}")
    second = Checkpointer._current
    try:
        assert second is not None and second is not first
        assert not first.thread.is_alive()  # the database it served is no longer bound
        assert second.path == tmp_path / "b.db"
    finally:
        close_database()
        Checkpointer.stop_current()
    assert not second.thread.is_alive()
    assert Checkpointer._current is None
    Checkpointer.committed()  # nothing to wake: harmless
