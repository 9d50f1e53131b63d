"""The one database object, its pragmas, and the schema migrations.

`database` is a peewee DatabaseProxy, bound once at start-up by `open_database(url)` to
SQLite (WAL, busy timeout, foreign keys) or PostgreSQL. peewee keeps one connection per
thread, so the collector, API and scheduler threads each get their own.

Every write use case runs in `write_transaction()`: `BEGIN IMMEDIATE` on SQLite, so that a
writer takes the lock up front instead of failing half-way; a plain transaction elsewhere.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import pickle
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import unquote, urlparse

import peewee
from playhouse import db_url

from rintik_lite.errors import DatabaseTooNew, ServiceUnavailable, SettingsError

database = peewee.DatabaseProxy()
log = logging.getLogger(__name__)

PAGE_SIZE = 8192  # bytes, for a new SQLite database (`connect` says why)
WAL_AUTOCHECKPOINT_PAGES = 5_000  # 40 MB of 8 KB pages

V = TypeVar("V")


def in_memory(url: str) -> bool:
    """Whether `url` is an in-memory SQLite database (`sqlite://`, `sqlite:///:memory:`):
    each connection to one is a database of its own."""
    return urlparse(url).scheme == "sqlite" and sqlite_path(url) is None


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
                # Pages of 8 KB for a new database (an existing one keeps its own: SQLite
                # changes it only by VACUUM, and not in WAL mode). An event row is about
                # 2.5 KB (its body is 2 KB): a 4 KB page holds one and leaves the rest empty,
                # an 8 KB page holds three. Recording 25,000 bench events, alternated four
                # times in one process: 58-73 us an event against 78-91 (bench/RESULTS.md,
                # session 10). Must come before journal_mode.
                "page_size": PAGE_SIZE,
                "journal_mode": "wal",
                "busy_timeout": busy_timeout_ms,
                "foreign_keys": 1,
                "synchronous": "normal",
                # 32 MB of pages per connection (the default is 2 MB): the event store's
                # indexes on random keys outgrow 2 MB within a day, and every batch then
                # re-reads their pages from the OS. It is most of what `run` grows by while
                # it ingests (peak RSS during `bench/run.py ingest`: 119.5 MB with 2 MB, 149
                # with 32, 181 with 64). 64 MB was no faster: 10,000 events into a ledger of
                # 1M intervals, alternated three times, 2,543 / 2,986 / 1,959 events/s with
                # 32 MB against 2,763 / 2,371 / 1,883 with 64 (bench/RESULTS.md, session 13).
                "cache_size": -32_000,
                # The checkpointer thread (below) copies the WAL into the database while
                # the writer goes on; a writer checkpoints itself only past this many pages
                # (40 MB: the checkpointer fell behind), and a WAL that grew that large is
                # cut back to 64 MB once it is reset.
                "wal_autocheckpoint": WAL_AUTOCHECKPOINT_PAGES,
                "journal_size_limit": 64 * 2**20,
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
    """Bind `database` to `url`, check it is reachable, and bring its schema up to date.

    What this thread had open on the database bound before is closed first
    (`close_binding`): once unbound, nothing but a cyclic garbage collection would close it.
    Other threads' connections to it are theirs to close, each before it ends, as `run`'s
    threads do (`run` binds once, before it starts them).
    """
    db = connect(url, busy_timeout_ms)
    close_binding()
    database.initialize(db)
    try:
        database.connect(reuse_if_open=True)
    except peewee.OperationalError as exc:
        reason = " ".join(str(exc).split())  # psycopg2's messages span lines: one line
        raise ServiceUnavailable(
            f"database {redact_url(url)} cannot be reached: {reason}"
        ) from None
    if migrate:
        upgrade()
    path = sqlite_path(url) if isinstance(db, peewee.SqliteDatabase) else None
    if path is not None:
        Checkpointer.start(path)
    return db


class Checkpointer:
    """Copies a SQLite database's WAL into the database file in a thread of its own.

    SQLite's writer otherwise does it inside the COMMIT that takes the WAL past
    `wal_autocheckpoint` pages, fsyncs included: a third of replay's time (and what made
    ingest slow down as the database grew), with the second core idle. Here each committed
    write transaction (`write_transaction`) wakes this thread, which runs
    `PRAGMA wal_checkpoint(PASSIVE)` on a connection of its own:
    it never blocks the writer or a reader, SQLite's C code releases the GIL while it
    copies and syncs, and a WAL it has copied entirely is reused from its start by the
    next write. Durability is SQLite's own (the same checkpoint, by another connection).
    One per process, for the database `open_database` bound; stopped by `close_binding`
    (the next `open_database`, the end of a command), and at exit.
    """

    _current: Checkpointer | None = None
    _guard = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wake = threading.Event()
        self.stopping = False
        self.checkpoints = 0
        self.thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)

    @classmethod
    def start(cls, path: Path) -> Checkpointer:
        with cls._guard:
            if cls._current is not None:
                cls._current.stop()
            cls._current = cls(path)
            cls._current.thread.start()
            return cls._current

    @classmethod
    def stop_current(cls) -> None:
        with cls._guard:
            if cls._current is not None:
                cls._current.stop()
                cls._current = None

    @classmethod
    def committed(cls) -> None:
        """A write transaction committed: the WAL has grown."""
        current = cls._current
        if current is not None:
            current.wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping = True
        self.wake.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(str(self.path), check_same_thread=False)
        except sqlite3.Error as exc:  # the writers' own checkpoints still run
            log.warning("WAL checkpointer cannot open %s: %s", self.path, exc)
            return
        try:
            while True:
                self.wake.wait()
                self.wake.clear()
                if self.stopping:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as exc:  # busy, full disk...: the next commit wakes us
                    log.debug("WAL checkpoint of %s: %s", self.path, exc)
        finally:
            conn.close()


atexit.register(Checkpointer.stop_current)


def close_database() -> None:
    """Close this thread's connection, if any; safe to call twice or after a failure."""
    if database.obj is None:
        return
    try:
        if not database.is_closed():
            database.close()
    except peewee.PeeweeException:
        pass


def close_binding() -> None:
    """Close what `open_database` opened in this thread: its connection and the WAL
    checkpointer. `database` stays bound (a query connects again, with no checkpointer).
    Every command does it when it ends: an sqlite3 connection left open is closed only by a
    cyclic garbage collection (CPython's is in a reference cycle with its statement cache),
    which may come much later in a process that goes on (CliRunner, the tests), and the
    checkpointer's until exit. Safe to call twice, or with nothing bound."""
    close_database()
    Checkpointer.stop_current()


def redact_url(url: str) -> str:
    """The URL without its password, fit for logs and errors."""
    parsed = urlparse(url)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return url


def is_sqlite() -> bool:
    return isinstance(database.obj, peewee.SqliteDatabase)


_WRITING = threading.local()  # whether this thread's innermost write_transaction is whole


def whole_transaction() -> bool:
    """Whether this thread's innermost `write_transaction` is a transaction of its own, not
    a savepoint in a caller's (False outside any). The collector's batches are written all
    or nothing (`_ALL_OR_NOTHING`) only then: `services.record_read` gives its transaction
    up on any error (as do `record_api_message` and `retry_quarantined`), but inside a
    caller's (the importer's) it is a savepoint that `record_read` rolls back alone, then
    records again one message at a time, and `OR ROLLBACK` would end the caller's
    transaction with it."""
    return bool(getattr(_WRITING, "whole", False))


@contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction that takes the write lock at once (IMMEDIATE on SQLite).

    When SQLite's COMMIT fails (a full disk, an I/O error) SQLite has already rolled the
    transaction back, and peewee's own ROLLBACK then fails with "no transaction is active",
    which would hide the cause from the log and /healthz: the cause is raised instead.
    Inside another one it is a savepoint of it (`whole_transaction` tells which).
    """
    whole = database.transaction_depth() == 0  # peewee keeps no count of savepoints
    try:
        with database.atomic("IMMEDIATE") if is_sqlite() else database.atomic():
            outer = getattr(_WRITING, "whole", False)
            _WRITING.whole = whole
            try:
                yield
            finally:
                _WRITING.whole = outer
        Checkpointer.committed()
    except peewee.OperationalError as exc:
        if "no transaction is active" not in str(exc):
            raise
        cause = exc.__context__  # the ROLLBACK's own error, then the COMMIT's
        while cause is not None and (
            not isinstance(cause, peewee.PeeweeException) or "no transaction" in str(cause)
        ):
            cause = cause.__context__
        if cause is None:
            raise
        raise cause from None


@contextmanager
def read_snapshot() -> Iterator[None]:
    """Reads that all see the database as of one instant: a deferred transaction on SQLite
    (in WAL mode its first read takes the snapshot), REPEATABLE READ on PostgreSQL."""
    if is_sqlite():
        with database.atomic():
            yield
    else:
        with database.atomic(isolation_level="REPEATABLE READ"):
            yield


def digest(*inputs: Any) -> bytes:
    """A digest of plain values (rows as stored: text, numbers, dates, None; tuples and lists
    of them), the key of a `DigestCache` entry computed from them. Their pickle (several
    times faster than `repr`) reads back as the same values, so equal digests mean equal
    values; equal values may pickle differently (shared objects), which only costs a miss."""
    return hashlib.sha256(pickle.dumps(inputs, protocol=5)).digest()


class DigestCache(Generic[V]):
    """Values computed from rows of the database, by the `digest` of those rows as read
    (the reader reads them, cheaply, without converting them), or by a value as stored
    (a text): a change to any of them is a new key, so an entry is never stale, only
    unused. Bounded: the least recently used entries go first. Thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_RENDERED: dict[tuple[str, type], str] = {}


def rendered(name: str, build: Callable[[], Any]) -> str:
    """The SQL text of `build()`, a query without parameters, rendered once per kind of
    database (under `name`): peewee renders a query anew each time it runs, which costs
    more than running a small one. Run the text with `database.execute_sql(text)`, or
    `Model.raw(text)` for model instances."""
    key = (name, type(database.obj))
    text = _RENDERED.get(key)
    if text is None:
        text, params = build().sql()
        if params:
            raise ValueError(f"query {name!r} has parameters: it cannot be reused")
        _RENDERED[key] = text
    return text


class _Parameter:
    def __init__(self, name: str) -> None:
        self.name = name


_Rendered = tuple[str, list[Any], list[Callable[[Any], Any] | None]]


def _plain_text(field: peewee.Field) -> bool:
    """A text column read as it is stored (its `python_value` would only check it is text)."""
    return isinstance(field, peewee.CharField | peewee.TextField) and (
        type(field).python_value is peewee.Field.python_value
    )


class RowMemo:
    """Rows as converted by `Prepared.rows`, by the row as the driver returned it: the same
    stored row is converted (dates parsed, JSON decoded) once, not on every read. Exact,
    since a conversion depends on the stored values alone; shared by the statements that
    select the same columns (`Prepared(..., memo=)`). The converted rows are shared between
    readers: they must never be changed (no reader changes a row's values or its JSON
    attributes). At most `size` rows; all are dropped when it is reached."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.columns: list[str] | None = None
        self._rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, raw: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return self._rows.get(raw)

    def put(self, raw: tuple[Any, ...], row: tuple[Any, ...]) -> None:
        if len(self._rows) >= self.size:
            self._rows.clear()
        self._rows[raw] = row


class Prepared:
    """A query with named parameters, rendered once per kind of database: for the reads
    the API answers many times a second, where rendering the query anew costs more than
    running it. `build` gets one placeholder per name, as keyword arguments (use them where
    a value goes: `Interval.project_id == project_id`; constants stay constants);
    `rows(**values)` runs the text with the values (already in their database form:
    `Field.db_value`) and returns the rows with each selected field's `python_value`
    applied, as the query's `.tuples()` would (through `memo`, when given)."""

    def __init__(self, build: Callable[..., Any], *names: str, memo: RowMemo | None = None) -> None:
        self.build = build
        self.names = names
        self.memo = memo
        self._rendered: dict[type, _Rendered] = {}
        self._columns: list[str] = []

    def _render(self) -> _Rendered:
        kind = type(database.obj)
        rendered = self._rendered.get(kind)
        if rendered is None:
            query = self.build(
                **{n: peewee.Value(_Parameter(n), converter=False) for n in self.names}
            )
            text, params = query.sql()
            converters: list[Callable[[Any], Any] | None] = [
                c.python_value if isinstance(c, peewee.Field) and not _plain_text(c) else None
                for c in query._returning
            ]
            rendered = (text, params, converters)
            self._rendered[kind] = rendered
            self._columns = [getattr(c, "name", str(c)) for c in query._returning]
            if self.memo is not None:
                if self.memo.columns is None:
                    self.memo.columns = list(self._columns)
                if self.memo.columns != self._columns:
                    raise ValueError("statements sharing a RowMemo must select the same columns")
        return rendered

    def columns(self) -> list[str]:
        """The names of the selected columns, in order."""
        self._render()
        return list(self._columns)

    def _run(self, values: dict[str, Any]) -> tuple[Any, list[Callable[[Any], Any] | None]]:
        text, params, converters = self._render()
        bound = [values[p.name] if isinstance(p, _Parameter) else p for p in params]
        return database.execute_sql(text, bound), converters

    def models(self, model: type[peewee.Model], **values: Any) -> list[Any]:
        """The rows as instances of `model` (the query selects its fields), as a select of
        the model makes them, no field dirty; without peewee's raw query and cursor
        wrapper, which cost more than the read of a row."""
        names = self.columns()
        found = []
        for row in self.rows(**values):
            instance = model(__no_default__=1, **dict(zip(names, row, strict=True)))
            instance._dirty.clear()
            found.append(instance)
        return found

    def raw(self, **values: Any) -> list[tuple[Any, ...]]:
        """The rows as the driver returns them (no `python_value`)."""
        cursor, _ = self._run(values)
        return list(cursor.fetchall())

    def rows(self, **values: Any) -> list[tuple[Any, ...]]:
        cursor, _ = self._run(values)
        return self.convert(cursor.fetchall())

    def convert(self, raws: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Rows as `raw` returned them, converted as `rows` returns them."""
        _, _, converters = self._render()
        converted = [(i, c) for i, c in enumerate(converters) if c is not None]
        memo = self.memo
        rows = []
        for raw in raws:
            row = memo.get(raw) if memo is not None else None
            if row is None:
                fields = list(raw)
                for i, convert in converted:
                    if fields[i] is not None:
                        fields[i] = convert(fields[i])
                row = tuple(fields)
                if memo is not None:
                    memo.put(raw, row)
            rows.append(row)
        return rows


#: What `all_or_nothing` does in `insert_values` and `update_values`: on SQLite, a row
#: that breaks a constraint rolls the whole transaction back (`OR ROLLBACK`), rather than
#: the statement alone. For statements whose transaction is given up on any error anyway
#: (the collector's batches, in a `whole_transaction`). Undoing one statement alone needs
#: a statement journal: SQLite saves there every page the statement changes that the
#: transaction had changed already, spilled to a temporary file past 64 KB. Recording
#: 20,000 of the replay bench's events wrote 148 MB of it, in 17,840 writes (strace), beside
#: 100 MB of WAL; with `OR ROLLBACK`, none. Recording the bench's 50,000 events alone, this
#: against the code before, alternated ten times (bench/RESULTS.md, session 17): faster in
#: nine, a median of 3.35 s against 3.82 s, and the same ledger; with stored resources
#: updated a few hundred a statement (`services._save_states` says why), six times on a VM
#: slower by then: faster in four, 4.04 s against 4.42 s.
_ALL_OR_NOTHING = "OR ROLLBACK"


def insert_values(
    model: type[peewee.Model],
    names: Sequence[str],
    values: Sequence[tuple[Any, ...]],
    update: Sequence[str] = (),
    ignore: bool = False,
    all_or_nothing: bool = False,
) -> None:
    """INSERT rows already in their database form (one tuple per row of the fields `names`,
    in that order, each value as the field's `db_value` returns it) with a few multi-row
    VALUES statements (on SQLite one per `_statement_parts`, which says why not
    `executemany`), where `insert_many` renders every value into SQL text. Fields left out get
    no Python-side default. With `update`, a row whose primary key exists updates those
    fields instead (`ON CONFLICT ... DO UPDATE`, SQLite >= 3.24 and PostgreSQL); with
    `ignore`, a row that would break a unique constraint is left out (`ON CONFLICT DO
    NOTHING`); with `all_or_nothing`, see `_ALL_OR_NOTHING`. Driver errors are raised as
    peewee's, as any query's."""
    if not values:
        return
    meta = model._meta
    fields = [meta.fields[name] for name in names]
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    verb = f"INSERT {_ALL_OR_NOTHING}" if all_or_nothing and is_sqlite() else "INSERT"
    # Names come from the model, values are parameters.
    sql = f'{verb} INTO "{meta.table_name}" ({columns}) VALUES '
    conflict = ""
    if update:
        changes = ", ".join(
            f'"{c}" = EXCLUDED."{c}"' for c in (meta.fields[n].column_name for n in update)
        )
        conflict = f' ON CONFLICT ("{meta.primary_key.column_name}") DO UPDATE SET {changes}'
    elif ignore:
        conflict = " ON CONFLICT DO NOTHING"
    with peewee.__exception_wrapper__:
        cursor = database.cursor()
        if is_sqlite():
            _execute_in_parts(cursor, values, len(fields), lambda rows: f"{sql}{rows}{conflict}")
        else:
            from psycopg2.extras import execute_values  # type: ignore[import-untyped]

            execute_values(cursor, f"{sql}%s{conflict}", values, page_size=len(values))


def update_rows(
    model: type[peewee.Model], rows: Sequence[Mapping[str, Any]], by: Sequence[str] = ()
) -> None:
    """UPDATE one row per dict (field name -> new value, all with the same fields), found by
    the fields `by` the dict also holds (the primary key when `by` is empty), with one
    prepared statement run for every row: `insert_values`' counterpart for rows that each
    get different values."""
    if not rows:
        return
    keys = _keys(model, by)
    fields = [model._meta.fields[name] for name in rows[0] if name not in {k.name for k in keys}]
    values = [tuple(f.db_value(row[f.name]) for f in (*fields, *keys)) for row in rows]
    update_values(model, [f.name for f in fields], values, by)


def update_values(
    model: type[peewee.Model],
    names: Sequence[str],
    values: Sequence[tuple[Any, ...]],
    by: Sequence[str] = (),
    all_or_nothing: bool = False,
) -> None:
    """`update_rows` of rows already in their database form: one tuple per row of the new
    values of the fields `names`, then of the fields `by` that find it, in that order.
    With `all_or_nothing`, see `_ALL_OR_NOTHING`."""
    if not values:
        return
    verb = f"UPDATE {_ALL_OR_NOTHING}" if all_or_nothing and is_sqlite() else "UPDATE"
    if is_sqlite() and sqlite3.sqlite_version_info >= (3, 33, 0):  # UPDATE ... FROM
        _update_from_values(model, names, values, by, verb)
        return
    mark = _mark()
    changes = ", ".join(f'"{model._meta.fields[n].column_name}" = {mark}' for n in names)
    sql = f'{verb} "{model._meta.table_name}" SET {changes}{_where(_keys(model, by))}'
    _run_many(sql, values)


def _update_from_values(
    model: type[peewee.Model],
    names: Sequence[str],
    values: Sequence[tuple[Any, ...]],
    by: Sequence[str],
    verb: str = "UPDATE",
) -> None:
    """`update_values` on SQLite: `UPDATE ... FROM (VALUES ...)`, a few statements for all
    the rows rather than one run per row (`_statement_parts` says why). SQLite finds each
    row through an index on `by` (its plan scans the VALUES and searches the table). Each
    tuple must find a row of its own: were two to find the same one, SQLite would update
    it from either."""
    table = model._meta.table_name
    columns = [model._meta.fields[n].column_name for n in names]
    keys = [k.column_name for k in _keys(model, by)]
    changes = ", ".join(f'"{c}" = v.column{i}' for i, c in enumerate(columns, 1))
    found = " AND ".join(
        f'"{table}"."{k}" = v.column{i}' for i, k in enumerate(keys, len(columns) + 1)
    )

    def statement(rows: str) -> str:
        return f'{verb} "{table}" SET {changes} FROM (VALUES {rows}) AS v WHERE {found}'

    with peewee.__exception_wrapper__:
        _execute_in_parts(database.cursor(), values, len(columns) + len(keys), statement)


def _execute_in_parts(
    cursor: Any, values: Sequence[tuple[Any, ...]], width: int, statement: Callable[[str], str]
) -> None:
    """Run `statement(rows)` once per `_statement_parts` of `values` (rows of `width`
    parameters each), `rows` being that part's `(?, ...), (?, ...)`, bound to its values."""
    row = "(" + ", ".join("?" * width) + ")"
    for part in _statement_parts(values, width):
        sql = statement(", ".join([row] * len(part)))
        cursor.execute(sql, [value for each in part for value in each])


def _statement_parts(
    values: Sequence[tuple[Any, ...]], width: int
) -> Iterator[Sequence[tuple[Any, ...]]]:
    """`values` (rows of `width` parameters each) in parts as large as one SQLite statement
    may bind (`SQLITE_LIMIT_VARIABLE_NUMBER`: 32,766 since SQLite 3.32, 999 before).

    Why not `executemany`: sqlite3 releases the GIL around every `sqlite3_step`, one a row
    there, and must take it back after each. While another thread runs Python (the
    collector's consumer, reading the next batch), taking it back waits up to the switch
    interval (5 ms), so the writer spent the consumer's whole reading time waiting and the
    two threads did not overlap at all (measured: a writer making 3 such steps an event
    took, beside a thread reading, as long as the two one after the other: bench/RESULTS.md,
    session 9). One statement for many rows takes the GIL back once."""
    per = max(1, _variable_limit() // width)
    for start in range(0, len(values), per):
        yield values[start : start + per]


_VARIABLE_LIMIT: list[int] = []  # the SQLite library's, read once (it is the same for all)


def _variable_limit() -> int:
    if not _VARIABLE_LIMIT:
        limit = database.connection().getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        _VARIABLE_LIMIT.append(limit)
    return _VARIABLE_LIMIT[0]


def delete_values(
    model: type[peewee.Model], values: Sequence[tuple[Any, ...]], by: Sequence[str] = ()
) -> None:
    """DELETE the row each tuple finds by its values of the fields `by` (the primary key
    when empty), in their database form, with one prepared statement run for every row."""
    if not values:
        return
    sql = f'DELETE FROM "{model._meta.table_name}"{_where(_keys(model, by))}'  # noqa: S608
    _run_many(sql, values)


def _mark() -> str:
    return "?" if is_sqlite() else "%s"


def _keys(model: type[peewee.Model], by: Sequence[str]) -> list[peewee.Field]:
    return [model._meta.fields[name] for name in by] or [model._meta.primary_key]


def _where(keys: Sequence[peewee.Field]) -> str:
    return " WHERE " + " AND ".join(f'"{k.column_name}" = {_mark()}' for k in keys)


def _run_many(sql: str, values: Sequence[tuple[Any, ...]]) -> None:
    """Run `sql` once per tuple of parameters, one prepared statement for all."""
    with peewee.__exception_wrapper__:
        cursor = database.cursor()
        if is_sqlite():
            cursor.executemany(sql, values)
        else:
            from psycopg2.extras import execute_batch  # type: ignore[import-untyped]

            execute_batch(cursor, sql, values, page_size=len(values))


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


def _v3(db: peewee.Database) -> None:
    """Billing settings changed over the API (tax, currency, company name and address)."""
    from rintik_lite import models

    db.create_tables(models.V3_TABLES)


def _v4(db: peewee.Database) -> None:
    """`invoice.rated_from`: the digest of what a closed invoice's lines were rated from."""
    # v2 made it, on a database created since (get_columns would read PostgreSQL's public
    # schema, not the one the search path names).
    columns = db.execute_sql("SELECT * FROM invoice WHERE 1 = 0").description
    if "rated_from" not in {column[0] for column in columns}:
        db.execute_sql("ALTER TABLE invoice ADD COLUMN rated_from VARCHAR(64)")


#: The indexes of versions 1 to 4 that no query uses (`_v5`).
UNUSED_INDEXES = ("event_event_type", "event_event_time", "entity_entity_type")


def _v5(db: peewee.Database) -> None:
    """The indexes no query uses dropped, as each costs every write: recording 10,000
    notifications into a ledger of 1M intervals took 138-142 us an event without these
    three, 147-159 with them; the replay bench's 50,000, 3.69-3.83 s of CPU against
    3.92-4.00 (bench/RESULTS.md, session 16)."""
    for name in UNUSED_INDEXES:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')


def _v6(db: peewee.Database) -> None:
    """`quarantine.digest`: a message quarantined again (redelivered after a crash, replayed
    twice, retried) is counted on its row instead of added as another."""
    # v1 made it, on a database created since (as `_v4`'s column).
    columns = db.execute_sql("SELECT * FROM quarantine WHERE 1 = 0").description
    if "digest" not in {column[0] for column in columns}:
        db.execute_sql("ALTER TABLE quarantine ADD COLUMN digest VARCHAR(64)")
    digest_quarantine()
    db.execute_sql(
        'CREATE UNIQUE INDEX IF NOT EXISTS "quarantine_digest" ON "quarantine" ("digest")'
    )


def digest_quarantine() -> int:
    """Give each quarantined message stored without a digest (before schema version 6, or
    by hand) its `quarantine_digest`, and keep each body once: a row whose body another
    row holds is merged into that one (attempts added up, the newer reason, the earlier
    time received) and deleted. Returns how many rows were merged away. Run it inside a
    write transaction."""
    from rintik_lite.models import Quarantine as Q
    from rintik_lite.models import quarantine_digest

    known = dict(Q.select(Q.digest, Q.id).where(Q.digest.is_null(False)).tuples())
    merged = last = 0
    while True:  # a page of bodies at a time: a flood of bad messages may be large
        page = list(
            Q.select(Q.id, Q.body)
            .where(Q.digest.is_null() & (Q.id > last))
            .order_by(Q.id)
            .limit(500)
            .tuples()
        )
        for row_id, body in page:
            key = quarantine_digest(body)
            into = known.setdefault(key, row_id)
            if into == row_id:
                Q.update(digest=key).where(Q.id == row_id).execute()
                continue
            both = Q.select(Q.id, Q.received_at, Q.reason, Q.attempts).where(
                Q.id.in_([into, row_id])
            )
            older, newer = sorted(both, key=lambda q: q.id)
            Q.update(
                attempts=older.attempts + newer.attempts,
                reason=newer.reason,
                received_at=min(older.received_at, newer.received_at),
            ).where(Q.id == into).execute()
            Q.delete().where(Q.id == row_id).execute()
            merged += 1
        if not page:
            return merged
        last = page[-1][0]


MIGRATIONS: list[Callable[[peewee.Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6]
SCHEMA_VERSION = len(MIGRATIONS)


def current_version() -> int:
    if not SchemaVersion.table_exists():
        return 0
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return 0 if row is None else int(row.version)


def upgrade() -> tuple[int, int]:
    """Apply the migrations this database lacks; return (version before, version after)."""
    with write_transaction():
        if not is_sqlite():
            # Two processes started at once (competing consumers) would both create the
            # tables, and one would fail; the second waits here, then finds them made.
            database.execute_sql(
                "SELECT pg_advisory_xact_lock(hashtext('rintik-lite migrations'), "
                "hashtext(coalesce(current_schema(), '')))"
            )
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
