"""Use cases: each one transaction, the only place the domain meets the database.

Writing: `record_messages` stores a batch of notification bodies (deduplicated), quarantines
what cannot be read, and folds what they say into the ledger, all in one transaction. The
caller acknowledges the messages only after it returns.

Reading: `usage`, `entity_rows`, `quarantined` ... return plain dicts in the ledger's
field names, shared by the CLI, the API and the TUI.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import peewee

from rintik_lite import jsontext
from rintik_lite.db import (
    DigestCache,
    Prepared,
    database,
    delete_values,
    digest_quarantine,
    insert_values,
    is_sqlite,
    rendered,
    update_values,
    whole_transaction,
    write_transaction,
)
from rintik_lite.errors import BadNotification, InvalidInput
from rintik_lite.ledger import intervals, notifications
from rintik_lite.ledger.intervals import LedgerState
from rintik_lite.ledger.notifications import (
    Observation,
    ProjectSeen,
    VolumeTypeSeen,
    format_time,
)
from rintik_lite.models import (
    INTERVAL_ROWS,
    Entity,
    Event,
    Interval,
    IntervalRow,
    Project,
    Quarantine,
    VolumeType,
    quarantine_digest,
)

log = logging.getLogger(__name__)

CHUNK = 200  # rows per multi-row INSERT / IN (...) list; well under SQLite's variable limit
MAX_TEXT = 255  # the ledger's id, name and key columns are VARCHAR(255)


@dataclass(frozen=True)
class Incoming:
    """A message body as received, and where it came from (amqp, replay, api, import).
    `error` says why the transport could not give the body as sent (a compressed body that
    does not decompress): the message is quarantined with that reason, as it was received."""

    body: bytes | str
    source: str = "amqp"
    error: str | None = None


REASONS = 10  # `BatchResult.reasons` kept


@dataclass
class BatchResult:
    """What a batch did. `received == applied + ignored + duplicate + quarantined`."""

    received: int = 0
    applied: int = 0  # changed or confirmed the ledger, volume types or projects
    ignored: int = 0  # stored; its event type changes nothing
    duplicate: int = 0  # seen before (same message id, or same body)
    quarantined: int = 0
    by_type: Counter[tuple[str, str]] = field(default_factory=Counter)  # (event_type, outcome)
    #: The reasons of the first `REASONS` messages quarantined, in order (for a caller
    #: that refuses what it sent: the API, the importer).
    reasons: list[str] = field(default_factory=list)

    def add(self, other: BatchResult) -> None:
        self.received += other.received
        self.applied += other.applied
        self.ignored += other.ignored
        self.duplicate += other.duplicate
        self.quarantined += other.quarantined
        self.by_type.update(other.by_type)
        self.reasons.extend(other.reasons[: REASONS - len(self.reasons)])


def _body_text(body: bytes | str) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return body


def _storable(text: str) -> str:
    """Text every database can hold, for what is kept only to be read (a quarantined body,
    a reason): NUL characters and lone surrogates, which PostgreSQL refuses, replaced."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _unstorable(value: Any, where: str, limit: int | None = MAX_TEXT) -> str | None:
    """Why `value` cannot be stored as sent, or None: PostgreSQL refuses NUL characters and
    lone surrogates anywhere, and the ledger's id, name and key columns hold `limit`
    characters. Checked before writing, so that one such message is quarantined rather than
    failing its whole batch (and being redelivered forever)."""
    if isinstance(value, str):
        if limit is not None and len(value) > limit:
            return f"{where} is longer than {limit} characters"
        if "\x00" in value:
            return f"{where} contains a NUL character"
        if not value.isascii():  # a flag of the string: ASCII text holds no surrogate
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return f"{where} is not valid Unicode text"
    elif isinstance(value, Mapping):
        for key, item in value.items():
            reason = _unstorable(key, f"{where} (a key)", None) or _unstorable(item, where, None)
            if reason:
                return reason
    elif isinstance(value, list | tuple):
        for item in value:
            reason = _unstorable(item, where, None)
            if reason:
                return reason
    return None


_PLAIN_SCALARS = (int, float, bool)  # exactly these types: storable whatever their value


def _plainly_storable(value: Any) -> bool:
    """`_unstorable(value, ..., MAX_TEXT)` is None, known without its walk: a number, a
    boolean, null, or ASCII text (no surrogate) of at most MAX_TEXT characters without NUL
    (most attributes). False says only "take the general check"."""
    if value is None or type(value) in _PLAIN_SCALARS:
        return True
    return type(value) is str and len(value) <= MAX_TEXT and value.isascii() and "\x00" not in value


def _check_storable(body: str, notification: notifications.Notification, change: Any) -> None:
    """BadNotification naming the first value of the message that cannot be stored."""
    checks: list[tuple[str, Any, int | None]] = [
        ("message_id", notification.message_id, MAX_TEXT),
        ("event_type", notification.event_type, None),  # cut to 255 when stored
        ("publisher_id", notification.publisher_id, None),  # cut to 255 when stored
        ("body", body, None),
    ]
    if isinstance(change, Observation):
        checks += [
            ("entity id", change.entity_id, MAX_TEXT),
            ("project id", change.project_id, MAX_TEXT),
        ]
        # Only attributes not plainly storable take the general check, and name their
        # attribute: the f-string and the walk per attribute were a third of this check.
        checks += [
            (f"the {key}", value, MAX_TEXT)
            for key, value in change.attrs.items()
            if not _plainly_storable(value)
        ]
    elif isinstance(change, VolumeTypeSeen):
        checks += [
            ("volume type id", change.type_id, MAX_TEXT),
            ("volume type name", change.name, MAX_TEXT),
        ]
    elif isinstance(change, ProjectSeen):
        checks += [
            ("project id", change.project_id, MAX_TEXT),
            ("project name", change.name, MAX_TEXT),
        ]
    for where, value, limit in checks:
        reason = _unstorable(value, where, limit)
        if reason:
            raise BadNotification(reason)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- writing -------------------------------------------------------------------------------


def record_messages(
    messages: Sequence[Incoming], now: datetime, metadata_whitelist: Sequence[str] = ()
) -> BatchResult:
    """Store, deduplicate, quarantine and apply a batch in one transaction."""
    return record_read(read_messages(messages, metadata_whitelist), now)


def record_read(batch: ReadBatch, now: datetime) -> BatchResult:
    """`record_messages` of a batch already read (by `read_messages`, maybe in another
    thread: the collector's consumer reads the next batch while its writer commits this
    one). A batch that raises anything but `DB_ERRORS` (a bug: the same batch would raise
    again, and hold back every message in it), or that the database refuses with an
    `IntegrityError`, is recorded again one message at a time (`record_each`).
    `DB_ERRORS` are raised: the caller retries the batch."""
    try:
        with write_transaction():
            return _record_read(batch, now)
    except peewee.IntegrityError as exc:
        # Another consumer stored some of these events first (then they are duplicates when
        # read again), or a constraint that this batch breaks however often it runs (a bug,
        # or a schema changed by hand): retried as a whole, it would stop the collector.
        log.warning(
            "the database refused a batch of %d messages (%s); recording them one by one",
            batch.received,
            exc,
        )
        return record_each(batch, now)
    except DB_ERRORS:
        raise
    except Exception:
        log.exception(
            "cannot record a batch of %d messages; recording them one by one", batch.received
        )
        return record_each(batch, now)


#: Errors after which the same batch may well commit later: a lock, a read-only or full
#: disk, a lost PostgreSQL connection (peewee wraps sqlite3's and psycopg2's errors in
#: these). Anything else raised while recording (a bug, or data a statement refuses) would
#: be raised again by the same batch. An `IntegrityError` may be either (`record_each`).
DB_ERRORS = (
    peewee.OperationalError,
    peewee.InterfaceError,
    peewee.InternalError,
    peewee.IntegrityError,
)


def record_each(batch: ReadBatch, now: datetime) -> BatchResult:
    """`record_read` of a batch one message at a time, each in a transaction of its own: a
    message whose recording still raises (anything but `DB_ERRORS`) is quarantined with the
    error, and the others are recorded as usual. A message the database refuses with an
    `IntegrityError` is tried once more (a competing consumer that stored the same event
    first has committed it by then: it is a duplicate), then quarantined with the error.
    Other `DB_ERRORS` are raised; what was committed before stays, and deduplication makes
    the caller's retry harmless."""
    total = BatchResult()
    if batch.unreadable:
        with write_transaction():
            total.add(_record_read(ReadBatch(len(batch.unreadable), [], batch.unreadable), now))
    for p in batch.parsed:
        try:
            total.add(_record_alone(p, now))
            continue
        except peewee.IntegrityError as exc:
            log.error("the database refuses a %s message (%s); quarantined", p.event_type, exc)
            reason = f"refused by the database: {type(exc).__name__}: {exc}"
        except DB_ERRORS:
            raise
        except Exception as exc:  # a bug must not lose the message: keep it with its reason
            log.exception("cannot record a %s message; quarantined", p.event_type)
            reason = f"internal error: {exc!r}"
        failed = (Incoming(p.body, p.source), p.event_type, reason)
        with write_transaction():
            total.add(_record_read(ReadBatch(1, [], [failed]), now))
    return total


def _record_alone(p: _Parsed, now: datetime) -> BatchResult:
    """One message recorded in a transaction of its own; refused with an `IntegrityError`,
    tried once more (raising what that raises): a competing consumer that stored the same
    event first has committed it by then, and it is a duplicate."""
    alone = ReadBatch(1, [p], [])
    try:
        with write_transaction():
            return _record_read(alone, now)
    except peewee.IntegrityError:
        with write_transaction():
            return _record_read(alone, now)


@dataclass(frozen=True)
class ReadBatch:
    """Messages read, without the database: each one parsed, or why it cannot be."""

    received: int  # messages read: parsed or unreadable
    parsed: list[_Parsed]
    unreadable: list[tuple[Incoming, str | None, str]]  # (message, event type, reason)

    def packed(self) -> PackedBatch:
        """This batch as plain tuples, for a pipe to another process (`reading`): pickle
        rebuilds a named tuple or a dataclass through a Python call per object, plain
        tuples in C. Measured on the bench's 50,000 events: unpickling the batch as it is
        took 32-40 us an event; these tuples, unpickled and rebuilt by `unpacked`, 22."""
        parsed = []
        for p in self.parsed:
            c = p.change
            if type(c) is Observation:
                fields = (c.entity_type, c.entity_id, c.project_id, c.time, c.action)
                observed = (*fields, c.attrs, c.since, c.until)
                parsed.append((*p[:_CHANGE], None, *p[_CHANGE + 1 :], observed))
            else:
                parsed.append((*p, None))
        return self.received, parsed, self.unreadable

    @classmethod
    def unpacked(cls, packed: PackedBatch) -> ReadBatch:
        """The batch `packed` made, equal to the one it was made of."""
        received, rows, unreadable = packed
        parsed = []
        for row in rows:
            observed = row[-1]
            if observed is None:
                parsed.append(_Parsed._make(row[:-1]))
            else:
                change = Observation(*observed)
                parsed.append(_Parsed._make((*row[:_CHANGE], change, *row[_CHANGE + 1 : -1])))
        return cls(received, parsed, unreadable)


#: `ReadBatch.packed`: messages read, each parsed one a tuple of `_Parsed`'s fields (its
#: `change` None when it is an `Observation`) and last that observation's fields, or None.
PackedBatch = tuple[int, list[tuple[Any, ...]], list[tuple[Incoming, str | None, str]]]


def read_messages(messages: Sequence[Incoming], metadata_whitelist: Sequence[str]) -> ReadBatch:
    """Step 1 of recording, pure: read each message; what cannot be read is set aside with
    its reason, for the quarantine."""
    parsed: list[_Parsed] = []
    unreadable: list[tuple[Incoming, str | None, str]] = []
    for message in messages:
        event_type: str | None = None
        if message.error is not None:
            unreadable.append((message, None, message.error))
            continue
        try:
            notification = notifications.parse(message.body)
            event_type = notification.event_type
            change = notifications.observe(notification, metadata_whitelist)
            body = _body_text(message.body)  # once: checked here, stored as it is
            _check_storable(body, notification, change)
            # What the writer would compute of the observation, computed while reading.
            sort_key, observed = "", None
            if isinstance(change, Observation):
                sort_key = intervals.sort_key(change)
                observed = jsontext.dumps(change.to_json())
        except BadNotification as exc:
            unreadable.append((message, event_type, str(exc)))
            continue
        except Exception as exc:  # a bug must not lose the message: keep it with its reason
            log.exception("cannot read a %s message", event_type or "notification")
            unreadable.append((message, event_type, f"internal error: {exc!r}"))
            continue
        key = notification.message_id or notifications.body_digest(message.body)
        time = change.time if change is not None else notification.timestamp
        parsed.append(
            _Parsed(
                message.source,
                key,
                notification.event_type,
                notification.message_id,
                notification.publisher_id,
                time,
                change,
                body,
                sort_key,
                observed,
            )
        )
    return ReadBatch(len(messages), parsed, unreadable)


def _record(
    messages: Sequence[Incoming], now: datetime, metadata_whitelist: Sequence[str]
) -> BatchResult:
    return _record_read(read_messages(messages, metadata_whitelist), now)


def _record_read(batch: ReadBatch, now: datetime) -> BatchResult:
    result = BatchResult(received=batch.received)
    quarantine_rows: list[dict[str, Any]] = []
    debug = log.isEnabledFor(logging.DEBUG)  # once per batch: per-event lines cost nothing off

    def quarantine(source: str, body: bytes | str, event_type: str | None, reason: str) -> None:
        kept = _storable(reason[:2000])
        quarantine_rows.append(
            {
                "received_at": now,
                "source": source,
                "event_type": _storable(event_type)[:MAX_TEXT] if event_type else None,
                "reason": kept,
                "body": _storable(_body_text(body)),
            }
        )
        result.quarantined += 1
        result.by_type[(event_type or "?", "quarantined")] += 1
        if len(result.reasons) < REASONS:
            result.reasons.append(kept)
        if debug:
            log.debug("event %s from %s: quarantined: %s", event_type or "?", source, reason)

    # 1. What could not be read goes to quarantine with its reason.
    for message, event_type, reason in batch.unreadable:
        quarantine(message.source, message.body, event_type, reason)
    parsed = batch.parsed

    # 2. Deduplicate against the store and within the batch.
    seen: set[str] = set()
    for chunk in _chunks([p.key for p in parsed]):
        seen.update(k for (k,) in _select_rows_in(("key",), "event", "key", chunk))
    fresh: list[_Parsed] = []
    for p in parsed:
        if p.key in seen:
            result.duplicate += 1
            result.by_type[(p.event_type, "duplicate")] += 1
            if debug:
                log.debug("event %s %s: duplicate", p.event_type, p.key)
        else:
            seen.add(p.key)
            fresh.append(p)

    # 3. An id the ledger knows as another type of resource is refused, not merged.
    # On PostgreSQL the rows are locked (in id order) until commit: a second collector
    # folding the same resource waits and then folds onto this one's result, instead of
    # overwriting it with a fold of the state it read before (SQLite's IMMEDIATE
    # transaction already serialises writers).
    ids = sorted({p.change.entity_id for p in fresh if isinstance(p.change, Observation)})
    stored: dict[str, _Stored] = {}
    lock = "" if is_sqlite() else ' ORDER BY "entity_id" FOR UPDATE'
    for chunk in _chunks(ids):
        columns = ("entity_id", "entity_type", "state")
        stored.update(
            (entity_id, _Stored(entity_type, state))
            for entity_id, entity_type, state in _select_rows_in(
                columns, "entity", "entity_id", chunk, lock
            )
        )
    types = {entity_id: e.entity_type for entity_id, e in stored.items()}
    accepted: list[_Parsed] = []
    for p in fresh:
        if isinstance(p.change, Observation):
            known = types.setdefault(p.change.entity_id, p.change.entity_type)
            if known != p.change.entity_type:
                quarantine(
                    p.source,
                    p.body,
                    p.event_type,
                    f"entity {p.change.entity_id} is a {known} in the ledger, "
                    f"not a {p.change.entity_type}",
                )
                continue
        accepted.append(p)

    # 4. Store the events, then fold what they say into the ledger.
    received_at = Event.received_at.db_value(now)
    event_values = [p.event_values(received_at) for p in accepted]
    for chunk in _chunks(event_values):
        insert_values(Event, EVENT_FIELDS, chunk, all_or_nothing=whole_transaction())
    failed = _apply_observations(
        [(p.sort_key, p.change) for p in accepted if isinstance(p.change, Observation)], stored
    )
    for p in accepted:
        event_type = p.event_type
        if isinstance(p.change, Observation) and p.change.entity_id in failed:
            Event.delete().where(Event.key == p.key).execute()
            quarantine(p.source, p.body, event_type, failed[p.change.entity_id])
            continue
        if p.change is None:
            result.ignored += 1
            result.by_type[(event_type, "ignored")] += 1
            if debug:
                log.debug("event %s %s: ignored (changes nothing billable)", event_type, p.key)
            continue
        if isinstance(p.change, VolumeTypeSeen):
            _apply_volume_type(p.change)
        elif isinstance(p.change, ProjectSeen):
            _apply_project(p.change)
        result.applied += 1
        result.by_type[(event_type, "applied")] += 1
        if debug:
            target = next(
                filter(None, (getattr(p.change, a, None) for a in ("entity_id", "type_id"))),
                getattr(p.change, "project_id", None),
            )
            log.debug("event %s %s: applied to %s", event_type, p.key, target)
    _store_quarantined(quarantine_rows)
    return result


def _store_quarantined(rows: Sequence[dict[str, Any]]) -> None:
    """Keep each quarantined body once (`Quarantine`): one already kept (redelivered,
    replayed again, retried, or twice in this batch) adds to that row's attempts and gives
    it its newest reason; the others are inserted."""
    fresh: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = quarantine_digest(row["body"])
        seen = fresh.get(key)
        if seen is None:
            fresh[key] = {**row, "digest": key, "attempts": 1}
        else:
            seen["attempts"] += 1
            seen["reason"] = row["reason"]
    kept: dict[str, int] = {}
    for chunk in _chunks(list(fresh)):
        kept.update(
            (key, row_id)
            for key, row_id in _select_rows_in(("digest", "id"), "quarantine", "digest", chunk)
        )
    for key, row_id in kept.items():
        again = fresh.pop(key)
        Quarantine.update(
            attempts=Quarantine.attempts + again["attempts"], reason=again["reason"]
        ).where(Quarantine.id == row_id).execute()
    for chunk in _chunks(list(fresh.values())):
        Quarantine.insert_many(chunk).execute()


def _select_in(sql: str, keys: Sequence[str], tail: str = "") -> list[tuple[Any, ...]]:
    """Run `sql IN (keys...)tail` with the keys as parameters, and return its rows (none for
    a DELETE): the text written directly, where peewee would render it anew for every batch
    (the collector's hot path runs a few per batch)."""
    mark = "?" if is_sqlite() else "%s"
    marks = ", ".join(mark for _ in keys)
    cursor = database.execute_sql(f"{sql} IN ({marks}){tail}", tuple(keys))
    return list(cursor.fetchall()) if cursor.description else []


def _select_rows_in(
    columns: Sequence[str], table: str, column: str, keys: Sequence[str], tail: str = ""
) -> list[Sequence[Any]]:
    """The `columns` (text, not NULL) of the rows of `table` whose `column` is in `keys`.

    On SQLite all in one row, as a JSON array of arrays (`json_group_array`): sqlite3
    releases the GIL for every row it steps to and must take it back, which beside a busy
    thread waits up to the switch interval (`db._statement_parts` says more); one row is
    one wait. JSON gives the text back exactly (quotes and control characters escaped in
    SQLite, decoded by `jsontext`)."""
    names = ", ".join(f'"{c}"' for c in columns)
    if is_sqlite() and sqlite3.sqlite_version_info >= (3, 38, 0):  # JSON is built in
        sql = f'SELECT json_group_array(json_array({names})) FROM "{table}" WHERE "{column}"'  # noqa: S608
        ((text,),) = _select_in(sql, keys, tail)
        rows: list[Sequence[Any]] = jsontext.loads(text)
        return rows
    sql = f'SELECT {names} FROM "{table}" WHERE "{column}"'  # noqa: S608
    return list(_select_in(sql, keys, tail))


class _Stored(NamedTuple):
    """A resource as stored: its type and the JSON text of its fold state."""

    entity_type: str
    state: str


#: The `Event` columns of `_Parsed.event_values`, in its order.
EVENT_FIELDS = (
    "key",
    "message_id",
    "event_type",
    "publisher_id",
    "source",
    "event_time",
    "received_at",
    "body",
    "entity_id",
    "observation",
)


class _Parsed(NamedTuple):
    """A message read, one per event: what recording it needs, and no more (the payload and
    the raw body are not kept: the collector holds up to two read batches in flight). A
    named tuple, as a frozen dataclass sets each of its fields through object.__setattr__
    (1.2 % of a replay's instructions, with `_Stored`)."""

    source: str  # where its message came from (`Incoming.source`)
    key: str  # the message id, else the body's digest
    event_type: str
    message_id: str | None
    publisher_id: str | None
    time: datetime | None  # the change's time, else the notification's timestamp
    change: Any
    body: str  # the message body as text
    sort_key: str = ""  # intervals.sort_key of the observation ("" for other changes)
    observation: str | None = None  # the observation's JSON text, as stored

    def event_values(self, received_at: Any) -> tuple[Any, ...]:
        """The event's row in its database form (`received_at` already is): the text
        columns are strings as they are, times and JSON are converted here, once."""
        change, time = self.change, self.time
        return (
            self.key,
            self.message_id,
            self.event_type[:255],
            (self.publisher_id or "")[:255] or None,
            self.source,
            None if time is None else Event.event_time.db_value(time),
            received_at,
            self.body,
            change.entity_id if isinstance(change, Observation) else None,
            self.observation,
        )


_CHANGE = _Parsed._fields.index("change")


def record_api_message(
    message: dict[str, Any], now: datetime, metadata_whitelist: Sequence[str] = ()
) -> BatchResult:
    """Apply one notification-shaped message that a user sent through the API.

    It goes through exactly the ledger code that bus notifications go through, stored with
    source "api". Unlike the bus, a bad message is refused (InvalidInput, for a 400) rather
    than quarantined: the caller is there to read the reason.
    """
    body = json.dumps(message, sort_keys=True, default=str)
    try:
        notifications.observe(notifications.parse(body), metadata_whitelist)
    except BadNotification as exc:
        raise InvalidInput(str(exc)) from None
    with write_transaction():
        result = _record([Incoming(body, "api")], now, metadata_whitelist)
        if result.quarantined:
            raise InvalidInput(result.reasons[0])
    return result


def _apply_volume_type(seen: VolumeTypeSeen) -> None:
    row = VolumeType.get_or_none(VolumeType.type_id == seen.type_id)
    if row is None:
        VolumeType.create(type_id=seen.type_id, name=seen.name, updated_at=seen.time)
    elif seen.time >= row.updated_at and (seen.time, seen.name) != (row.updated_at, row.name):
        VolumeType.update(name=seen.name, updated_at=seen.time).where(
            VolumeType.type_id == seen.type_id
        ).execute()


def _apply_project(seen: ProjectSeen) -> None:
    row = Project.get_or_none(Project.project_id == seen.project_id)
    if row is None:
        row = Project(project_id=seen.project_id, updated_at=seen.time)
        row._new = True
    if seen.action == "created":
        row.created_at = min(filter(None, [row.created_at, seen.time]))
    if seen.action == "deleted":
        row.deleted_at = max(filter(None, [row.deleted_at, seen.time]))
    if seen.name and seen.time >= row.updated_at:
        row.name = seen.name
    row.updated_at = max(row.updated_at, seen.time)
    row.save(force_insert=getattr(row, "_new", False))


def _apply_observations(
    observations: Sequence[tuple[str, Observation]], stored: dict[str, _Stored]
) -> dict[str, str]:
    """Fold observations (each with its sort key) into the ledger; return {entity_id:
    reason} for any that failed."""
    by_entity: dict[str, list[tuple[str, Observation]]] = {}
    for keyed in observations:
        by_entity.setdefault(keyed[1].entity_id, []).append(keyed)
    failed: dict[str, str] = {}
    changes: list[tuple[LedgerState, LedgerState | None, str | None]] = []
    for entity_id, batch in by_entity.items():
        row = stored.get(entity_id)
        before = _stored_state(row.state) if row is not None else None
        try:
            state = _advance(before, batch)
        except Exception as exc:  # a bug in the fold must not block the whole batch
            log.exception("cannot apply events to %s", entity_id)
            failed[entity_id] = f"internal error: {exc!r}"
            continue
        changes.append((state, before, row.state if row is not None else None))
    _save_states(changes)
    return failed


#: Fold states by the JSON text `_save_states` encoded them as, for the next batch that
#: reads that text back: decoding it (jsontext.loads, then LedgerState.from_json) cost
#: about 83k instructions a state. Exact, as a text decodes to a state equal to the one it
#: was encoded from (times as ISO text, attributes as JSON gives them back; tested), so
#: whichever batch, transaction (committed or not) or process wrote a text, it stands for
#: that one state. About 3 KB an entry.
SAVED_STATES: DigestCache[LedgerState] = DigestCache(4096)


def _stored_state(text: str) -> LedgerState:
    """The fold state a resource's stored text holds."""
    state = SAVED_STATES.get(text)
    return state if state is not None else LedgerState.from_json(jsontext.loads(text))


def _advance(before: LedgerState | None, batch: Sequence[tuple[str, Observation]]) -> LedgerState:
    """The new state: in-order events extend the stored state; a late one re-folds all."""
    ordered = sorted(batch, key=lambda ko: ko[0])  # by sort key, computed while reading
    first_key, first = ordered[0]
    if before is not None and first_key < before.last_key:
        return _refold(before.entity_type, first.entity_id)
    state = before or LedgerState(first.entity_type, first.entity_id)
    for key, obs in ordered:
        if key != state.last_key:
            state = intervals.step(state, obs, key)
    return state


def _refold(entity_type: str, entity_id: str) -> LedgerState:
    rows = Event.select(Event.observation).where(
        (Event.entity_id == entity_id) & Event.observation.is_null(False)
    )
    observations = [Observation.from_json(r.observation) for r in rows]
    return intervals.fold(entity_type, entity_id, observations)


def _save_state(state: LedgerState, before: LedgerState | None) -> None:
    _save_states([(state, before, None)])


def _save_states(changes: Sequence[tuple[LedgerState, LedgerState | None, str | None]]) -> None:
    """Write each resource whose fold state changed, and rewrite its intervals when they
    changed: a few multi-row statements for the whole batch, not a few per resource.
    Each change is (new state, state before or None, the stored JSON text of the state
    before if at hand, which saves encoding it again; text another version wrote in another
    spelling only costs one needless write). Rows are built as tuples in their database
    form (`ENTITY_FIELDS`, `INTERVAL_FIELDS`), not as dicts converted field by field."""
    created: list[tuple[Any, ...]] = []
    updated: list[tuple[Any, ...]] = []  # resources of the same project as before
    moved: list[tuple[Any, ...]] = []  # of another project (or of one at last)
    rewritten: list[str] = []
    rows: list[tuple[Any, ...]] = []
    changed_rows: list[tuple[Any, ...]] = []  # rows whose end is the same as before
    ended_rows: list[tuple[Any, ...]] = []  # rows whose end changed
    removed_rows: list[tuple[Any, ...]] = []
    for state, before, stored_text in changes:
        doc = jsontext.dumps(state.to_json())
        SAVED_STATES.put(doc, state)
        if before is not None and doc == (stored_text or jsontext.dumps(before.to_json())):
            continue
        entity_id, project = state.entity_id, state.project_id
        row = (entity_id, state.entity_type, project, state.deleted, state.last_key, doc)
        if before is None:
            created.append(row)
        else:
            (updated if before.project_id == project else moved).append(row)
        if before is not None and before.rows == state.rows and before.project_id == project:
            continue
        diff = _row_changes(before, state) if before is not None else None
        if diff is not None:  # the same project: only the rows that changed are written
            added, changed, removed = diff
            rows.extend(_interval_values(state, r) for r in added)
            for kept, r in changed:  # the new values, then the row's resource and start
                start, end, *values = _row_values(r)
                if r.end == kept.end:
                    changed_rows.append((*values, entity_id, start))
                else:
                    ended_rows.append((end, *values, entity_id, start))
            removed_rows.extend((entity_id, _stored_time(r.start)) for r in removed)
            continue
        rewritten.append(entity_id)
        if project is None:
            continue
        rows.extend(_interval_values(state, r) for r in state.rows)
    # New resources in id order (a competing collector's insert of the same one conflicts
    # and its batch is retried); stored ones, held FOR UPDATE on PostgreSQL, are updated
    # in place by an upsert that always finds them, and on SQLite by an UPDATE (an upsert's
    # DO UPDATE still needs a statement journal there: `db._ALL_OR_NOTHING`). SQLite
    # rewrites the entry of every index on a column an UPDATE sets, even to the value it
    # had, so only the columns that can have changed are set: a resource never changes
    # type and seldom project (from none to one), and a row's end changes once.
    whole = whole_transaction()
    for chunk in _chunks(sorted(created, key=lambda v: str(v[0]))):
        insert_values(Entity, ENTITY_FIELDS, chunk, all_or_nothing=whole)
    moving = ("project_id", *ENTITY_CHANGES)
    if is_sqlite():  # (deleted, last_key, state) or (project_id, ...), then the id
        # A few rows a statement, as for an upsert: sqlite3 keeps up to 128 prepared
        # statements, one for each number of rows, and one of 1,000 rows holds about as
        # many bytes as its state texts (peak RSS of `run` in the ingest bench: 196 and
        # 200 MB in one statement, against 184-186 before).
        by_id = ("entity_id",)
        for chunk in _chunks(updated):
            same_project = [(*row[3:], row[0]) for row in chunk]
            update_values(Entity, ENTITY_CHANGES, same_project, by_id, all_or_nothing=whole)
        for chunk in _chunks(moved):
            moved_to = [(*row[2:], row[0]) for row in chunk]
            update_values(Entity, moving, moved_to, by_id, all_or_nothing=whole)
    else:
        for chunk in _chunks(updated):
            insert_values(Entity, ENTITY_FIELDS, chunk, update=ENTITY_CHANGES)
        for chunk in _chunks(moved):
            insert_values(Entity, ENTITY_FIELDS, chunk, update=moving)
    for chunk in _chunks(rewritten):
        _select_in('DELETE FROM "interval" WHERE "entity_id"', chunk)
    # Rows are found by resource and start (the `interval_entity_id` index).
    delete_values(Interval, removed_rows, by=INTERVAL_KEY)
    update_values(Interval, INTERVAL_CHANGES[1:], changed_rows, INTERVAL_KEY, all_or_nothing=whole)
    update_values(Interval, INTERVAL_CHANGES, ended_rows, INTERVAL_KEY, all_or_nothing=whole)
    for chunk in _chunks(rows):
        insert_values(Interval, INTERVAL_FIELDS, chunk, all_or_nothing=whole)


#: The `Entity` columns of `_save_states`' tuples, in their order (the primary key first).
ENTITY_FIELDS = ("entity_id", "entity_type", "project_id", "deleted", "last_key", "state")
#: The `Entity` columns a fold changes, but the project (`_save_states`).
ENTITY_CHANGES = ("deleted", "last_key", "state")
#: The `Interval` columns that can change in a row kept from one fold to the next (the
#: end first: `_save_states` sets it only where it changed).
INTERVAL_CHANGES = ("end", "last_event", "name", "attributes")
#: The `Interval` columns of `_interval_values`: the resource's, then `_row_values`'.
INTERVAL_FIELDS = ("entity_type", "project_id", "entity_id", "start", *INTERVAL_CHANGES)
INTERVAL_KEY = ("entity_id", "start")  # what finds a row kept from one fold to the next
_stored_time = Interval.start.db_value  # the same conversion as `end` and `last_event`


def _interval_values(state: LedgerState, row: intervals.Row) -> tuple[Any, ...]:
    """The interval row of `row` in its database form, in `INTERVAL_FIELDS` order."""
    return (state.entity_type, state.project_id, state.entity_id, *_row_values(row))


def _row_values(row: intervals.Row) -> tuple[Any, ...]:
    """A row's start, end, last event, name and other attributes, in their database form
    (what can change in a row kept from one fold to the next, but its start, which finds
    it)."""
    attrs = row.attrs
    return (
        _stored_time(row.start),
        None if row.end is None else _stored_time(row.end),
        _stored_time(row.last_event),
        attrs.get("name"),
        jsontext.dumps({k: v for k, v in attrs.items() if k != "name"}),
    )


def _row_changes(
    before: LedgerState, state: LedgerState
) -> (
    tuple[list[intervals.Row], list[tuple[intervals.Row, intervals.Row]], list[intervals.Row]]
    | None
):
    """(added, changed, removed) rows from `before` to `state`, matched by their start (the
    rows of one resource never overlap, so each start is one row), each changed one as
    (the row before, the row now); None when the whole resource must be rewritten: its
    project changed, or is unknown."""
    if state.project_id is None or before.project_id != state.project_id:
        return None
    old = {r.start: r for r in before.rows}
    new = {r.start: r for r in state.rows}
    if len(old) != len(before.rows) or len(new) != len(state.rows):
        return None
    added = [r for start, r in new.items() if start not in old]
    # A step carries the rows it does not change over as the same objects: those need no
    # comparison field by field (6.0 -> 3.4 us for a resource of 20 rows, one changed).
    changed = [
        (kept, r)
        for start, r in new.items()
        if (kept := old.get(start)) is not None and kept is not r and kept != r
    ]
    removed = [r for start, r in old.items() if start not in new]
    return added, changed, removed


def rebuild_ledger() -> int:
    """Re-fold every resource from the event store (after an upgrade that reads events
    differently). Returns the number of resources."""
    count = 0
    with write_transaction():
        entities = list(Entity.select(Entity.entity_id, Entity.entity_type, Entity.state))
        for entity in entities:
            before = LedgerState.from_json(entity.state)
            _save_state(_refold(entity.entity_type, entity.entity_id), before)
            count += 1
    return count


# --- quarantine ----------------------------------------------------------------------------


def quarantined(limit: int | None = None) -> list[dict[str, Any]]:
    query = Quarantine.select().order_by(Quarantine.id)
    if limit is not None:
        query = query.limit(limit)
    return [
        {
            "id": q.id,
            "received_at": format_time(q.received_at),
            "source": q.source,
            "event_type": q.event_type,
            "reason": q.reason,
            "attempts": q.attempts,
            "body": q.body,
        }
        for q in query
    ]


def retry_quarantined(now: datetime, metadata_whitelist: Sequence[str] = ()) -> BatchResult:
    """Apply every quarantined message again; those that now apply leave the quarantine,
    and those that do not stay, each on its row, with one more attempt and the reason of
    this one (`_store_quarantined` finds the row by its digest)."""
    total = BatchResult()
    with write_transaction():
        digest_quarantine()  # rows written by hand have none
        rows = list(Quarantine.select().order_by(Quarantine.id))
        for row in rows:
            result = _record([Incoming(row.body, row.source)], now, metadata_whitelist)
            if not result.quarantined:
                row.delete_instance()
            total.add(result)
    return total


# --- reading -------------------------------------------------------------------------------


def volume_type_names() -> dict[str, str]:
    sql = rendered(
        "volume type names", lambda: VolumeType.select(VolumeType.type_id, VolumeType.name)
    )
    return dict(database.execute_sql(sql).fetchall())


def interval_dict(
    row: Interval | IntervalRow, type_names: dict[str, str] | None = None
) -> dict[str, Any]:
    """A ledger row in Almanach's field names, times in ISO 8601 UTC."""
    a = row.attributes
    doc: dict[str, Any] = {
        "entity_id": row.entity_id,
        "entity_type": row.entity_type,
        "project_id": row.project_id,
        "start": format_time(row.start),
        "end": format_time(row.end) if row.end else None,
        "last_event": format_time(row.last_event),
        "name": row.name,
    }
    if row.entity_type == "instance":
        doc.update(
            {
                "flavor": a.get("flavor"),
                "flavor_id": a.get("flavor_id"),
                "vcpus": a.get("vcpus"),
                "memory_mb": a.get("memory_mb"),
                "disk_gb": a.get("disk_gb"),
                "image_id": a.get("image_id"),
                "os": {
                    "os_type": a.get("os_type"),
                    "distro": a.get("os_distro"),
                    "version": a.get("os_version"),
                },
                "metadata": a.get("metadata") or {},
            }
        )
    elif row.entity_type == "volume":
        type_id = a.get("volume_type_id")
        names = type_names if type_names is not None else volume_type_names()
        doc.update(
            {
                "volume_type": names.get(type_id, type_id) if type_id else None,
                "volume_type_id": type_id,
                "size": a.get("size"),
                "attached_to": a.get("attached_to") or [],
            }
        )
    elif row.entity_type == "snapshot":
        doc.update({"size": a.get("size"), "volume_id": a.get("volume_id")})
    elif row.entity_type == "image":
        doc.update({"size": a.get("size"), "size_bytes": a.get("size_bytes")})
    elif row.entity_type == "floating_ip":
        doc.update({"address": a.get("address")})
    return doc


def usage(
    project_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
    entity_types: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The project's intervals overlapping [start, end), oldest first (the Almanach list
    routes read it many times a second: its query is rendered once, `db.Prepared`)."""
    if start is not None and end is not None and end <= start:
        raise InvalidInput("end must be after start")
    types = set(entity_types or ())
    values: dict[str, Any] = {"project_id": project_id}
    if start is not None:
        values["start"] = Interval.end.db_value(start)
    if end is not None:
        values["end"] = Interval.start.db_value(end)
    if len(types) == 1:
        (values["entity_type"],) = types
    query = _USAGE[(start is not None, end is not None, len(types) == 1)]
    rows = [IntervalRow(*row) for row in query.rows(**values)]
    if len(types) > 1:  # rare (the CLI): filtered here rather than one statement per count
        rows = [r for r in rows if r.entity_type in types]
    return _interval_dicts(rows)


def _usage_query(with_start: bool, with_end: bool, with_type: bool) -> Prepared:
    def build(project_id: Any, start: Any = None, end: Any = None, entity_type: Any = None) -> Any:
        query = IntervalRow.query().where(Interval.project_id == project_id)
        if end is not None:
            query = query.where(Interval.start < end)
        if start is not None:
            query = query.where(Interval.end.is_null() | (Interval.end > start))
        if entity_type is not None:
            query = query.where(Interval.entity_type == entity_type)
        return query.order_by(Interval.start, Interval.entity_id)

    names = (
        ["project_id"] + ["start"] * with_start + ["end"] * with_end + ["entity_type"] * with_type
    )
    return Prepared(build, *names, memo=INTERVAL_ROWS)


_USAGE = {
    (with_start, with_end, with_type): _usage_query(with_start, with_end, with_type)
    for with_start in (False, True)
    for with_end in (False, True)
    for with_type in (False, True)
}


def entity_rows(entity_id: str) -> list[dict[str, Any]]:
    query = IntervalRow.query().where(Interval.entity_id == entity_id).order_by(Interval.start)
    return _interval_dicts(IntervalRow.rows(query))


def _interval_dicts(rows: Sequence[IntervalRow]) -> list[dict[str, Any]]:
    """`interval_dict` of each row; volume type names are read only when a volume needs
    them."""
    names = volume_type_names() if any(r.entity_type == "volume" for r in rows) else {}
    return [interval_dict(r, names) for r in rows]


def counts() -> dict[str, int]:
    return {
        "all_entities": Entity.select().count(),
        "active_entities": Interval.select(Interval.entity_id)
        .where(Interval.end.is_null())
        .distinct()
        .count(),
        "events": Event.select().count(),
        "quarantined": Quarantine.select().count(),
    }


def last_event_time() -> datetime | None:
    """When the last event stored was received: that of the newest row (ids grow with each
    insert), found through the primary key; MAX(received_at) would scan the whole event
    store on every /healthz (the column has no index)."""
    row = Event.select(Event.received_at).order_by(Event.id.desc()).limit(1).scalar()
    if row is None:
        return None
    return Event.received_at.python_value(row)  # type: ignore[no-any-return]


def ping() -> None:
    database.execute_sql("SELECT 1")
