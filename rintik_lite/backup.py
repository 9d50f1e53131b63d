"""`rintik-lite db backup` and `db restore`: a consistent copy of the SQLite database.

Backup uses SQLite's online backup API (`sqlite3.Connection.backup`) in one step: it reads
the whole database inside one read transaction, so the copy is the database as of one
instant even while `rintik-lite run` keeps committing (in WAL mode readers and the writer
do not block each other). The copy is a single self-contained file (journal mode DELETE),
created 0600, checked (`PRAGMA quick_check`) and never written over an existing file.

Restore refuses while another process has the database open (`run`, the API, a command):
SQLite in WAL mode can leave WAL only when no other connection exists, which is exactly the
test. It checks the backup, keeps the current database beside it
(`<name>.before-restore-<UTC time>`), then copies the backup in with the same backup API.

PostgreSQL has its own tools; both commands print the pg_dump / pg_restore command instead.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rintik_lite.db import SCHEMA_VERSION, redact_url, sqlite_path
from rintik_lite.errors import DatabaseTooNew, InvalidInput, RintikError, ServiceUnavailable


class DatabaseInUse(RintikError):
    """The database is open in another process: stop `rintik-lite run` first."""


@dataclass(frozen=True)
class Copy:
    """What was copied: the file, its size, its schema version and its event count."""

    path: Path
    size: int
    schema_version: int
    events: int


def _sqlite_file(url: str) -> Path:
    path = sqlite_path(url)
    if path is not None:
        return path
    if url.startswith(("postgres://", "postgresql://")):
        raise InvalidInput(
            "the database is PostgreSQL: back it up with pg_dump and restore with pg_restore, "
            f"e.g. pg_dump --format=custom --file rintik.dump '{redact_url(url)}' and "
            f"pg_restore --clean --if-exists --dbname '{redact_url(url)}' rintik.dump "
            "(the password from ~/.pgpass or PGPASSWORD)"
        )
    raise InvalidInput(f"database.url {redact_url(url)!r} is not a SQLite file")


def _create_private(path: Path) -> None:
    """Create an empty file readable by its owner only; refuse an existing one."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        raise InvalidInput(f"{path} exists: a backup never overwrites; choose a new name") from None
    except FileNotFoundError:
        raise InvalidInput(f"folder {path.parent} does not exist") from None
    except PermissionError:
        raise InvalidInput(f"cannot create {path}: permission denied") from None


def _describe(connection: sqlite3.Connection, path: Path) -> Copy:
    """Check a database file and read its schema version and event count."""
    try:
        verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{path} is not a rintik-lite database: {exc}") from None
    if verdict != "ok":
        raise InvalidInput(f"{path} is damaged: {verdict}")
    if "schema_version" not in tables:
        raise InvalidInput(f"{path} is not a rintik-lite database (no schema_version table)")
    version = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
    events = (
        connection.execute("SELECT COUNT(*) FROM event").fetchone()[0] if "event" in tables else 0
    )
    return Copy(path, path.stat().st_size, int(version), int(events))


def backup(url: str, target: Path, busy_timeout_ms: int = 10000) -> Copy:
    """Copy the live SQLite database at `url` to `target` (a new file, 0600)."""
    source = _sqlite_file(url)
    if not source.exists():
        raise InvalidInput(f"database {source} does not exist")
    _create_private(target)
    try:
        with closing(sqlite3.connect(source, timeout=busy_timeout_ms / 1000)) as src:
            src.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            with closing(sqlite3.connect(target)) as dst:
                src.backup(dst)  # pages=-1: everything in one step, one read transaction
                dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
                copy = _describe(dst, target)
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise ServiceUnavailable(f"cannot back up {source}: {exc}") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    os.chmod(target, 0o600)
    return Copy(target, target.stat().st_size, copy.schema_version, copy.events)


def restore(url: str, backup_file: Path, busy_timeout_ms: int = 10000) -> tuple[Copy, Path | None]:
    """Replace the SQLite database at `url` with `backup_file`; return what was restored and
    where the replaced database was kept (None when there was none)."""
    target = _sqlite_file(url)
    if not backup_file.is_file():
        raise InvalidInput(f"backup {backup_file} does not exist")
    with closing(sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)) as src:
        restored = _describe(src, backup_file)
    if restored.schema_version > SCHEMA_VERSION:
        raise DatabaseTooNew(
            f"{backup_file} is at schema version {restored.schema_version}, but this "
            f"rintik-lite knows only up to {SCHEMA_VERSION}: upgrade rintik-lite first"
        )
    kept: Path | None = None
    if not target.exists():
        _create_private(target)
    with closing(sqlite3.connect(target, timeout=1)) as dst:
        _take_exclusively(dst, target)
        if dst.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]:
            kept = target.with_name(
                f"{target.name}.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
            )
            _create_private(kept)
            with closing(sqlite3.connect(kept)) as saved:
                dst.backup(saved)
        with closing(sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)) as src:
            src.backup(dst)
        dst.execute("PRAGMA journal_mode = WAL")
    os.chmod(target, 0o600)
    return Copy(target, target.stat().st_size, restored.schema_version, restored.events), kept


def _take_exclusively(connection: sqlite3.Connection, path: Path) -> None:
    """DatabaseInUse unless no other connection has the file open. Leaving WAL needs
    exclusive access, so it fails exactly when another process has the database open."""
    try:
        mode = connection.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
    except sqlite3.OperationalError:
        mode = "wal"
    if str(mode).lower() == "wal":
        raise DatabaseInUse(
            f"{path} is open in another process: stop `rintik-lite run` (and the TUI) "
            "before restoring"
        )
