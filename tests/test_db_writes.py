"""Writing and reading many rows in few statements: `db.insert_values`, `db.update_values`
and `services._select_rows_in`, on both databases, split over several statements, and on
SQLite also as an older SQLite does it (one statement a row, one step a row)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import peewee
import pytest

from rintik_lite import db, services
from rintik_lite.db import insert_values, update_values, write_transaction
from rintik_lite.models import Entity, Interval
from rintik_lite.services import INTERVAL_FIELDS, _select_rows_in
from tests.conftest import NOW, envelope

T0 = datetime(2026, 11, 1, tzinfo=UTC)

#: Text a JSON round trip through SQLite must give back exactly.
AWKWARD = [
    'quote " and backslash \\ and \\"',
    "tab\tnewline\ncarriage\rbell\x07escape\x1bunit\x1f",
    "é ü 東京 🚀",
    '{"looks": ["like", "json"], "n": 12345678901234567890}',
    "[1, 2]",
    "",
    "null",
]


@pytest.fixture(params=["new", "old"])
def sqlite_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """SQLite as it is here, or as an SQLite before UPDATE ... FROM (3.33) and built-in
    JSON (3.38) would be used: the statement a row that those replace."""
    if request.param == "old":
        monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    return str(request.param)


@pytest.fixture
def small_statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A variable limit of 25, so that 60 rows of 8 columns take 20 statements."""
    monkeypatch.setattr(db, "_VARIABLE_LIMIT", [25])
    yield


def interval_row(n: int, project: str = "p") -> tuple[Any, ...]:
    start = Interval.start.db_value(T0 + timedelta(hours=n))
    attributes = json.dumps({"n": n, "text": AWKWARD[n % len(AWKWARD)]})
    return ("instance", project, f"i-{n:03d}", start, None, start, f"vm {n}", attributes)


def change_intervals(changes: list[tuple[Any, ...]]) -> None:
    """(end, last_event, name, attributes, entity_id, start) of each interval to change."""
    update_values(
        Interval, ("end", "last_event", "name", "attributes"), changes, by=("entity_id", "start")
    )


def stored_intervals() -> dict[str, tuple[Any, ...]]:
    rows = Interval.select().order_by(Interval.entity_id)
    return {r.entity_id: (r.project_id, r.end, r.last_event, r.name, r.attributes) for r in rows}


def test_variable_limit_is_the_librarys(sqlite_url: str) -> None:
    db._VARIABLE_LIMIT.clear()
    limit = db._variable_limit()
    connection = sqlite3.connect(":memory:")
    assert limit == connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) >= 999


@pytest.mark.parametrize("split", [False, True], ids=["one statement", "20 statements"])
def test_many_rows_inserted_updated_and_upserted_exactly(
    db_url: str, split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if split:
        monkeypatch.setattr(db, "_VARIABLE_LIMIT", [25])
    rows = [interval_row(n) for n in range(60)]
    with write_transaction():
        insert_values(Interval, INTERVAL_FIELDS, rows)
    assert Interval.select().count() == 60

    # Close 40 of them, each with values of its own, found by resource and start.
    ends = {n: T0 + timedelta(days=3, minutes=n) for n in range(0, 60, 3)}
    ends |= {n: T0 + timedelta(days=4, minutes=n) for n in range(1, 60, 3)}
    changes = [
        (
            Interval.end.db_value(end),
            Interval.last_event.db_value(end),
            f"renamed {n} {AWKWARD[n % len(AWKWARD)]}",
            json.dumps({"closed": n}),
            f"i-{n:03d}",
            Interval.start.db_value(T0 + timedelta(hours=n)),
        )
        for n, end in sorted(ends.items())
    ]
    with write_transaction():
        change_intervals(changes)
    stored = stored_intervals()
    assert len(stored) == 60
    for n in range(60):
        project, end, last_event, name, attributes = stored[f"i-{n:03d}"]
        assert project == "p"
        if n in ends:
            assert (end, last_event) == (ends[n], ends[n])
            assert name == f"renamed {n} {AWKWARD[n % len(AWKWARD)]}"
            assert attributes == {"closed": n}
        else:
            assert end is None and last_event == T0 + timedelta(hours=n)
            assert name == f"vm {n}"
            assert attributes == {"n": n, "text": AWKWARD[n % len(AWKWARD)]}

    # Upsert: 30 resources stored, 30 new, in one call.
    fields = ("entity_id", "entity_type", "project_id", "deleted", "last_key", "state")
    first = [(f"e-{n:03d}", "volume", "p", False, "k1", json.dumps({"v": 1})) for n in range(30)]
    with write_transaction():
        insert_values(Entity, fields, first)
    second = [(f"e-{n:03d}", "volume", "q", n % 2 == 0, "k2", f'{{"v": {n}}}') for n in range(60)]
    with write_transaction():
        insert_values(Entity, fields, second, update=fields[1:])
    entities = {e.entity_id: e for e in Entity.select()}
    assert len(entities) == 60
    for n in range(60):
        e = entities[f"e-{n:03d}"]
        assert (e.project_id, e.deleted, e.last_key, e.state) == ("q", n % 2 == 0, "k2", {"v": n})


def test_older_sqlite_gives_the_same_rows(
    sqlite_url: str, sqlite_kind: str, small_statements: None
) -> None:
    rows = [interval_row(n) for n in range(30)]
    changes = [
        (
            Interval.end.db_value(T0 + timedelta(days=2)),
            rows[n][5],
            "x",
            "{}",
            rows[n][2],
            rows[n][3],
        )
        for n in range(0, 30, 2)
    ]
    with write_transaction():
        insert_values(Interval, INTERVAL_FIELDS, rows)
        change_intervals(changes)
    stored = stored_intervals()
    assert [k for k, v in stored.items() if v[1] is not None] == [
        f"i-{n:03d}" for n in range(0, 30, 2)
    ]
    assert all(v[3] == "x" for k, v in stored.items() if v[1] is not None)
    assert stored["i-001"][3] == "vm 1"


def test_rows_read_in_one_give_the_text_back_exactly(db_url: str, small_statements: None) -> None:
    check_rows_read_back()


def test_rows_read_row_by_row_on_an_older_sqlite_are_the_same(
    sqlite_url: str, sqlite_kind: str, small_statements: None
) -> None:
    check_rows_read_back()


def check_rows_read_back() -> None:
    fields = ("entity_id", "entity_type", "project_id", "deleted", "last_key", "state")
    values = [
        (f"id {n} {text}", "image", "p", False, text, json.dumps({"t": text}))
        for n, text in enumerate(AWKWARD)
    ]
    with write_transaction():
        insert_values(Entity, fields, values)
    wanted = [v[0] for v in values] + ["not stored", 'also " not']
    got = _select_rows_in(("entity_id", "last_key", "state"), "entity", "entity_id", wanted)
    assert sorted(map(tuple, got)) == sorted((v[0], v[4], v[5]) for v in values)
    assert _select_rows_in(("entity_id",), "entity", "entity_id", ["nothing"]) == []


def test_a_batch_is_written_in_few_statements(sqlite_url: str) -> None:
    """The writer's statements are per batch, not per event: a statement that sqlite3 runs
    once a row hands the GIL away and waits to take it back every time
    (`db._statement_parts`). 400 resources created, then each deleted, changing its
    interval in place (`update_values`)."""
    from tests.test_services import instance

    def batch(event: str, hours: float, **extra: Any) -> list[services.Incoming]:
        return [
            services.Incoming(envelope(instance(event, hours, f"i-{n:04d}", **extra)))
            for n in range(400)
        ]

    statements: list[str] = []
    connection = db.database.connection()
    connection.set_trace_callback(statements.append)
    try:
        created = services.record_messages(batch("create.end", 1), NOW)
        written = len(statements)
        deleted = services.record_messages(batch("delete.end", 5, deleted=5), NOW)
    finally:
        connection.set_trace_callback(None)
    assert (created.applied, deleted.applied) == (400, 400)
    assert Interval.select().where(Interval.end.is_null(False)).count() == 400
    assert 0 < written < 30, statements[:5]
    assert 0 < len(statements) - written < 30, statements[written : written + 5]
    # All or nothing (`db._ALL_OR_NOTHING`): no statement journal to write. The resources
    # stored already are updated, not upserted (an upsert's DO UPDATE journals anyway).
    writes = [s for s in statements if s.startswith(("INSERT", "UPDATE"))]
    assert {s.split(" INTO ")[0].split(' "')[0] for s in writes} == {
        "INSERT OR ROLLBACK",
        "UPDATE OR ROLLBACK",
    }
    assert any(s.startswith('UPDATE OR ROLLBACK "entity"') for s in statements[written:])
    assert not any("ON CONFLICT" in s for s in writes)


def test_all_or_nothing_writes_the_same_rows_and_gives_the_whole_transaction_up(
    sqlite_url: str, sqlite_kind: str
) -> None:
    """On SQLite, `all_or_nothing` writes rows as without it (UPDATE ... FROM, or a
    statement a row before 3.33), and a row that breaks a constraint rolls the whole
    transaction back at once, not just its statement: raised as peewee's IntegrityError,
    the connection usable after."""
    rows = [interval_row(n) for n in range(30)]
    changes = [
        (Interval.end.db_value(T0 + timedelta(days=2)), rows[n][5], "x", "{}", *rows[n][2:4])
        for n in range(0, 30, 2)
    ]
    with write_transaction():
        insert_values(Interval, INTERVAL_FIELDS, rows, all_or_nothing=True)
        update_values(
            Interval,
            ("end", "last_event", "name", "attributes"),
            changes,
            by=("entity_id", "start"),
            all_or_nothing=True,
        )
    stored = stored_intervals()
    assert len(stored) == 30
    assert [k for k, v in stored.items() if v[1] is not None] == [
        f"i-{n:03d}" for n in range(0, 30, 2)
    ]
    assert all(v[3] == "x" for v in stored.values() if v[1] is not None)

    fields = ("entity_id", "entity_type", "project_id", "deleted", "last_key", "state")
    entity = ("e-1", "volume", "p", False, "k", "{}")
    in_transaction: list[bool] = []
    with pytest.raises(peewee.IntegrityError), write_transaction():
        insert_values(Entity, fields, [entity], all_or_nothing=True)
        try:
            other = ("e-2", *entity[1:])
            insert_values(Entity, fields, [other, entity], all_or_nothing=True)  # e-1 again
        finally:
            in_transaction.append(db.database.connection().in_transaction)
    assert in_transaction == [False]  # SQLite rolled it all back before raising
    assert Entity.select().count() == 0
    with write_transaction():
        insert_values(Entity, fields, [("e-3", *entity[1:])], all_or_nothing=True)
    assert [e.entity_id for e in Entity.select()] == ["e-3"]
