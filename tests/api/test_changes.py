"""`changes.Unchanged`: what tells a thread that something was committed since its last
request. The token's counters start afresh with each connection, so the connection itself
is part of what is compared."""

from __future__ import annotations

from rintik_lite.api.changes import Unchanged, change_token
from rintik_lite.db import connect, database


def test_a_thread_on_a_new_connection_forgets_answers_though_the_token_is_the_same(
    sqlite_url: str,
) -> None:
    unchanged: Unchanged[str] = Unchanged(4)
    database.close()  # this thread's next read opens a connection of its own
    kept = unchanged.start()
    unchanged.add(b"invoice-1", "answer", kept)
    assert unchanged.get(b"invoice-1", unchanged.start()) == "answer"
    _, before = change_token()

    database.close()  # e.g. the server thread's connection was lost and opened again
    other = connect(sqlite_url)
    try:
        with other.atomic():  # meanwhile another process commits
            other.execute_sql('INSERT INTO "schema_version" ("version") VALUES (0)')
    finally:
        other.close()
    generation = unchanged.start()
    _, after = change_token()
    assert after == before  # a fresh connection's counters cannot show that commit
    assert generation != kept
    assert unchanged.get(b"invoice-1", generation) is None
