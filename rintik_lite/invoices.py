"""Billing use cases: prices, invoices, closing, payments and adjustments.

The only place the rating domain (`rintik_lite.billing`) meets the database. Every function
takes `now` (only the CLI and the scheduler read the clock) and returns plain dicts in the
JSON shape the CLI and the API print: money and hours as decimal strings, times ISO 8601
UTC with a `Z`. Bad input raises `InvalidInput`, an unknown id `NotFound`. Every write is one
transaction (`db.write_transaction()`); closing is one transaction per group of
`CLOSE_GROUP` invoices.

Invoices. One per project and period (a calendar month in UTC). While its period is not
closed an invoice is `in_progress`: its lines are computed on every read from the ledger and
the prices (an `Invoice` row is created lazily, only to give it a stable id). Closing freezes
its lines (rated with `now` = the period's end), gives it the next number of a gapless
sequence, computes subtotal, tax and total, and makes it `unpaid`; paying makes it
`finished`, and `unpay` goes back (Rintik's rollback).

Adjustments. A closed invoice is never edited. Whenever the invoice of a later period is
computed (live) or closed, every closed invoice C of the project with an earlier period is
re-rated from the *current* ledger and the price rows in force in C's period, with the rules
frozen in C (rounding, decimal places, currency). For each resource, the difference between
that and what was billed for it (C's own lines plus every adjustment for C already frozen in
a later closed invoice) becomes an adjustment line (`adjusts` = C's id) on the later
invoice; a zero difference makes no line. Closing freezes those lines, so a difference is
billed exactly once. A live invoice shows what closing it now would freeze: while two
periods are open (the month just ended, before it is closed, and the new one) both show the
same pending adjustments; only the first to close bills them. A project with no usage in a
period gets an invoice for it only to carry adjustments, and then only for the running
period or, when closing, the latest ended period.

Settings. The tax, the currency and the company name and address can be changed at run
time (`set_billing_setting`, the API's `/api/settings/`); stored values override the
`[billing]` settings file. `rules_from` and every use case that takes rules apply them, so
the CLI, the scheduler (whose rules were built at start-up) and the API agree.

Concurrency. Closing takes the invoice-number counter row first (FOR UPDATE on PostgreSQL;
SQLite's BEGIN IMMEDIATE already serialises writers), then re-reads the invoice's state: two
closers of the same period, in two processes, close each project-period exactly once and
hand out unique, gapless numbers. The unique (project_id, period) and unique number in the
schema are the last line of defence.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Context, Decimal, InvalidOperation, localcontext
from functools import cached_property
from operator import attrgetter
from typing import Any, NamedTuple

import peewee

from rintik_lite.billing import rating
from rintik_lite.billing.periods import Period, ended_periods, require_aware
from rintik_lite.billing.rating import Line, RatingRules, Totals, Usage
from rintik_lite.db import (
    DigestCache,
    Prepared,
    RowMemo,
    database,
    digest,
    insert_values,
    is_sqlite,
    read_snapshot,
    update_rows,
    write_transaction,
)
from rintik_lite.errors import InvalidInput, NotFound, SettingsError
from rintik_lite.ledger.notifications import format_time
from rintik_lite.models import (
    INTERVAL_ROWS,
    BillingSetting,
    Interval,
    IntervalRow,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    Price,
    VolumeType,
)
from rintik_lite.settings import Settings

log = logging.getLogger(__name__)

IN_PROGRESS = "in_progress"
UNPAID = "unpaid"
FINISHED = "finished"
STATES: tuple[str, ...] = (IN_PROGRESS, UNPAID, FINISHED)
CLOSED_STATES: tuple[str, ...] = (UNPAID, FINISHED)

#: Price kinds priced per key (flavor id or name, volume type id or name); the others have
#: one price per scope, under the key ``"default"``.
KEYED_KINDS: tuple[str, ...] = ("flavor", "volume")

_COUNTER = "invoice"
_EXACT = Context(prec=4 * rating.PRECISION)


# --- input ---------------------------------------------------------------------------------


#: The `[billing]` settings the rating rules are made of: `billing.<name>` for each field
#: of `RatingRules`.
RULE_SETTINGS = tuple(f.name for f in fields(RatingRules))


def rules_from(settings: Settings, stored: bool = True) -> RatingRules:
    """The rating rules of the `[billing]` settings (`RULE_SETTINGS`), with the tax and
    currency changed over the API (`billing_settings`) of the database bound, if one is
    and `stored`; bind `settings`' own database first (a command run in-process after
    another would read that one's). `stored` False: the settings as written, checked."""
    values = billing_settings(settings) if stored and database.obj is not None else {}
    rules = {name: values.get(name, settings[f"billing.{name}"]) for name in RULE_SETTINGS}
    rules["currency"] = str(rules["currency"]).strip().upper()
    try:
        return RatingRules(**rules)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"bad [billing] settings: {exc}") from None


def parse_decimal(value: Decimal | str | int, name: str) -> Decimal:
    """A finite Decimal from a Decimal, an int or a decimal string; InvalidInput otherwise.

    Floats are refused: money never passes through binary floating point.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise InvalidInput(f"{name}: {value!r} is not a decimal number")
    try:
        result = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvalidInput(f"{name}: {value!r} is not a decimal number") from None
    if not result.is_finite():
        raise InvalidInput(f"{name}: {value!r} is not a finite decimal number")
    places = -int(result.as_tuple().exponent)  # finite: the exponent is an int
    if places > 30 or (result and result.adjusted() >= 15):
        raise InvalidInput(f"{name}: {value!r} is out of range (up to 15 digits and 30 places)")
    return result


def parse_period(text: str) -> Period:
    """A period written `YYYY-MM`; InvalidInput otherwise."""
    try:
        return Period.parse(text)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


# --- prices --------------------------------------------------------------------------------


def price_dict(row: Price) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "key": row.key,
        "project_id": row.project_id,
        "hourly": _money(row.hourly),
        "monthly": _money(row.monthly),
        "currency": row.currency,
        "since": format_time(row.since) if row.since is not None else None,
        "created_at": format_time(row.created_at),
    }


def set_price(
    kind: str,
    key: str,
    hourly: Decimal | str | int,
    *,
    currency: str,
    now: datetime,
    monthly: Decimal | str | int | None = None,
    project_id: str | None = None,
    since: datetime | None = None,
) -> dict[str, Any]:
    """Add a price row; it supersedes earlier rows of the same kind, key and scope from
    `since` (None: from the beginning, so it applies to resources already running and to
    every invoice computed from now on; a closed invoice it changes gets an adjustment).

    `key` is the flavor id or name (`flavor`), the volume type id or name (`volume`), or
    `default` for the other kinds. A row naming `project_id` overrides global rows for it.
    """
    require_aware(now, "now")
    if kind not in rating.PRICE_KINDS:
        raise InvalidInput(
            f"unknown price kind {kind!r}: choose one of {', '.join(rating.PRICE_KINDS)}"
        )
    key = key.strip()
    if not key:
        raise InvalidInput("the price key must not be empty")
    if kind not in KEYED_KINDS and key != rating.DEFAULT_KEY:
        raise InvalidInput(f"{kind} prices have no key: use {rating.DEFAULT_KEY!r}, not {key!r}")
    if len(key) > 255:
        raise InvalidInput("the price key is longer than 255 characters")
    hourly_amount = parse_decimal(hourly, "hourly")
    monthly_amount = None if monthly is None else parse_decimal(monthly, "monthly")
    for name, amount in (("hourly", hourly_amount), ("monthly", monthly_amount)):
        if amount is not None and amount < 0:
            raise InvalidInput(f"{name} must not be negative, got {amount}")
    currency = currency.strip().upper()
    if not currency or len(currency) > 8:
        raise InvalidInput(f"bad currency {currency!r}")
    if project_id is not None and not project_id.strip():
        raise InvalidInput("the project id must not be empty")
    if since is not None:
        try:
            require_aware(since, "since")
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    with write_transaction():
        row = Price.create(
            kind=kind,
            key=key,
            project_id=project_id,
            hourly=hourly_amount,
            monthly=monthly_amount,
            currency=currency,
            since=since,
            created_at=now,
        )
    return price_dict(row)


def list_prices(kind: str | None = None, project_id: str | None = None) -> list[dict[str, Any]]:
    """Every price row (superseded ones too), by kind, key, project, then since."""
    query = Price.select()
    if kind is not None:
        if kind not in rating.PRICE_KINDS:
            raise InvalidInput(
                f"unknown price kind {kind!r}: choose one of {', '.join(rating.PRICE_KINDS)}"
            )
        query = query.where(Price.kind == kind)
    if project_id is not None:
        query = query.where(Price.project_id == project_id)
    rows = list(query.order_by(Price.id))
    rows.sort(key=lambda r: (r.kind, r.key, r.project_id or "", r.since is not None, r.since, r.id))
    return [price_dict(r) for r in rows]


def missing_prices(
    now: datetime, rules: RatingRules, period: Period | None = None
) -> list[dict[str, Any]]:
    """Resources billed 0 for lack of a price in `period` (default: the running one).

    One row per price that would fix it: `kind`, `keys` (the id key first, then the name
    key: set either), `entity_type`, `entities` (how many resources), `projects`.
    """
    period = period or Period.containing(now)
    rules = with_api_settings(rules)
    billing = _Billing.load()
    found: dict[tuple[str, tuple[str, ...]], tuple[str, set[str], set[str]]] = {}
    for row in _overlapping(period, None):
        usage = billing.usage(row)
        for line in rating.rate_usage(usage, period, now, billing.prices, rules):
            if line.missing_price:
                keys = tuple(rating.price_keys(usage))
                _, entities, projects = found.setdefault(
                    (line.price_kind, keys), (usage.entity_type, set(), set())
                )
                entities.add(usage.entity_id)
                projects.add(usage.project_id)
    return [
        {
            "kind": kind,
            "keys": list(keys),
            "entity_type": entity_type,
            "entities": len(entities),
            "projects": sorted(projects),
        }
        for (kind, keys), (entity_type, entities, projects) in sorted(found.items())
    ]


def month_to_date(now: datetime, rules: RatingRules) -> dict[str, Totals]:
    """Every project's usage this month, up to `now`, rated in one pass over the ledger.

    The bulk form of `invoice_for(project, running period)` for screens that list thousands
    of projects: the same prices, rules and rounding, but without the adjustments to closed
    invoices (they need each project's history: `invoice_for` shows them) and without
    creating invoice rows. Projects with no usage this month are absent.
    """
    require_aware(now, "now")
    period = Period.containing(now)
    billing = _Billing.load()
    lines: dict[str, list[Line]] = defaultdict(list)
    query = Interval.select().where(
        (Interval.start < min(now, period.end))
        & (Interval.end.is_null() | (Interval.end > period.start))
    )
    for row in query.iterator():
        usage = billing.usage(row)
        lines[row.project_id].extend(rating.rate_usage(usage, period, now, billing.prices, rules))
    return {project: rating.totals(rated, rules) for project, rated in lines.items() if rated}


# --- rating the ledger ---------------------------------------------------------------------


@dataclass(frozen=True)
class BillLine:
    """One invoice line as shown and as frozen: a rated interval, or an adjustment.

    An adjustment (`adjusts` = the id of the closed invoice it corrects) has no unit price;
    its hours and amount are the differences, its start and end the corrected period.
    """

    entity_id: str
    entity_type: str
    description: str
    start: datetime
    end: datetime
    hours: Decimal
    quantity: int
    unit_price: Decimal | None
    amount: Decimal
    missing_price: bool
    price_kind: str
    price_key: str | None
    adjusts: int | None = None

    @classmethod
    def rated(cls, line: Line) -> BillLine:
        return cls(
            entity_id=line.entity_id,
            entity_type=line.entity_type,
            description=line.description,
            start=line.start,
            end=line.end,
            hours=line.hours,
            quantity=line.quantity,
            unit_price=line.unit_price,
            amount=line.amount,
            missing_price=line.missing_price,
            price_kind=line.price_kind,
            price_key=line.price_key,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "entity_type": self.entity_type,
            "description": self.description,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "hours": _money(self.hours),
            "quantity": self.quantity,
            "unit_price": _money(self.unit_price),
            "amount": _money(self.amount),
            "missing_price": self.missing_price,
            "adjusts": self.adjusts,
        }

    def as_rating_line(self) -> Line:
        """The same amount as a rating `Line`, for `rating.totals`."""
        return Line(
            entity_id=self.entity_id,
            entity_type=self.entity_type,
            description=self.description,
            start=self.start,
            end=self.end,
            hours=self.hours,
            quantity=self.quantity,
            unit_price=self.unit_price if self.unit_price is not None else Decimal(0),
            amount=self.amount,
            missing_price=self.missing_price,
            price_kind=self.price_kind,
            price_key=self.price_key,
            exact_amount=self.amount,
        )


def _totals(lines: Sequence[BillLine | Line], rules: RatingRules) -> Totals:
    amounts = rating.totals_of([line.amount for line in lines], rules)
    if amounts.tax.is_zero():  # a credit taxed at 0 % rounds to -0.00: print it 0.00
        amounts = Totals(amounts.subtotal, amounts.tax.copy_abs(), amounts.total)
    return amounts


_PRICES = Prepared(
    lambda: Price.select(
        Price.kind,
        Price.key,
        Price.hourly,
        Price.monthly,
        Price.currency,
        Price.since,
        Price.project_id,
    ).order_by(Price.id),  # on a `since` tie the later row wins
    memo=RowMemo(4096),
)
_VOLUME_TYPES = Prepared(lambda: VolumeType.select(VolumeType.type_id, VolumeType.name))


def price_rows() -> tuple[rating.Price, ...]:
    """Every price row, for rating, in id order."""
    return tuple(rating.Price(*row) for row in _PRICES.rows())


@dataclass(frozen=True)
class _Billing:
    """What rating needs besides the ledger: every price row, volume type names."""

    prices: tuple[rating.Price, ...]
    type_names: dict[str, str]

    @cached_property
    def inputs_digest(self) -> str:
        """The digest of the prices and the type names, for `rated_from`: taken once, as
        their text can be long (a price per project) and every closed project needs it."""
        text = repr((self.prices, sorted(self.type_names.items())))
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def load(cls) -> _Billing:
        names = dict(_VOLUME_TYPES.raw())
        return cls(price_rows(), names)

    def usage(self, row: Interval | IntervalRow | _UsageRow) -> Usage:
        a: dict[str, Any] = row.attributes or {}
        size = a.get("size")
        if isinstance(size, float):
            size = Decimal(str(size))
        elif not isinstance(size, int | Decimal) or isinstance(size, bool):
            size = None
        type_id = a.get("volume_type_id")
        return Usage(
            entity_id=row.entity_id,
            entity_type=row.entity_type,
            project_id=row.project_id,
            start=row.start,
            end=row.end,
            name=row.name,
            flavor_id=a.get("flavor_id"),
            flavor=a.get("flavor"),
            volume_type_id=type_id,
            volume_type=self.type_names.get(type_id) if type_id else None,
            size=size,
        )

    def rate(
        self,
        rows: Iterable[Interval | IntervalRow],
        period: Period,
        now: datetime,
        rules: RatingRules,
    ) -> list[BillLine]:
        """The lines of `rows` in `period` (clipped to `now`), in a fixed order."""
        rater = rating.UsageRater(period, now, self.prices, rules)
        lines = [BillLine.rated(line) for row in rows for line in rater.rate(self.usage(row))]
        lines.sort(key=lambda b: (b.entity_type, b.entity_id, b.start))
        return lines


def _overlapping(period: Period, project_id: str | None) -> list[IntervalRow]:
    """The intervals overlapping `period`: every project's, or `project_id`'s (a prepared
    read: the running invoices ask for it at every request)."""
    if project_id is not None:
        return [
            IntervalRow(*row) for row in _PROJECT_OVERLAPPING.rows(**_window(period, project_id))
        ]
    query = IntervalRow.query().where(
        (Interval.start < period.end) & (Interval.end.is_null() | (Interval.end > period.start))
    )
    return IntervalRow.rows(query)


def _projects_with_usage(period: Period, project_id: str | None = None) -> set[str]:
    query = (
        Interval.select(Interval.project_id)
        .where(
            (Interval.start < period.end) & (Interval.end.is_null() | (Interval.end > period.start))
        )
        .distinct()
    )
    if project_id is not None:
        query = query.where(Interval.project_id == project_id)
    return {project for (project,) in query.tuples()}


class _ClosedInvoice(NamedTuple):
    """What the adjustments read of a closed invoice (`_CLOSED_INVOICES`): plain rows, as
    building a model instance per invoice costs more than rating a small project."""

    id: int
    period: str
    number: int
    rounding: str
    decimal_places: int
    tax_percent: Decimal
    currency: str
    rated_from: str | None


def _frozen_rules(invoice: Invoice | _ClosedInvoice) -> RatingRules:
    return RatingRules(
        rounding=invoice.rounding,
        decimal_places=invoice.decimal_places,
        tax_percent=invoice.tax_percent,
        currency=invoice.currency,
    )


def _sum(values: Iterable[Decimal]) -> Decimal:
    """An exact sum (exact hours have 50 digits: more than the default context keeps)."""
    with localcontext(_EXACT):
        return sum(values, Decimal(0))


def rated_from(rows: Iterable[Sequence[Any]], billing: _Billing) -> str:
    """The digest of what a project's lines for one period are rated from: its intervals
    overlapping the period as stored (`rows`: `_UsageRow`'s columns as the driver returns
    them, in any order), every price row and the volume type names.

    Closing records it (`Invoice.rated_from`). Re-rated (`_adjustments`) from inputs with
    the same digest, a closed invoice gives its own lines again: with no adjustment frozen
    for it, it needs none. `repr`, not `pickle` (`db.digest`): equal values always give the
    same text, so equal inputs give the same digest in any process; a false match would
    need two different inputs with the same SHA-256."""
    text = "\n".join(sorted(repr(tuple(row)) for row in rows))
    return hashlib.sha256(f"{billing.inputs_digest}\n{text}".encode()).hexdigest()


def _billed(project_id: str, wanted: set[int]) -> dict[int, dict[str, list[BillLine]]]:
    """What was billed for each invoice of `wanted`, by resource: its own lines and the
    adjustments to it (only ever on a later closed invoice of the project)."""
    billed: dict[int, dict[str, list[BillLine]]] = defaultdict(lambda: defaultdict(list))
    for invoice_id, *values in _PROJECT_LINES.rows(project_id=project_id):
        line = BillLine(*values)
        if line.adjusts in wanted or (line.adjusts is None and invoice_id in wanted):
            target = line.adjusts if line.adjusts is not None else invoice_id
            billed[target][line.entity_id].append(line)
    return billed


class _Read(NamedTuple):
    """What `_adjustments` reads, as stored: the project's closed invoices
    (`_CLOSED_INVOICES`) and its intervals over their periods (`_HISTORY`)."""

    closed: list[tuple[Any, ...]]
    intervals: list[tuple[Any, ...]]


def _adjustments(
    project_id: str, before: Period, billing: _Billing, read: _Read | None = None
) -> list[BillLine]:
    """The pending adjustment lines for every closed invoice of the project before `before`.

    See the module docstring: re-rate each closed period from today's ledger and the
    prices in force in it, with the rules frozen at its close; subtract what was billed for
    it (its own lines and every adjustment already frozen for it); one line per resource
    with a non-zero difference. `read`: what it reads, when the caller read it already.
    """
    closed = sorted(
        (
            _ClosedInvoice(*row)
            for row in _CLOSED_INVOICES.convert(
                read.closed if read else _CLOSED_INVOICES.raw(project_id=project_id)
            )
            if row[1] < str(before)
        ),
        key=attrgetter("period"),
    )
    if not closed:
        return []
    last_end = Period.parse(closed[-1].period).end
    first_start = Period.parse(closed[0].period).start  # earlier intervals re-rate to nothing
    window = {
        "start": Interval.start.db_value(first_start),
        "end": Interval.start.db_value(last_end),
    }
    stored = read.intervals if read else _HISTORY.raw(project_id=project_id, **window)
    history = [IntervalRow(*row) for row in _HISTORY.convert(stored)]
    adjusted = (  # only a digest recorded at closing can spare a re-rating
        {target for (target,) in _ADJUSTED.raw(project_id=project_id)}
        if any(invoice.rated_from is not None for invoice in closed)
        else set()
    )
    billed: dict[int, dict[str, list[BillLine]]] | None = None
    lines: list[BillLine] = []
    for invoice in closed:
        period = Period.parse(invoice.period)
        picked = [
            i
            for i, r in enumerate(history)
            if r.start < period.end and (r.end is None or r.end > period.start)
        ]
        if (
            invoice.rated_from is not None
            and invoice.id not in adjusted
            and invoice.rated_from
            == rated_from((_rated_columns(stored[i]) for i in picked), billing)
        ):
            continue  # re-rated, it would give its own lines again: no difference
        if billed is None:
            billed = _billed(project_id, {c.id for c in closed})
        rows = [history[i] for i in picked]
        recomputed: dict[str, list[BillLine]] = defaultdict(list)
        for line in billing.rate(rows, period, period.end, _frozen_rules(invoice)):
            recomputed[line.entity_id].append(line)
        was = billed.get(invoice.id, {})
        for entity_id in sorted(set(recomputed) | set(was)):
            now_lines, was_lines = recomputed.get(entity_id, []), was.get(entity_id, [])
            difference = _sum(b.amount for b in now_lines) - _sum(b.amount for b in was_lines)
            if difference == 0:
                continue
            last = (now_lines or [b for b in was_lines if b.adjusts is None] or was_lines)[-1]
            description = (
                f"adjustment to invoice #{invoice.number} ({invoice.period}): {last.description}"
                if last.adjusts is None
                else last.description  # already an adjustment to this invoice
            )
            lines.append(
                BillLine(
                    entity_id=entity_id,
                    entity_type=last.entity_type,
                    description=description,
                    start=period.start,
                    end=period.end,
                    hours=_sum(b.hours for b in now_lines) - _sum(b.hours for b in was_lines),
                    quantity=last.quantity,
                    unit_price=None,
                    amount=difference,
                    missing_price=any(b.missing_price for b in now_lines),
                    price_kind=last.price_kind,
                    price_key=None,
                    adjusts=invoice.id,
                )
            )
    return lines


# --- invoices as JSON ----------------------------------------------------------------------


def _invoice_json(
    invoice: Invoice,
    lines: Sequence[BillLine] | None,
    amounts: Totals | None,
    rules: RatingRules | None,
) -> dict[str, Any]:
    """An invoice in its JSON shape; `lines` None leaves them out (for lists)."""
    period = Period.parse(invoice.period)
    closed = invoice.state in CLOSED_STATES
    doc: dict[str, Any] = {
        "id": invoice.id,
        "number": invoice.number,
        "project_id": invoice.project_id,
        "period": invoice.period,
        "state": invoice.state,
        "start": format_time(period.start),
        "end": format_time(period.end),
        "currency": invoice.currency if closed or rules is None else rules.currency,
        "tax_percent": _money(
            invoice.tax_percent if closed or rules is None else rules.tax_percent
        ),
        "subtotal": _money(invoice.subtotal if closed or amounts is None else amounts.subtotal),
        "tax": _money(invoice.tax if closed or amounts is None else amounts.tax),
        "total": _money(invoice.total if closed or amounts is None else amounts.total),
        "closed_at": format_time(invoice.closed_at) if invoice.closed_at else None,
        "paid_at": format_time(invoice.paid_at) if invoice.paid_at else None,
    }
    if lines is not None:
        doc["lines"] = [line.to_json() for line in lines]
    return doc


_FROZEN_LINES = Prepared(
    lambda invoice: (
        InvoiceLine.select(*(getattr(InvoiceLine, name) for name in BillLine.__dataclass_fields__))
        .where(InvoiceLine.invoice == invoice)
        .order_by(InvoiceLine.position)
    ),
    "invoice",
)


_PROJECT_LINES = Prepared(
    lambda project_id: (
        InvoiceLine.select(
            InvoiceLine.invoice,
            *(getattr(InvoiceLine, name) for name in BillLine.__dataclass_fields__),
        )
        .where(
            InvoiceLine.invoice.in_(
                Invoice.select(Invoice.id).where(
                    (Invoice.project_id == project_id) & Invoice.state.in_(CLOSED_STATES)
                )
            )
        )
        .order_by(InvoiceLine.invoice, InvoiceLine.position)
    ),
    "project_id",
)


#: The closed invoices of a project that some adjustment (on a later one) is for.
_ADJUSTED = Prepared(
    lambda project_id: (
        InvoiceLine.select(InvoiceLine.adjusts)
        .where(
            InvoiceLine.invoice.in_(
                Invoice.select(Invoice.id).where(
                    (Invoice.project_id == project_id) & Invoice.state.in_(CLOSED_STATES)
                )
            )
            & InvoiceLine.adjusts.is_null(False)
        )
        .distinct()
    ),
    "project_id",
)


def _frozen_lines(invoice: Invoice) -> list[BillLine]:
    return [BillLine(*row) for row in _FROZEN_LINES.rows(invoice=invoice.id)]


def _closed_json(invoice: Invoice, with_lines: bool = True) -> dict[str, Any]:
    return _invoice_json(invoice, _frozen_lines(invoice) if with_lines else None, None, None)


def _live_lines(
    project_id: str,
    period: Period,
    now: datetime,
    rules: RatingRules,
    billing: _Billing,
    rated: list[BillLine] | None = None,
) -> list[BillLine]:
    """The lines the project's invoice for `period` has if closed now (adjustments last):
    its intervals overlapping the period rated (`rated`, when the caller has them), then
    the adjustments."""
    if rated is None:
        rated = _rated_now(_overlapping(period, project_id), period, now, rules, billing)
    return rated + _pending_adjustments(project_id, period, billing)


def _rated_now(
    rows: list[IntervalRow], period: Period, now: datetime, rules: RatingRules, billing: _Billing
) -> list[BillLine]:
    """The lines of `rows` in the invoice of `period` computed at `now`."""
    return billing.rate(rows, period, min(now, period.end), rules)


# --- the read path's queries, rendered once (db.Prepared), and its cache of adjustments -----

_PROJECT_OVERLAPPING = Prepared(
    lambda project_id, start, end: IntervalRow.query().where(
        (Interval.project_id == project_id)
        & (Interval.start < end)
        & (Interval.end.is_null() | (Interval.end > start))
    ),
    "project_id",
    "start",
    "end",
    memo=INTERVAL_ROWS,
)
_INVOICE = Prepared(lambda key: Invoice.select().where(Invoice.id == key), "key")
_CLOSED_INVOICES = Prepared(
    lambda project_id: (
        Invoice.select(*(getattr(Invoice, name) for name in _ClosedInvoice._fields))
        .where((Invoice.project_id == project_id) & Invoice.state.in_(CLOSED_STATES))
        .order_by(Invoice.id)
    ),
    "project_id",
)
_HISTORY = Prepared(
    lambda project_id, start, end: (
        IntervalRow.query()
        .where(
            (Interval.project_id == project_id)
            & (Interval.start < end)
            & (Interval.end.is_null() | (Interval.end > start))
        )
        .order_by(Interval.entity_id, Interval.start, Interval.id)
    ),
    "project_id",
    "start",
    "end",
    memo=INTERVAL_ROWS,
)


def _window(period: Period, project_id: str) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "start": Interval.start.db_value(period.start),
        "end": Interval.start.db_value(period.end),
    }


#: `_adjustments` results by a digest of everything they are computed from: the project's
#: closed invoices (the only ones holding lines, including every adjustment to them), its
#: intervals overlapping the closed periods (as stored), every price row and the volume
#: type names. A change to any of them is a new digest: an entry is never stale, only unused.
ADJUSTMENTS: DigestCache[tuple[BillLine, ...]] = DigestCache(2048)


def _adjustments_key(
    project_id: str, before: Period, billing: _Billing
) -> tuple[bytes, _Read] | None:
    """The digest of what `_adjustments(project_id, before, billing)` reads, and what it
    reads; None when the project has no closed invoice before `before` (then there is no
    adjustment)."""
    closed = _CLOSED_INVOICES.raw(project_id=project_id)
    periods = sorted(Period.parse(row[1]) for row in closed if row[1] < str(before))
    if not periods:
        return None
    window = {
        "project_id": project_id,
        "start": Interval.start.db_value(periods[0].start),
        "end": Interval.start.db_value(periods[-1].end),
    }
    stored = _HISTORY.raw(**window)
    key = digest(
        project_id, str(before), closed, stored, billing.prices, sorted(billing.type_names.items())
    )
    return key, _Read(closed, stored)


def _pending_adjustments(project_id: str, before: Period, billing: _Billing) -> list[BillLine]:
    """`_adjustments`, from `ADJUSTMENTS` when nothing it reads has changed since."""
    with read_snapshot():  # the digest and the lines from the same state of the database
        found = _adjustments_key(project_id, before, billing)
        if found is None:
            return []
        key, read = found
        cached = ADJUSTMENTS.get(key)
        if cached is not None:
            return list(cached)
        lines = _adjustments(project_id, before, billing, read)
    ADJUSTMENTS.put(key, tuple(lines))
    return lines


def _live_json(
    invoice: Invoice,
    now: datetime,
    rules: RatingRules,
    billing: _Billing,
    with_lines: bool = True,
    rated: list[BillLine] | None = None,
) -> dict[str, Any]:
    period = Period.parse(invoice.period)
    lines = _live_lines(invoice.project_id, period, now, rules, billing, rated)
    return _invoice_json(invoice, lines if with_lines else None, _totals(lines, rules), rules)


def _invoice_id(invoice_id: int | str) -> int:
    if isinstance(invoice_id, bool):
        raise InvalidInput(f"invoice id must be a whole number, got {invoice_id!r}")
    if isinstance(invoice_id, str):
        text = invoice_id.strip()
        if not text.isdecimal():
            raise InvalidInput(f"invoice id must be a whole number, got {invoice_id!r}")
        return int(text)
    return invoice_id


def _get(invoice_id: int | str) -> Invoice:
    key = _invoice_id(invoice_id)
    invoice: Invoice | None = None
    if 0 < key < 2**31:  # the id column's range: a larger id cannot exist
        found = _INVOICE.models(Invoice, key=key)
        invoice = found[0] if found else None
    if invoice is None:
        raise NotFound(f"invoice {key} does not exist")
    return invoice


def _ensure_rows(
    keys: Iterable[tuple[str, Period]], now: datetime
) -> dict[tuple[str, str], Invoice]:
    """The invoice rows of (project, period) pairs, creating the missing ones (lazily, so a
    running invoice has a stable id); creating is one transaction, safe against a racer."""
    wanted = {(project, str(period)) for project, period in keys}
    if not wanted:
        return {}
    rows = _rows_for(wanted)
    missing = sorted(wanted - set(rows))
    if missing:
        with write_transaction():
            for chunk_start in range(0, len(missing), 200):
                Invoice.insert_many(
                    [
                        {"project_id": p, "period": y, "state": IN_PROGRESS, "created_at": now}
                        for p, y in missing[chunk_start : chunk_start + 200]
                    ]
                ).on_conflict_ignore().execute()
        rows = _rows_for(wanted)
    return rows


def _rows_for(wanted: set[tuple[str, str]], lock: bool = False) -> dict[tuple[str, str], Invoice]:
    """The invoice rows of (project, period) pairs that exist (`lock`: FOR UPDATE)."""
    rows: dict[tuple[str, str], Invoice] = {}
    for period in {y for _, y in wanted}:
        projects = sorted(p for p, y in wanted if y == period)
        for start in range(0, len(projects), 200):
            query = Invoice.select().where(
                (Invoice.period == period) & Invoice.project_id.in_(projects[start : start + 200])
            )
            if lock:
                query = query.for_update()
            rows.update({(r.project_id, r.period): r for r in query})
    return rows


# --- reading invoices ----------------------------------------------------------------------


def _first_period(project_id: str | None = None) -> Period | None:
    """The earliest period with usage or an open invoice row (for that project)."""
    starts = Interval.select(peewee.fn.MIN(Interval.start))
    periods = Invoice.select(peewee.fn.MIN(Invoice.period)).where(Invoice.state == IN_PROGRESS)
    if project_id is not None:
        starts = starts.where(Interval.project_id == project_id)
        periods = periods.where(Invoice.project_id == project_id)
    candidates: list[Period] = []
    first_start = starts.scalar()
    if first_start is not None:
        candidates.append(Period.containing(Interval.start.python_value(first_start)))
    first_open = periods.scalar()
    if first_open is not None:
        candidates.append(Period.parse(first_open))
    return min(candidates) if candidates else None


def _open_rows(period: Period, project_id: str | None) -> set[str]:
    query = Invoice.select(Invoice.project_id).where(
        (Invoice.period == str(period)) & (Invoice.state == IN_PROGRESS)
    )
    if project_id is not None:
        query = query.where(Invoice.project_id == project_id)
    return {p for (p,) in query.tuples()}


def _closed_projects(period: Period) -> set[str]:
    query = Invoice.select(Invoice.project_id).where(
        (Invoice.period == str(period)) & Invoice.state.in_(CLOSED_STATES)
    )
    return {p for (p,) in query.tuples()}


def _projects_with_closed_before(period: Period, project_id: str | None) -> set[str]:
    query = (
        Invoice.select(Invoice.project_id)
        .where(Invoice.state.in_(CLOSED_STATES) & (Invoice.period < str(period)))
        .distinct()
    )
    if project_id is not None:
        query = query.where(Invoice.project_id == project_id)
    return {p for (p,) in query.tuples()}


def _open_projects(period: Period, project_id: str | None, billing: _Billing | None) -> set[str]:
    """Projects whose invoice for `period` is not closed yet and has something on it: usage
    in the period, an invoice row, or (when `billing` is given) adjustments to carry."""
    projects = _projects_with_usage(period, project_id) | _open_rows(period, project_id)
    projects -= _closed_projects(period)
    if billing is not None:
        for project in sorted(_projects_with_closed_before(period, project_id) - projects):
            if _adjustments(project, period, billing):
                projects.add(project)
    return projects


def _open_keys(
    now: datetime, billing: _Billing, project_id: str | None, period: Period | None
) -> set[tuple[str, Period]]:
    """(project, period) of every invoice not closed yet: the running period's and those of
    ended periods still waiting to be closed."""
    current = Period.containing(now)
    if period is not None:
        periods = [period] if period <= current else []
    else:
        first = _first_period(project_id)
        periods = [*ended_periods(first, now), current] if first is not None else [current]
    keys: set[tuple[str, Period]] = set()
    for candidate in periods:
        projects = _open_projects(candidate, project_id, billing if candidate == current else None)
        keys.update((project, candidate) for project in projects)
    return keys


def list_invoices(
    now: datetime,
    rules: RatingRules,
    project_id: str | None = None,
    period: Period | None = None,
) -> list[dict[str, Any]]:
    """Invoices without their lines, newest period first, then by project.

    Closed invoices as frozen; open ones (`in_progress`) computed live, each given an id.
    """
    require_aware(now, "now")
    rules = with_api_settings(rules)
    billing = _Billing.load()
    query = Invoice.select().where(Invoice.state.in_(CLOSED_STATES))
    if project_id is not None:
        query = query.where(Invoice.project_id == project_id)
    if period is not None:
        query = query.where(Invoice.period == str(period))
    result = [_closed_json(row, with_lines=False) for row in query]
    rows = _ensure_rows(_open_keys(now, billing, project_id, period), now)
    result.extend(_live_json(row, now, rules, billing, with_lines=False) for row in rows.values())
    result.sort(key=lambda doc: doc["project_id"])
    result.sort(key=lambda doc: doc["period"], reverse=True)
    return result


def show_invoice(invoice_id: int | str, now: datetime, rules: RatingRules) -> dict[str, Any]:
    """One invoice with its lines; an open one is computed now. NotFound for an unknown id."""
    require_aware(now, "now")
    rules = with_api_settings(rules)
    invoice = _get(invoice_id)
    if invoice.state in CLOSED_STATES:
        return _closed_json(invoice)
    return _live_json(invoice, now, rules, _Billing.load())


def show_invoice_until(
    invoice_id: int | str, now: datetime, rules: RatingRules
) -> tuple[dict[str, Any], datetime]:
    """`show_invoice`, and until when it stays the same but for `now` itself: for every
    `later` in `[now, until)`, `show_invoice(invoice_id, later, rules)` on the same database
    is this answer with each line's end that is `now` (a resource still running) being
    `later` instead (`rating.steady_until`; the adjustments do not depend on `now`). A
    closed invoice's answer does not depend on `now`: until `rating.FOREVER`."""
    require_aware(now, "now")
    rules = with_api_settings(rules)
    invoice = _get(invoice_id)
    if invoice.state in CLOSED_STATES:
        return _closed_json(invoice), rating.FOREVER
    billing = _Billing.load()
    period = Period.parse(invoice.period)
    rows = _overlapping(period, invoice.project_id)
    rated = _rated_now(rows, period, now, rules, billing)  # once: shown, and how long for
    usages = (billing.usage(row) for row in rows)
    ends = [(line.start, line.end) for line in rated]
    until = rating.steady_until(usages, period, now, billing.prices, rules, ends)
    return _live_json(invoice, now, rules, billing, rated=rated), until


def invoice_for(
    project_id: str, period: Period, now: datetime, rules: RatingRules
) -> dict[str, Any]:
    """The project's invoice for `period`, with its lines (created lazily when open).

    NotFound when the project has nothing to bill in that period; InvalidInput for a
    period that has not begun.
    """
    require_aware(now, "now")
    rules = with_api_settings(rules)
    if period > Period.containing(now):
        raise InvalidInput(f"period {period} has not begun")
    invoice = Invoice.get_or_none(
        (Invoice.project_id == project_id) & (Invoice.period == str(period))
    )
    if invoice is not None and invoice.state in CLOSED_STATES:
        return _closed_json(invoice)
    billing = _Billing.load()
    if invoice is None:
        if not _live_lines(project_id, period, now, rules, billing):
            raise NotFound(f"project {project_id} has no invoice for {period}")
        invoice = _ensure_rows([(project_id, period)], now)[(project_id, str(period))]
        if invoice.state in CLOSED_STATES:  # closed by another process meanwhile
            return _closed_json(invoice)
    return _live_json(invoice, now, rules, billing)


def running_lines(
    now: datetime, rules: RatingRules, project_id: str | None = None
) -> list[BillLine]:
    """The running month's lines up to `now`, of every project (or one), in one pass: the
    lines its live invoices show, without the adjustments to closed invoices."""
    require_aware(now, "now")
    rules = with_api_settings(rules)
    period = Period.containing(now)
    return _Billing.load().rate(_overlapping(period, project_id), period, now, rules)


# --- closing -------------------------------------------------------------------------------


def _lock_counter() -> int:
    """Take the invoice-number counter (held until commit) and return its value."""
    query = InvoiceCounter.select().where(InvoiceCounter.name == _COUNTER)
    if not is_sqlite():
        query = query.for_update()
    row = query.get_or_none()
    if row is None:  # a database migrated without its counter row: recreate it
        highest = Invoice.select(peewee.fn.MAX(Invoice.number)).scalar() or 0
        InvoiceCounter.insert(name=_COUNTER, value=highest).on_conflict_ignore().execute()
        row = query.get()
    return int(row.value)


#: Invoices closed per transaction: the write lock is held for a moment only, and a month of
#: ten thousand projects does not take ten thousand commits.
CLOSE_GROUP = 100


class _UsageRow(NamedTuple):
    """The columns of an `Interval` that rating reads (`_Billing.usage`)."""

    entity_id: str
    entity_type: str
    project_id: str
    start: datetime
    end: datetime | None
    name: str | None
    attributes: dict[str, Any]


#: Where `_UsageRow`'s columns are in an `IntervalRow`.
_USAGE_IN_INTERVAL_ROW = tuple(IntervalRow._fields.index(name) for name in _UsageRow._fields)


def _rated_columns(row: Sequence[Any]) -> tuple[Any, ...]:
    """An `IntervalRow` as stored (`_HISTORY.raw`), cut to the columns rating reads."""
    return tuple(row[i] for i in _USAGE_IN_INTERVAL_ROW)


def _period_lines(
    period: Period, projects: Sequence[str], billing: _Billing, rater: rating.UsageRater
) -> tuple[dict[str, list[Line]], dict[str, list[tuple[Any, ...]]]]:
    """The rated lines of `projects` in `period`, by project, unordered, and the rows they
    were rated from as stored (for `rated_from`): their intervals overlapping it (as
    `_overlapping` reads them), a query per 200 projects, read from the cursor without
    peewee's row wrappers and rated as they come (each usage is dropped at once)."""
    query = Interval.select(*(getattr(Interval, name) for name in _UsageRow._fields)).where(
        (Interval.start < period.end) & (Interval.end.is_null() | (Interval.end > period.start))
    )
    to_time, to_attributes = Interval.start.python_value, Interval.attributes.python_value
    lines: dict[str, list[Line]] = defaultdict(list)
    stored: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for start in range(0, len(projects), 200):
        chunk = query.where(Interval.project_id.in_(list(projects[start : start + 200])))
        for raw in database.execute(chunk):
            entity_id, entity_type, project_id, begin, end, name, attributes = raw
            stored[project_id].append(raw)
            row = _UsageRow(
                entity_id,
                entity_type,
                project_id,
                to_time(begin),
                None if end is None else to_time(end),
                name,
                to_attributes(attributes),
            )
            lines[project_id] += rater.rate(billing.usage(row))
    return lines, stored


def _closed_before(period: Period, projects: Sequence[str]) -> set[str]:
    """Those of `projects` with a closed invoice for a period before `period`, found through
    the (project_id, period) index: an index on the state would read every closed invoice
    of every project, more at each group closed and each month."""
    found: set[str] = set()
    for start in range(0, len(projects), 200):
        query = Invoice.select(Invoice.project_id, Invoice.state).where(
            (Invoice.period < str(period))
            & Invoice.project_id.in_(list(projects[start : start + 200]))
        )
        found.update(project for project, state in query.tuples() if state in CLOSED_STATES)
    return found


#: The order of `_Billing.rate`'s lines.
_LINE_ORDER = attrgetter("entity_type", "entity_id", "start")


class _LineValues:
    """Invoice lines in their database form (for `insert_values` of `NAMES`), made early
    and kept as tuples of plain values while their invoice's id is not known yet."""

    NAMES: tuple[str, ...] = (
        "invoice",
        "position",
        "entity_id",
        "entity_type",
        "description",
        "start",
        "end",
        "hours",
        "quantity",
        "unit_price",
        "amount",
        "missing_price",
        "price_kind",
        "price_key",
        "adjusts",
    )

    def __init__(self) -> None:
        self._times: dict[datetime, Any] = {}  # a period's lines share their bounds
        # Lines rated alike share their Decimal objects (`rating.UsageRater`): each one's
        # text, by identity (an equal Decimal may have another exponent, so another text),
        # kept with the object so that its id is not reused.
        self._money: dict[int, tuple[Decimal | None, Any]] = {}

    def _time(self, value: datetime) -> Any:
        stored = self._times.get(value)
        if stored is None:
            stored = self._times[value] = InvoiceLine.start.db_value(value)
        return stored

    def _text(self, value: Decimal | None) -> Any:
        known = self._money.get(id(value))
        if known is None or known[0] is not value:
            known = self._money[id(value)] = (value, InvoiceLine.amount.db_value(value))
        return known[1]

    def rows(self, lines: Sequence[Line], adjustments: Sequence[BillLine]) -> list[tuple[Any, ...]]:
        """One invoice's lines, rated lines first then adjustments, as `NAMES` without the
        invoice (`(invoice_id, *row)` completes a row)."""
        money, time = self._text, self._time
        rows: list[tuple[Any, ...]] = [
            (
                position,
                line.entity_id,
                line.entity_type,
                line.description,
                time(line.start),
                time(line.end),
                money(line.hours),
                line.quantity,
                money(line.unit_price),
                money(line.amount),
                line.missing_price,
                line.price_kind,
                line.price_key,
                None,
            )
            for position, line in enumerate(lines)
        ]
        rows.extend(
            (
                position,
                adjustment.entity_id,
                adjustment.entity_type,
                adjustment.description,
                time(adjustment.start),
                time(adjustment.end),
                money(adjustment.hours),
                adjustment.quantity,
                money(adjustment.unit_price),
                money(adjustment.amount),
                adjustment.missing_price,
                adjustment.price_kind,
                adjustment.price_key,
                adjustment.adjusts,
            )
            for position, adjustment in enumerate(adjustments, len(lines))
        )
        return rows


def _close_group(
    project_ids: Sequence[str], period: Period, now: datetime, rules: RatingRules, dry_run: bool
) -> list[dict[str, Any]]:
    """Close some project-periods, in the order given, in one transaction; the invoices
    closed (without their lines), leaving out those already closed or with nothing to bill.
    """
    key = str(period)
    with database.atomic() if dry_run else write_transaction():
        last_number = 0 if dry_run else _lock_counter()
        existing = _rows_for({(p, key) for p in project_ids})
        todo = [
            p
            for p in project_ids
            if (p, key) not in existing or existing[(p, key)].state == IN_PROGRESS
        ]
        if not todo:
            return []
        billing = _Billing.load()
        rater = rating.UsageRater(period, period.end, billing.prices, rules)
        rated, stored = _period_lines(period, todo, billing, rater)
        history = _closed_before(period, todo)
        line_values = _LineValues()
        drafts: list[tuple[str, list[tuple[Any, ...]], Totals, str | None]] = []
        for project_id in todo:
            lines = rated.pop(project_id, [])
            lines.sort(key=_LINE_ORDER)  # the order of `_Billing.rate`, adjustments last
            adjustments = _adjustments(project_id, period, billing) if project_id in history else []
            if lines or adjustments or (project_id, key) in existing:
                amounts = _totals([*lines, *adjustments], rules)
                rows = [] if dry_run else line_values.rows(lines, adjustments)
                inputs = None if dry_run else rated_from(stored.pop(project_id, ()), billing)
                drafts.append((project_id, rows, amounts, inputs))
        if dry_run:
            return [
                _invoice_json(
                    existing.get((p, key))
                    or Invoice(id=None, project_id=p, period=key, state=IN_PROGRESS),
                    None,
                    amounts,
                    rules,
                )
                for p, _, amounts, _ in drafts
            ]
        created = Invoice.created_at.db_value(now)
        missing = [
            (p, key, IN_PROGRESS, created) for p, _, _, _ in drafts if (p, key) not in existing
        ]
        insert_values(
            Invoice, ("project_id", "period", "state", "created_at"), missing, ignore=True
        )
        invoices = _rows_for({(p, key) for p, _, _, _ in drafts}, lock=not is_sqlite())
        number = last_number
        closed: list[Invoice] = []
        changes: list[dict[str, Any]] = []
        line_rows: list[tuple[Any, ...]] = []
        for project_id, rows, amounts, inputs in drafts:
            invoice = invoices[(project_id, key)]
            if invoice.state != IN_PROGRESS:  # unreachable while the counter is held
                continue
            number += 1
            change = {
                "state": UNPAID,
                "number": number,
                "currency": rules.currency,
                "rounding": rules.rounding,
                "decimal_places": rules.decimal_places,
                "tax_percent": rules.tax_percent,
                "subtotal": amounts.subtotal,
                "tax": amounts.tax,
                "total": amounts.total,
                "closed_at": now,
                "rated_from": inputs,
            }
            for name, value in change.items():  # as re-read after the update
                setattr(invoice, name, value)
            changes.append({"id": invoice.id, **change})
            closed.append(invoice)
            line_rows.extend((invoice.id, *row) for row in rows)
        if not closed:
            return []
        InvoiceCounter.update(value=number).where(InvoiceCounter.name == _COUNTER).execute()
        update_rows(Invoice, changes)
        for start in range(0, len(line_rows), 1000):
            insert_values(InvoiceLine, _LineValues.NAMES, line_rows[start : start + 1000])
        for invoice in closed:
            log.info(
                "closed invoice %s: project %s, %s, total %s %s",
                invoice.number,
                invoice.project_id,
                period,
                invoice.total,
                rules.currency,
            )
        return [_closed_json(invoice, with_lines=False) for invoice in closed]


def close_invoices(
    period: Period | None,
    now: datetime,
    rules: RatingRules,
    *,
    dry_run: bool = False,
    through: Period | None = None,
) -> list[dict[str, Any]]:
    """Close the invoices of `period`, or of every ended period not closed yet (None).

    Every project with usage in the period (or an invoice row for it; or, for the latest
    ended period, adjustments to carry) gets its invoice closed, in (period, project)
    order, `CLOSE_GROUP` invoices per transaction. Idempotent and safe to run in two
    processes at once: each project-period is closed once. `through` limits None to periods
    up to that one (the scheduler uses it). `dry_run` computes without writing (numbers are
    then None).
    Returns the invoices closed (or that would be), without their lines. InvalidInput for a
    period that has not ended.
    """
    require_aware(now, "now")
    rules = with_api_settings(rules)
    latest_ended = Period.containing(now).previous()
    if period is not None:
        if period.end > now:
            raise InvalidInput(
                f"period {period} has not ended: it can be closed from {format_time(period.end)}"
            )
        periods = [period]
    else:
        first = min(filter(None, [_first_period(), latest_ended]))
        periods = [p for p in ended_periods(first, now) if through is None or p <= through]
    closed: list[dict[str, Any]] = []
    for candidate in periods:
        billing = _Billing.load() if candidate == latest_ended else None
        projects = sorted(_open_projects(candidate, None, billing))
        for start in range(0, len(projects), CLOSE_GROUP):
            group = projects[start : start + CLOSE_GROUP]
            closed.extend(_close_group(group, candidate, now, rules, dry_run))
    return closed


# --- payment -------------------------------------------------------------------------------


def pay_invoice(invoice_id: int | str, now: datetime) -> dict[str, Any]:
    """Mark a closed invoice paid (`unpaid` -> `finished`); paying twice changes nothing."""
    require_aware(now, "now")
    with write_transaction():
        invoice = _get(invoice_id)
        if invoice.state == IN_PROGRESS:
            raise InvalidInput(
                f"invoice {invoice.id} is in progress: it cannot be paid before it is closed"
            )
        if invoice.state == UNPAID:
            Invoice.update(state=FINISHED, paid_at=now).where(Invoice.id == invoice.id).execute()
        return _closed_json(Invoice.get_by_id(invoice.id), with_lines=False)


def unpay_invoice(invoice_id: int | str, now: datetime) -> dict[str, Any]:
    """Roll a paid invoice back to `unpaid` (`finished` -> `unpaid`); idempotent."""
    require_aware(now, "now")
    with write_transaction():
        invoice = _get(invoice_id)
        if invoice.state == IN_PROGRESS:
            raise InvalidInput(f"invoice {invoice.id} is in progress: it has not been closed")
        if invoice.state == FINISHED:
            Invoice.update(state=UNPAID, paid_at=None).where(Invoice.id == invoice.id).execute()
        return _closed_json(Invoice.get_by_id(invoice.id), with_lines=False)


# --- billing settings changed at run time --------------------------------------------------

#: The `[billing]` settings the API can change (`PUT /api/settings/<key>/`). A value stored
#: in the `billing_setting` table overrides the settings file for the CLI, the scheduler and
#: the API alike: `rules_from` and every use case above that takes rules read it.
API_SETTINGS: tuple[str, ...] = ("tax_percent", "currency", "company_name", "company_address")
MAX_SETTING_TEXT = 2000


def _stored_settings() -> dict[str, Any]:
    stored: dict[str, Any] = {}
    for key, value in _STORED_SETTINGS.raw():
        if key == "tax_percent":
            stored[key] = Decimal(value)
        elif key in API_SETTINGS:
            stored[key] = value
    return stored


_STORED_SETTINGS = Prepared(lambda: BillingSetting.select(BillingSetting.key, BillingSetting.value))


def billing_settings(settings: Settings) -> dict[str, Any]:
    """The `API_SETTINGS` in force: the stored value, else the settings file's.
    `tax_percent` is a Decimal, `currency` upper case."""
    values: dict[str, Any] = {name: settings[f"billing.{name}"] for name in API_SETTINGS}
    values.update(_stored_settings())
    values["currency"] = str(values["currency"]).strip().upper()
    return values


def with_api_settings(rules: RatingRules) -> RatingRules:
    """`rules` with the tax and currency stored over the API, if any: rules built earlier
    (the scheduler's, at start-up) follow a change made since."""
    stored = _stored_settings()
    changes = {name: stored[name] for name in ("tax_percent", "currency") if name in stored}
    return replace(rules, **changes) if changes else rules


def _setting_text(name: str, value: Any) -> str:
    if name == "tax_percent":
        amount = parse_decimal(value, name)
        if not 0 <= amount <= 1000:
            raise InvalidInput(f"{name} must be between 0 and 1000 (percent), got {amount}")
        return format(amount, "f")
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, not {type(value).__name__}")
    if name == "currency":
        text = value.strip().upper()
        if not (3 <= len(text) <= 8 and text.isascii() and text.isalpha()):
            raise InvalidInput(f"currency must be 3 to 8 letters (ISO 4217), got {value[:20]!r}")
        return text
    if len(value) > MAX_SETTING_TEXT or "\x00" in value:
        raise InvalidInput(f"{name} must be text of at most {MAX_SETTING_TEXT} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{name} is not valid Unicode text") from None
    return value


def set_billing_setting(name: str, value: Any, settings: Settings, now: datetime) -> dict[str, Any]:
    """Store one of `API_SETTINGS` (overriding the settings file); return `billing_settings`.

    `tax_percent`: a decimal (string or int), 0 to 1000; it applies to every invoice closed
    from now on (closed ones keep theirs). `currency`: 3 to 8 letters; changing it is
    refused once any invoice is closed (their amounts, adjustments and the prices are in the
    old currency). Company name and address: text, printed on HTML invoices.
    """
    require_aware(now, "now")
    if name not in API_SETTINGS:
        raise NotFound(f"unknown setting {name!r}: choose one of {', '.join(API_SETTINGS)}")
    text = _setting_text(name, value)
    with write_transaction():
        if name == "currency":
            _lock_counter()  # closing takes it too: no invoice closes while this checks
            current = billing_settings(settings)["currency"]
            closed = Invoice.select().where(Invoice.state.in_(CLOSED_STATES)).exists()
            if text != current and closed:
                raise InvalidInput(
                    f"the currency cannot change from {current} to {text}: invoices have "
                    f"been closed in {current}"
                )
        BillingSetting.insert(key=name, value=text, updated_at=now).on_conflict(
            conflict_target=[BillingSetting.key],
            update={BillingSetting.value: text, BillingSetting.updated_at: now},
        ).execute()
    return billing_settings(settings)
