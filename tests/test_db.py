"""The database binding: what `open_database` leaves open when it binds another database.

A connection nobody closed is closed only when CPython's cyclic collector frees it (an
sqlite3 connection is part of a reference cycle through its statement cache). These tests
run with that collector off, so that what was left open stays open and shows.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import peewee
import pytest
from playhouse.db_url import connect

from rintik_lite import db
from rintik_lite.db import close_database, database, open_database
from rintik_lite.models import Event, Quarantine, quarantine_digest
from tests.conftest import POSTGRES_URL, reset_postgres


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """The cyclic garbage collector off while the block runs (on again after, if it was)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def open_files(path: Path) -> list[str]:
    """This process's open files on the SQLite database `path` (its -wal and -shm too)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # the listing's own descriptor, closed by now
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(path)):
                found.append(target)
    return found


def sessions(application_name: str, seconds: float = 5.0) -> list[str]:
    """The PostgreSQL sessions of clients named `application_name` (state and last query),
    once those that were closed are gone: a backend leaves pg_stat_activity a moment after
    its client closed."""
    db = connect(POSTGRES_URL)
    try:
        deadline = time.monotonic() + seconds
        while True:
            rows = db.execute_sql(
                "SELECT state, query FROM pg_stat_activity WHERE application_name = %s",
                (application_name,),
            ).fetchall()
            if not rows or time.monotonic() >= deadline:
                return [f"{state}: {query}" for state, query in rows]
            time.sleep(0.02)
    finally:
        db.close()


class Watched:
    """A fresh database of one kind, and what this process has open on it: the SQLite
    file's descriptors, or the PostgreSQL sessions that carry its URL's application_name."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.path = folder / "watched.db"
        self.name = f"rintik-test-{uuid.uuid4().hex[:12]}"
        if kind == "sqlite":
            self.url = f"sqlite:///{self.path}"
        else:
            self.url = f"{reset_postgres()}&application_name={self.name}"
        self.kind = kind

    def left_open(self) -> list[str]:
        return open_files(self.path) if self.kind == "sqlite" else sessions(self.name)


KINDS = ["sqlite", "postgresql"]


@pytest.mark.parametrize("kind", KINDS)
def test_binding_another_database_closes_the_connection_to_the_one_before(
    tmp_path: Path, kind: str
) -> None:
    first = Watched(kind, tmp_path)
    with no_cyclic_gc():
        open_database(first.url)
        assert Event.select().count() == 0  # this thread's connection, and the checkpointer's
        open_database(f"sqlite:///{tmp_path / 'second.db'}")
        try:
            assert first.left_open() == []
        finally:
            close_database()


def test_a_new_sqlite_database_has_pages_of_8_kb(tmp_path: Path) -> None:
    """An event row (a 2 KB body and its columns) fills half a 4 KB page, so a 4 KB page
    holds one and an 8 KB page three (db.PAGE_SIZE): the event store is smaller, and each
    batch writes fewer pages."""
    path = tmp_path / "new.db"
    open_database(f"sqlite:///{path}")
    try:
        assert db.PAGE_SIZE == 8192
        assert database.execute_sql("PRAGMA page_size").fetchone()[0] == 8192
        assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        close_database()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == 8192  # in the file itself
    finally:
        conn.close()


def test_an_existing_sqlite_database_keeps_its_page_size(tmp_path: Path) -> None:
    """SQLite changes the page size of a database with content only by VACUUM (never in
    WAL mode): a ledger made with 4 KB pages opens, migrates and records as before."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("PRAGMA journal_mode = wal")
    conn.execute("CREATE TABLE older (x)")
    conn.commit()
    conn.close()
    open_database(f"sqlite:///{path}")
    try:
        assert database.execute_sql("PRAGMA page_size").fetchone()[0] == 4096
        store_one_event()
        assert [e.key for e in Event.select()] == ["k-1"]
    finally:
        close_database()


def store_one_event() -> None:
    """An event of key "k-1" in the bound database."""
    Event.create(
        key="k-1",
        event_type="compute.instance.exists",
        source="replay",
        received_at=datetime(2026, 12, 1, tzinfo=UTC),
        body="{}",
    )


def index_names() -> set[str]:
    """The indexes of the bound database (on PostgreSQL, of the schema it searches)."""
    if db.is_sqlite():
        sql = "SELECT name FROM sqlite_master WHERE type = 'index'"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    return {name for (name,) in database.execute_sql(sql).fetchall()}


def test_version_6_keeps_each_quarantined_body_once(db_url: str) -> None:
    """A database of version 5 may hold the same message quarantined several times: each
    body is then kept once, on its first row, with the attempts added up and the newest
    reason, and found by its digest from then on."""
    with database.atomic():  # as version 5 left the table
        database.execute_sql('DROP INDEX "quarantine_digest"')
        database.execute_sql("ALTER TABLE quarantine DROP COLUMN digest")
        db.SchemaVersion.update(version=5).execute()
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    for hours, body, reason, attempts in [
        (0, "{not json", "body is not JSON", 1),
        (1, "{other", "body is not JSON either", 2),
        (2, "{not json", "body is still not JSON", 2),
        (3, "{not json", "body is not JSON, again", 1),
    ]:
        Quarantine.insert(
            received_at=t0 + timedelta(hours=hours),
            source="amqp",
            reason=reason,
            body=body,
            attempts=attempts,
        ).execute()
    assert db.upgrade() == (5, db.SCHEMA_VERSION)
    kept = list(Quarantine.select().order_by(Quarantine.id))
    assert [(q.id, q.body, q.attempts, q.reason, q.received_at) for q in kept] == [
        (1, "{not json", 4, "body is not JSON, again", t0),
        (2, "{other", 2, "body is not JSON either", t0 + timedelta(hours=1)),
    ]
    assert [q.digest for q in kept] == [quarantine_digest(q.body) for q in kept]
    assert "quarantine_digest" in index_names()
    with pytest.raises(peewee.IntegrityError), database.atomic():
        Quarantine.create(
            received_at=t0, source="amqp", reason="r", body="x", digest=kept[0].digest
        )
    assert db.upgrade() == (db.SCHEMA_VERSION, db.SCHEMA_VERSION)


def test_version_5_drops_the_indexes_no_query_uses(db_url: str) -> None:
    """A new database never has them; one made by an earlier version loses them, and
    keeps its rows and every other index."""
    assert index_names() & set(db.UNUSED_INDEXES) == set()
    kept = index_names()
    assert {"event_key", "event_entity_id", "entity_project_id", "interval_entity_id"} <= kept
    store_one_event()
    with database.atomic():  # as versions 1 to 4 made them
        database.execute_sql('CREATE INDEX "event_event_type" ON "event" ("event_type")')
        database.execute_sql('CREATE INDEX "event_event_time" ON "event" ("event_time")')
        database.execute_sql('CREATE INDEX "entity_entity_type" ON "entity" ("entity_type")')
        db.SchemaVersion.update(version=4).execute()
    assert index_names() == kept | set(db.UNUSED_INDEXES)
    assert db.upgrade() == (4, db.SCHEMA_VERSION)
    assert index_names() == kept
    assert [e.key for e in Event.select()] == ["k-1"]
    assert db.upgrade() == (db.SCHEMA_VERSION, db.SCHEMA_VERSION)
