"""peewee models only. Times are stored as naive UTC and read back as aware UTC."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import peewee

from rintik_lite import jsontext
from rintik_lite.db import RowMemo, database

# The two shapes of `UTCDateTimeField.formats` on SQLite, by length: the characters at
# positions 10 and 19 ("YYYY-MM-DD HH:MM:SS.ffffff" and "YYYY-MM-DD HH:MM:SS").
_STORED_SHAPE = {26: " .", 19: " "}


def _stored_time(value: Any) -> datetime | None:
    """A time as db_value writes it on SQLite, read by fromisoformat (many times faster than
    the strptime of peewee's `formats`, same result); None for anything else."""
    if isinstance(value, str) and _STORED_SHAPE.get(len(value)) == value[10::9]:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


class UTCDateTimeField(peewee.DateTimeField):
    """An aware UTC datetime; stored naive, with microseconds always written."""

    formats = ["%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"]

    def db_value(self, value: Any) -> Any:
        if isinstance(value, datetime):
            if value.tzinfo is UTC and value.year >= 1000 and self._on_sqlite():
                text = jsontext.utc_text(value)  # "YYYY-MM-DDTHH:MM:SS[.ffffff]"
                return f"{text[:10]} {text[11:]}" + ("" if value.microsecond else ".000000")
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            if self._on_sqlite():
                if value.year >= 1000:  # the same text as strftime, several times faster
                    return value.isoformat(" ", "microseconds")
                return value.strftime("%Y-%m-%d %H:%M:%S.%f")
            return value
        return super().db_value(value)

    def _on_sqlite(self) -> bool:
        return isinstance(self.model._meta.database.obj, peewee.SqliteDatabase)

    def python_value(self, value: Any) -> Any:
        stored = _stored_time(value)
        value = stored if stored is not None else super().python_value(value)
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value


class JSONField(peewee.TextField):
    """JSON in a text column, written with sorted keys so equal values store equal text."""

    def db_value(self, value: Any) -> Any:
        return None if value is None else jsontext.dumps(value)

    def python_value(self, value: Any) -> Any:
        return None if value is None else jsontext.loads(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Event(BaseModel):
    """Every notification received, stored once (deduplicated on `key`)."""

    # No index on event_type or event_time (nor on Entity.entity_type): no query looks rows
    # up by them, and each index costs every write (schema version 5 drops them).
    key = peewee.CharField(max_length=255, unique=True)  # message_id, else sha256 of the body
    message_id = peewee.CharField(max_length=255, null=True)
    event_type = peewee.CharField(max_length=255)
    publisher_id = peewee.CharField(max_length=255, null=True)
    source = peewee.CharField(max_length=16)  # amqp | replay | api | import
    event_time = UTCDateTimeField(null=True)
    received_at = UTCDateTimeField()
    body = peewee.TextField()
    entity_id = peewee.CharField(max_length=255, null=True, index=True)
    observation = JSONField(null=True)  # the normalized change it carries, if any


class Quarantine(BaseModel):
    """A message that could not be decoded or applied, kept once with its newest reason:
    `attempts` counts the times it came (redelivered, replayed again) or was retried, and
    `received_at` is the first. `digest` (`quarantine_digest` of the body) finds it again;
    None only on a row not written by rintik-lite (`db.digest_quarantine` fills it)."""

    received_at = UTCDateTimeField()
    source = peewee.CharField(max_length=16)
    event_type = peewee.CharField(max_length=255, null=True)
    reason = peewee.TextField()
    body = peewee.TextField()
    attempts = peewee.IntegerField(default=1)
    digest = peewee.CharField(max_length=64, null=True, unique=True)


def quarantine_digest(body: str) -> str:
    """What finds a quarantined body again: the SHA-256 of its text (as stored: text every
    database can hold, so it encodes), in hex."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class Entity(BaseModel):
    """One billable resource: its fold state, so that in-order events apply incrementally."""

    entity_id = peewee.CharField(max_length=255, primary_key=True)
    entity_type = peewee.CharField(max_length=32)
    project_id = peewee.CharField(max_length=255, null=True, index=True)
    deleted = peewee.BooleanField(default=False)
    last_key = peewee.CharField(max_length=512)  # sort key of the last observation applied
    state = JSONField()


class Interval(BaseModel):
    """The usage ledger: one row per resource interval (Almanach's entity rows)."""

    entity_id = peewee.CharField(max_length=255, index=True)
    entity_type = peewee.CharField(max_length=32)
    project_id = peewee.CharField(max_length=255)
    start = UTCDateTimeField()
    end = UTCDateTimeField(null=True)
    last_event = UTCDateTimeField()
    name = peewee.CharField(max_length=255, null=True)
    attributes = JSONField()  # flavor, flavor_id, vcpus, ..., volume_type_id, size, address

    class Meta:
        indexes = ((("project_id", "start"), False), (("end",), False))


class IntervalRow(NamedTuple):
    """An `Interval` read as a plain tuple, for reads of many rows: building a model
    instance per row costs more than what the caller then does with it."""

    entity_id: str
    entity_type: str
    project_id: str
    start: datetime
    end: datetime | None
    last_event: datetime
    name: str | None
    attributes: dict[str, Any]

    @classmethod
    def query(cls) -> Any:
        """A select of these columns, to filter and order; read it with `rows`."""
        return Interval.select(*(getattr(Interval, name) for name in cls._fields))

    @classmethod
    def rows(cls, query: Any) -> list[IntervalRow]:
        return [cls(*row) for row in query.tuples()]


#: `IntervalRow`s as the prepared reads (`db.Prepared(..., memo=INTERVAL_ROWS)`) of the API,
#: the running invoices and `services.usage` convert them, once per stored row (their
#: readers never change them).
INTERVAL_ROWS = RowMemo(16_384)


class VolumeType(BaseModel):
    """Cinder volume type id -> name, as `volume_type.create` announces it."""

    type_id = peewee.CharField(max_length=255, primary_key=True)
    name = peewee.CharField(max_length=255)
    updated_at = UTCDateTimeField()


class Project(BaseModel):
    """Keystone projects seen on the bus (ids only; names come from Keystone lookups)."""

    project_id = peewee.CharField(max_length=255, primary_key=True)
    name = peewee.CharField(max_length=255, null=True)
    created_at = UTCDateTimeField(null=True)
    deleted_at = UTCDateTimeField(null=True)
    updated_at = UTCDateTimeField()


V1_TABLES: list[type[peewee.Model]] = [Event, Quarantine, Entity, Interval, VolumeType, Project]


# --- billing (schema version 2) -----------------------------------------------------------


class MoneyField(peewee.TextField):
    """An exact Decimal stored as its decimal string (``"12.34"``), never as a float.

    SQLite's DECIMAL/NUMERIC affinity would silently store a REAL; text keeps every digit
    and the exponent, so ``Decimal("1.50")`` reads back as ``Decimal("1.50")``. Amounts are
    never compared or summed in SQL: the services read them and add Decimals in Python.
    Also used for exact hours (``"0.5"``, or 50 digits under ``rounding = "exact"``).
    """

    def db_value(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money must be a Decimal, not a float")
        decimal = value if isinstance(value, Decimal) else Decimal(value)
        if not decimal.is_finite():
            raise ValueError(f"money must be finite, got {decimal}")
        return format(decimal, "f")

    def python_value(self, value: Any) -> Any:
        return None if value is None else Decimal(value)


class Price(BaseModel):
    """One price row; never edited: a later row with a later `since` supersedes it.

    `kind` is flavor | volume | snapshot | image | floating_ip | router; `key` the flavor
    id or name, the volume type id or name, or `default`. `project_id` NULL = global.
    `since` NULL = from the beginning of time.
    """

    kind = peewee.CharField(max_length=32)
    key = peewee.CharField(max_length=255)
    project_id = peewee.CharField(max_length=255, null=True)
    hourly = MoneyField()
    monthly = MoneyField(null=True)
    currency = peewee.CharField(max_length=8)
    since = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField()

    class Meta:
        indexes = ((("kind", "key"), False),)


class Invoice(BaseModel):
    """One invoice per project and period (`YYYY-MM`), whatever its state.

    `in_progress` rows carry no amounts (they are computed live) and exist only to give the
    running invoice a stable id. Closing fills `number` (from `InvoiceCounter`), the frozen
    rules and the totals, and sets `unpaid`; paying sets `finished`. The unique
    (project_id, period) makes a second closed invoice for a project-period impossible,
    even for two processes closing at once; `number` is unique too.
    """

    project_id = peewee.CharField(max_length=255)
    period = peewee.CharField(max_length=7)
    state = peewee.CharField(max_length=16, index=True)  # in_progress | unpaid | finished
    number = peewee.IntegerField(null=True, unique=True)
    currency = peewee.CharField(max_length=8, null=True)
    rounding = peewee.CharField(max_length=16, null=True)
    decimal_places = peewee.IntegerField(null=True)
    tax_percent = MoneyField(null=True)
    subtotal = MoneyField(null=True)
    tax = MoneyField(null=True)
    total = MoneyField(null=True)
    created_at = UTCDateTimeField()
    closed_at = UTCDateTimeField(null=True)
    paid_at = UTCDateTimeField(null=True)
    # What its lines were rated from at closing (`invoices.rated_from`): while the ledger
    # and prices give the same digest, re-rating it would give its lines again.
    rated_from = peewee.CharField(max_length=64, null=True)

    class Meta:
        indexes = ((("project_id", "period"), True), (("period",), False))


class InvoiceLine(BaseModel):
    """A frozen line of a closed invoice; `adjusts` names the invoice an adjustment corrects."""

    invoice = peewee.ForeignKeyField(Invoice, backref="lines", on_delete="CASCADE")
    position = peewee.IntegerField()
    entity_id = peewee.CharField(max_length=255)
    entity_type = peewee.CharField(max_length=32)
    description = peewee.TextField()
    start = UTCDateTimeField()
    end = UTCDateTimeField()
    hours = MoneyField()
    quantity = peewee.IntegerField()
    unit_price = MoneyField(null=True)  # NULL on adjustment lines
    amount = MoneyField()
    missing_price = peewee.BooleanField(default=False)
    price_kind = peewee.CharField(max_length=32)
    price_key = peewee.CharField(max_length=255, null=True)
    adjusts = peewee.ForeignKeyField(
        Invoice, null=True, backref="adjusted_by", on_delete="RESTRICT", index=True
    )

    class Meta:
        indexes = ((("invoice", "position"), True),)


class InvoiceCounter(BaseModel):
    """The last invoice number given. Closing locks this row (FOR UPDATE on PostgreSQL;
    SQLite's IMMEDIATE transaction locks the whole file) so numbers are gapless."""

    name = peewee.CharField(max_length=32, primary_key=True)
    value = peewee.IntegerField()


V2_TABLES: list[type[peewee.Model]] = [Price, Invoice, InvoiceLine, InvoiceCounter]


# --- billing settings set at run time (schema version 3) ----------------------------------


class BillingSetting(BaseModel):
    """A `[billing]` setting changed over the API (`PUT /api/settings/<key>/`); it overrides
    the settings file. `key` is the setting's name (`tax_percent`, `currency`,
    `company_name`, `company_address`), `value` its text (a decimal string for the tax)."""

    key = peewee.CharField(max_length=64, primary_key=True)
    value = peewee.TextField()
    updated_at = UTCDateTimeField()


V3_TABLES: list[type[peewee.Model]] = [BillingSetting]
