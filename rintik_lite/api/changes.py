"""What the API may answer again without reading the database.

On SQLite, an answer found up to date stays up to date until something is committed to the
database, by any connection: `Unchanged` keeps such answers, per kind of answer, and
forgets them all as soon as a request's change token (`change_token`) shows a commit. On
PostgreSQL it keeps nothing (there is no such token): answers are read or checked anew.
Used by the invoice answers (`rintik.INVOICE_ANSWERS`, whose digest it saves reading) and by
the Almanach lists of a project's intervals (`almanach.INTERVAL_LISTS`).
"""

from __future__ import annotations

import threading
from typing import Any, Generic, TypeVar

import peewee

from rintik_lite.db import database, is_sqlite

V = TypeVar("V")


class Unchanged(Generic[V]):
    """On SQLite: the answers found up to date (their digest matched, or they were just
    computed) since the database last changed, which need no digest read again.

    Each server thread takes its connection's change token (`change_token`) at the start
    of each request: when it differs from the one it took before (or the thread has not
    taken one with this connection yet), something was committed meanwhile, and the
    `generation` goes up, which forgets every answer. An answer checked during a request is
    kept with the generation taken at its start, and is up to date for a later request
    only while the generation is still the one that request took at its start: a commit
    before then shows in the token of every connection that reads it afterwards, whichever
    thread reads it first moves the generation past the answer's."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0  # answers `get` found up to date
        self._lock = threading.Lock()
        self._local = threading.local()
        self.generation = 0
        self._answers: dict[bytes, tuple[V, int]] = {}

    def start(self) -> int | None:
        """At the start of a request: the generation it works under (None on PostgreSQL,
        where no answer is taken as up to date without reading its digest)."""
        connection, token = change_token()
        if token is None:
            return None
        local = self._local
        if getattr(local, "connection", None) is not connection or local.token != token:
            local.connection, local.token = connection, token
            with self._lock:
                self.generation += 1
                self._answers = {}
        return self.generation

    def up_to_date(self, slot: bytes, answer: V, generation: int | None) -> bool:
        """Whether `answer` is the one kept under `slot`, up to date for a request that
        started at `generation`."""
        return self._kept(slot, generation) is answer

    def get(self, slot: bytes, generation: int | None) -> V | None:
        """The answer kept under `slot` if it is up to date for a request that started at
        `generation`, else None."""
        kept = self._kept(slot, generation)
        if kept is not None:
            self.hits += 1
        return kept

    def _kept(self, slot: bytes, generation: int | None) -> V | None:
        found = self._answers.get(slot)
        if generation is None or found is None or not found[1] == generation == self.generation:
            return None
        return found[0]

    def add(self, slot: bytes, answer: V, generation: int | None) -> None:
        if generation is None:
            return
        with self._lock:
            if generation == self.generation:
                if len(self._answers) >= self.size:
                    self._answers = {}
                self._answers[slot] = (answer, generation)


def change_token() -> tuple[Any, tuple[int, int, int] | None]:
    """This thread's SQLite connection, and a token of it that differs from any it had
    before whenever something was committed to the database in between: by another
    connection, of this process or another (`PRAGMA data_version`), or by this one (its
    count of rows inserted, changed and deleted, and the schema's version for what that
    count leaves out: tables dropped or made). (None, None) on PostgreSQL."""
    if not is_sqlite():
        return None, None
    with peewee.__exception_wrapper__:
        connection = database.connection()
        (version,) = connection.execute("PRAGMA data_version").fetchone()
        (schema,) = connection.execute("PRAGMA schema_version").fetchone()
        return connection, (int(version), int(schema), int(connection.total_changes))
