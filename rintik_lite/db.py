"""The one database object, its pragmas, and the schema migrations.

`database` is a peewee DatabaseProxy, bound once at start-up by `open_database(url)` to
SQLite (WAL, busy timeout, foreign keys) or PostgreSQL. peewee keeps one connection per
thread, so the collector, API and scheduler threads each get their own.

Every write use case runs in `write_transaction()`: `BEGIN IMMEDIATE` on SQLite, so that a
writer takes the lock up front instead of failing half-way; a plain transaction elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import peewee
from playhouse import db_url

from rintik_lite.errors import DatabaseTooNew, ServiceUnavailable, SettingsError

database = peewee.DatabaseProxy()


def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///...` URL (None for other databases or `:memory:`)."""
    parsed = urlparse(url)
    if parsed.scheme != "sqlite":
        return None
    path = unquote(parsed.path)
    if path.startswith("/"):
        path = path[1:]  # sqlite:///rel.db -> rel.db ; sqlite:////abs.db -> /abs.db
    if not path or path == ":memory:":
        return None
    return Path(path)


def connect(url: str, busy_timeout_ms: int = 10000) -> peewee.Database:
    """Make (but do not bind) a database from a URL; raise SettingsError on a bad URL."""
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        path = sqlite_path(url)
        if path is not None and not path.exists():
            if not path.parent.exists():
                raise SettingsError(
                    f"bad value for database.url: folder {path.parent} does not exist"
                )
            # Created 0600: the ledger is business data.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        return peewee.SqliteDatabase(
            str(path) if path is not None else ":memory:",
            pragmas={
                "journal_mode": "wal",
                "busy_timeout": busy_timeout_ms,
                "foreign_keys": 1,
                "synchronous": "normal",
            },
            timeout=busy_timeout_ms / 1000,
            check_same_thread=False,
        )
    if scheme in ("postgres", "postgresql"):
        try:
            return db_url.connect(url)
        except ImportError:
            raise SettingsError(
                "database.url is PostgreSQL but psycopg2 is not installed: "
                "pip install 'rintik-lite[postgresql]'"
            ) from None
    raise SettingsError(
        f"bad value for database.url: {url!r} (expected sqlite:///... or postgresql://...)"
    )


def open_database(url: str, busy_timeout_ms: int = 10000, migrate: bool = True) -> peewee.Database:
    """Bind `database` to `url`, check it is reachable, and bring its schema up to date."""
    db = connect(url, busy_timeout_ms)
    database.initialize(db)
    try:
        database.connect(reuse_if_open=True)
    except peewee.OperationalError as exc:
        raise ServiceUnavailable(
            f"database {redact_url(url)} cannot be reached: {exc}".strip()
        ) from None
    if migrate:
        upgrade()
    return db


def close_database() -> None:
    """Close this thread's connection, if any; safe to call twice or after a failure."""
    if database.obj is None:
        return
    try:
        if not database.is_closed():
            database.close()
    except peewee.PeeweeException:
        pass


def redact_url(url: str) -> str:
    """The URL without its password, fit for logs and errors."""
    parsed = urlparse(url)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return url


def is_sqlite() -> bool:
    return isinstance(database.obj, peewee.SqliteDatabase)


def write_transaction() -> Any:
    """A transaction that takes the write lock at once (IMMEDIATE on SQLite)."""
    if is_sqlite():
        return database.atomic("IMMEDIATE")
    return database.atomic()


# --- migrations ----------------------------------------------------------------------------


class SchemaVersion(peewee.Model):
    version = peewee.IntegerField()

    class Meta:
        database = database
        table_name = "schema_version"


def _v1(db: peewee.Database) -> None:
    from rintik_lite import models

    db.create_tables(models.V1_TABLES)


def _v2(db: peewee.Database) -> None:
    """Billing: prices, invoices, their frozen lines, and the invoice number counter."""
    from rintik_lite import models

    db.create_tables(models.V2_TABLES)
    models.InvoiceCounter.insert(name="invoice", value=0).on_conflict_ignore().execute()


MIGRATIONS: list[Callable[[peewee.Database], None]] = [_v1, _v2]
SCHEMA_VERSION = len(MIGRATIONS)


def current_version() -> int:
    if not SchemaVersion.table_exists():
        return 0
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return 0 if row is None else int(row.version)


def upgrade() -> tuple[int, int]:
    """Apply the migrations this database lacks; return (version before, version after)."""
    with write_transaction():
        SchemaVersion.create_table(safe=True)
        before = current_version()
        if before > SCHEMA_VERSION:
            raise DatabaseTooNew(
                f"the database is at schema version {before}, but this rintik-lite knows only "
                f"up to {SCHEMA_VERSION}: upgrade rintik-lite"
            )
        for version in range(before + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version - 1](database.obj)
            SchemaVersion.delete().execute()
            SchemaVersion.create(version=version)
    return before, SCHEMA_VERSION
