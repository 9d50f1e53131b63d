"""Rintik's API under /api/: Rintik's paths and field names over our ledger and invoices.

* `/api/price/<kind>/` (kind: flavor, floating_ip, volume, router, snapshot, image): list
  and create; `/api/price/<kind>/<id>/`: retrieve, update (PUT, PATCH), delete (405).
  Prices are append-only (`invoices.set_price`): a create adds a row in force from its
  `since` (default: now; null: from the beginning, so open invoices and, by adjustments,
  closed ones follow it); an update adds a row for the same kind, key and project in force
  from now (the old row stays, for the past); a delete is refused with 405, since a price
  is superseded, never removed. The list shows the rows in force now and those scheduled
  later; `?history=true` shows every row. The id is the price row's id.
* `/api/invoice/?tenant_id=` (newest first) and `/api/invoice/<id>/?tenant_id=`: invoices
  with their lines nested by resource type (`instances`, `volumes`, `floating_ips`,
  `routers`, `snapshots`, `images`); `/api/invoice/simple_list/?tenant_id=` without them.
  `tenant_id` is required by the lists. `state` is Rintik's integer (1 in
  progress, 2 unpaid, 100 finished) and `state_name` ours. `POST /api/invoice/<id>/finish/`
  pays a closed invoice, `/rollback_to_unpaid/` reverts it (GET too: Rintik's dashboard
  calls them with GET). `POST /api/invoice/enable_billing/` imports an inventory of
  existing resources (`rintik_lite.importer`).
* `/api/settings/` and `/api/settings/<key>/` (`invoice_tax`, `currency`, `company_name`,
  `company_address`): stored in the database, they override the `[billing]` settings
  (`invoices.set_billing_setting`); body `{"value": ...}`, answer `{key: value}`.
* `/api/admin_overview/<name>/` and `/api/project_overview/<name>/?tenant_id=` (name:
  total_resource, active_resource, price_total_resource, price_active_resource):
  `{"label": [resource types], "data": [...]}` for the running month.

Money is a decimal string in answers; in bodies a decimal string or a JSON number (read
exactly, never through a float).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import bottle

from rintik_lite import importer, invoices, services
from rintik_lite.api.changes import Unchanged
from rintik_lite.api.errors import (
    JSON,
    MAX_ID,
    Field,
    bad_request,
    error,
    json_text,
    not_found,
    read_body,
    read_date,
    read_id,
    read_query,
    reply,
)
from rintik_lite.api.openapi import DATE_SCHEMA, ID_SCHEMA, Operation
from rintik_lite.billing import rating
from rintik_lite.billing.periods import Period
from rintik_lite.db import DigestCache, Prepared, digest, read_snapshot
from rintik_lite.errors import InvalidInput, NotFound
from rintik_lite.ledger.notifications import format_time, parse_time
from rintik_lite.models import (
    INTERVAL_ROWS,
    BillingSetting,
    Interval,
    IntervalRow,
    Invoice,
    InvoiceLine,
    Price,
    VolumeType,
)
from rintik_lite.settings import Settings

PREFIXES = ("/api",)
TAG = "rintik"

#: Price kinds in Rintik's order, and the body field naming the key of the keyed ones.
KINDS: tuple[str, ...] = ("flavor", "floating_ip", "volume", "router", "snapshot", "image")
KEY_FIELDS: Mapping[str, str] = {"flavor": "flavor_id", "volume": "volume_type_id"}

#: Rintik's invoice component labels, in its order, per ledger resource type.
LABELS: Mapping[str, str] = {
    "instance": "instances",
    "volume": "volumes",
    "floating_ip": "floating_ips",
    "router": "routers",
    "snapshot": "snapshots",
    "image": "images",
}
ID_FIELDS: Mapping[str, str] = {
    "instance": "instance_id",
    "volume": "volume_id",
    "floating_ip": "fip_id",
    "router": "router_id",
    "snapshot": "snapshot_id",
    "image": "image_id",
}
STATE_CODES: Mapping[str, int] = {
    invoices.IN_PROGRESS: 1,
    invoices.UNPAID: 2,
    invoices.FINISHED: 100,
}

#: Rintik's setting keys -> ours (`invoices.API_SETTINGS`).
SETTING_KEYS: Mapping[str, str] = {
    "invoice_tax": "tax_percent",
    "currency": "currency",
    "company_name": "company_name",
    "company_address": "company_address",
}
OVERVIEWS: tuple[str, ...] = (
    "total_resource",
    "active_resource",
    "price_total_resource",
    "price_active_resource",
)

MONEY_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,30})?$"
_MONEY = re.compile(MONEY_PATTERN, re.ASCII)
_CURRENCY = re.compile(r"^[A-Za-z]{3,8}$", re.ASCII)
_HISTORY = {"true": True, "false": False}


# --- reading bodies ------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_object(max_bytes: int) -> dict[str, Any]:
    """The body as a JSON object, numbers with a fraction read as exact Decimals."""
    raw = read_body(max_bytes)
    if not raw.strip():
        raise bad_request("request body is missing: expected a JSON object")
    try:
        doc = json.loads(raw, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise bad_request(f"request body is not valid JSON: {reason}"[:300]) from None
    if not isinstance(doc, dict):
        raise bad_request("request body must be a JSON object")
    return doc


def read_money(value: Any, where: str) -> Decimal | str | int:
    """A decimal string (digits, optional fraction) or a JSON number; set_price checks the
    range and the sign."""
    if isinstance(value, str):
        if not _MONEY.fullmatch(value):
            raise bad_request(f'{where} must be a decimal number such as "12.50"')
        return value
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise bad_request(f"{where} must be a decimal string or a number")
    return value


def read_currency(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise bad_request(f"{where} must be a currency code of 3 to 8 letters")
    return value.upper()


def _int_id(value: str, what: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        raise not_found(f"{what} {value[:40]!r} does not exist")
    return int(value)


# --- prices --------------------------------------------------------------------------------


def price_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A price row (`invoices.price_dict`) in Rintik's field names, with ours after."""
    doc: dict[str, Any] = {
        "id": row["id"],
        "hourly_price": row["hourly"],
        "hourly_price_currency": row["currency"],
        "monthly_price": row["monthly"],
        "monthly_price_currency": row["currency"] if row["monthly"] is not None else None,
    }
    if row["kind"] in KEY_FIELDS:
        doc[KEY_FIELDS[row["kind"]]] = row["key"]
    doc.update(
        {
            "project_id": row["project_id"],
            "since": row["since"],
            "created_at": row["created_at"],
            "updated_at": row["created_at"],  # rows are never edited
        }
    )
    return doc


def current_prices(rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The rows in force at `now` (per kind, key and project: the greatest `since` not after
    now, the later row on a tie, as rating picks it) and those that start later."""
    beginning = datetime.min.replace(tzinfo=UTC)
    in_force: dict[tuple[str, str, str | None], tuple[datetime, int, dict[str, Any]]] = {}
    later = []
    for row in rows:
        since = parse_time(row["since"]) if row["since"] else beginning
        if since > now:
            later.append(row)
            continue
        scope = (row["kind"], row["key"], row["project_id"])
        candidate = (since, int(row["id"]), row)
        if scope not in in_force or candidate[:2] > in_force[scope][:2]:
            in_force[scope] = candidate
    chosen = [row for _, _, row in in_force.values()] + later
    return sorted(chosen, key=lambda r: int(r["id"]))


# --- invoices ------------------------------------------------------------------------------


def _money_or_none(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


_AROUND = Prepared(
    lambda project_id, first, last: (
        IntervalRow.query()
        .where(
            (Interval.project_id == project_id)
            & (Interval.start <= last)
            & (Interval.end.is_null() | (Interval.end > first))
        )
        .order_by(Interval.start)
    ),
    "project_id",
    "first",
    "last",
    memo=INTERVAL_ROWS,
)


def _containing(rows: list[IntervalRow], at: datetime) -> IntervalRow | None:
    for row in rows:
        if row.start <= at and (row.end is None or row.end > at):
            return row
    return None


class _LineContext:
    """What an invoice line needs from the ledger and the prices to be shown as a Rintik
    component row: the interval it rates (name, flavor, volume type, address) and the
    monthly price in force.

    The interval of a line is the one of its resource containing the line's start (a
    resource's intervals never overlap), else the resource's last one. The project's
    intervals around the lines' starts are read at once; every interval of a resource is
    read only for a line none of those contains (an adjustment from before the resource
    existed, or a resource moved from another project)."""

    def __init__(self, project_id: str, lines: list[dict[str, Any]]) -> None:
        self.project_id = project_id
        self.intervals: dict[str, list[IntervalRow]] = defaultdict(list)
        self.complete: set[str] = set()  # resources whose every interval was read
        #: The bounds of the `_AROUND` read (database values), None without lines.
        self.window: tuple[Any, Any] | None = None
        starts = [parse_time(line["start"]) for line in lines]
        if starts:
            first = Interval.start.db_value(min(starts))
            last = Interval.start.db_value(max(starts))
            self.window = (first, last)
            rows = _AROUND.rows(project_id=project_id, first=first, last=last)
            for row in rows:
                self.intervals[row[0]].append(IntervalRow(*row))
        self.type_names = services.volume_type_names()
        self.prices = invoices.price_rows()

    def interval(self, entity_id: str, at: datetime) -> IntervalRow | None:
        row = _containing(self.intervals.get(entity_id, []), at)
        if row is None and entity_id not in self.complete:
            self.complete.add(entity_id)
            query = IntervalRow.query().where(Interval.entity_id == entity_id)
            self.intervals[entity_id] = IntervalRow.rows(query.order_by(Interval.start))
            row = _containing(self.intervals[entity_id], at)
        if row is not None:
            return row
        rows = self.intervals.get(entity_id, [])
        return rows[-1] if rows else None

    def monthly(
        self, entity_type: str, interval: IntervalRow | None, at: datetime, hourly: str | None
    ) -> Decimal | None:
        if interval is None or hourly is None:
            return None
        a: dict[str, Any] = interval.attributes or {}
        kind = rating.ENTITY_PRICE_KIND[entity_type]
        if kind == "flavor":
            keys = [a.get("flavor_id"), a.get("flavor")]
        elif kind == "volume":
            type_id = a.get("volume_type_id")
            keys = [type_id, self.type_names.get(type_id) if type_id else None]
        else:
            keys = [rating.DEFAULT_KEY]
        price = rating.find_price(self.prices, kind, [k for k in keys if k], self.project_id, at)
        if price is None or price.hourly != Decimal(hourly):
            return None
        return price.monthly


def component_row(
    position: int,
    line: Mapping[str, Any],
    invoice: Mapping[str, Any],
    context: _LineContext,
    now: datetime,
) -> dict[str, Any]:
    """One invoice line as a Rintik component row: its resource's fields, dates, prices."""
    entity_type = line["entity_type"]
    start = parse_time(line["start"])
    end = parse_time(line["end"])
    interval = context.interval(line["entity_id"], start)
    a: dict[str, Any] = (interval.attributes or {}) if interval is not None else {}
    name = interval.name if interval is not None else None
    currency = invoice["currency"]
    row: dict[str, Any] = {"id": position, ID_FIELDS[entity_type]: line["entity_id"]}
    if entity_type == "instance":
        row.update({"flavor_id": a.get("flavor_id") or a.get("flavor"), "name": name})
    elif entity_type == "volume":
        row.update(
            {
                "volume_type_id": a.get("volume_type_id"),
                "space_allocation_gb": line["quantity"],
                "volume_name": name,
            }
        )
    elif entity_type == "floating_ip":
        row["ip"] = a.get("address") or name
    elif entity_type == "router":
        row["name"] = name
    else:  # snapshot, image
        row.update({"space_allocation_gb": line["quantity"], "name": name})
    still_open = (
        invoice["state"] == invoices.IN_PROGRESS
        and interval is not None
        and interval.end is None
        and end >= now
    )
    monthly = context.monthly(entity_type, interval, start, line["unit_price"])
    row.update(
        {
            "start_date": line["start"],
            "end_date": None if still_open else line["end"],
            "adjusted_end_date": line["end"],
            "hourly_price": line["unit_price"],
            "hourly_price_currency": currency if line["unit_price"] is not None else None,
            "monthly_price": _money_or_none(monthly),
            "monthly_price_currency": currency if monthly is not None else None,
            "price_charged": line["amount"],
            "price_charged_currency": currency,
            "description": line["description"],
            "hours": line["hours"],
            "quantity": line["quantity"],
            "missing_price": line["missing_price"],
            "adjusts": line["adjusts"],
        }
    )
    return row


def invoice_json(invoice: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """An invoice (`invoices.show_invoice`, or a list entry without lines) in Rintik's
    shape; with lines, they are nested under Rintik's component labels."""
    return _invoice_json(invoice, now)[0]


def _invoice_json(
    invoice: Mapping[str, Any], now: datetime
) -> tuple[dict[str, Any], bool, tuple[Any, Any] | None]:
    """`invoice_json`, whether it read only the project's intervals around the lines (no
    resource needed all its intervals: see `_LineContext`), and their window."""
    around_only = True
    window = None
    state = invoice["state"]
    closed = state in invoices.CLOSED_STATES
    currency = invoice["currency"]
    doc: dict[str, Any] = {
        "id": invoice["id"],
        "number": invoice["number"],
        "tenant_id": invoice["project_id"],
        "period": invoice["period"],
        "start_date": invoice["start"],
        "end_date": invoice["end"] if closed else None,
        "finish_date": invoice["paid_at"],
        "closed_at": invoice["closed_at"],
        "state": STATE_CODES[state],
        "state_name": state,
        "tax_percent": invoice["tax_percent"],
        "subtotal": invoice["subtotal"],
        "subtotal_currency": currency,
        "tax": invoice["tax"],
        "tax_currency": currency,
        "total": invoice["total"],
        "total_currency": currency,
    }
    if "lines" in invoice:
        lines = invoice["lines"]
        context = _LineContext(invoice["project_id"], lines)
        groups: dict[str, list[dict[str, Any]]] = {label: [] for label in LABELS.values()}
        for position, line in enumerate(lines, 1):
            row = component_row(position, line, invoice, context, now)
            groups[LABELS[line["entity_type"]]].append(row)
        doc.update(groups)
        around_only = not context.complete
        window = context.window
    return doc, around_only, window


# --- closed invoices, cached ---------------------------------------------------------------

_INVOICE_ROW = Prepared(lambda key: Invoice.select().where(Invoice.id == key), "key")
_LINE_ROWS = Prepared(
    lambda invoice: (
        InvoiceLine.select().where(InvoiceLine.invoice == invoice).order_by(InvoiceLine.position)
    ),
    "invoice",
)
_PRICE_ROWS = Prepared(lambda: Price.select().order_by(Price.id))
_VOLUME_TYPE_ROWS = Prepared(lambda: VolumeType.select().order_by(VolumeType.type_id))

_SETTING_ROWS = Prepared(lambda: BillingSetting.select().order_by(BillingSetting.key))
_CLOSED_OF_PROJECT = Prepared(
    lambda project_id: (
        Invoice.select()
        .where((Invoice.project_id == project_id) & Invoice.state.in_(invoices.CLOSED_STATES))
        .order_by(Invoice.id)
    ),
    "project_id",
)


@dataclass(frozen=True)
class _Answer:
    """A cached answer to `GET /api/invoice/<id>/`: the body, encoded, split where `now`
    goes (the end of a running invoice's lines of resources still running), valid while the
    digest of what it is made of, read again with `window`, is `key`, and for requests at
    instants in `[since, until)` (`invoices.show_invoice_until`: a closed invoice's, always).
    """

    key: bytes
    window: tuple[Any, Any] | None
    since: datetime
    until: datetime
    project_id: str
    parts: tuple[bytes, ...]

    def body(self, now: datetime) -> bytes:
        if len(self.parts) == 1:
            return self.parts[0]
        return json_text(format_time(now)).encode().join(self.parts)


#: The answers to `GET /api/invoice/<id>/`, by invoice id (`_Answer`).
INVOICE_ANSWERS: DigestCache[_Answer] = DigestCache(2048)


class AnswerCounts:
    """How many answers came from `INVOICE_ANSWERS` (`hits`) and how many were computed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hits = 0
        self.computed = 0

    def count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.computed += 1


ANSWER_COUNTS = AnswerCounts()


#: The invoice answers found up to date since the database last changed (SQLite).
UNCHANGED: Unchanged[_Answer] = Unchanged(INVOICE_ANSWERS.size)
_ALWAYS = datetime.min.replace(tzinfo=UTC)
#: Stands for `now` in a running invoice's answer while it is encoded: random, so that no
#: stored text (a resource's name) can be taken for it.
_NOW = f"now-{secrets.token_hex(16)}"
_NOW_JSON = json_text(_NOW).encode()


def _answer_digest(
    key: int, window: tuple[Any, Any] | None, billing: tuple[Any, ...]
) -> tuple[bytes, str] | None:
    """The digest of everything the answer about invoice `key` is made of, as stored, and
    its project; None when there is no such invoice. Closed: its row and lines, the
    project's intervals around the lines (`window`), the prices and the volume types.
    Running: its row, the rules (`billing`: the settings file's, and the billing settings
    stored over the API), the project's
    closed invoices (their lines never change), its intervals from the earliest of its
    period, the closed periods before it and `window`, the prices and the volume types."""
    if not 0 < key < 2**31:  # the id column's range
        return None
    found = _INVOICE_ROW.raw(key=key)
    if not found:
        return None
    row = dict(zip(_INVOICE_ROW.columns(), found[0], strict=True))
    project_id = str(row["project_id"])
    inputs: list[Any] = [found[0]]
    if row["state"] in invoices.CLOSED_STATES:
        inputs.append(_LINE_ROWS.raw(invoice=key))
        if window is not None:
            inputs.append(_AROUND.raw(project_id=project_id, first=window[0], last=window[1]))
    else:
        period = Period.parse(row["period"])
        closed = _CLOSED_OF_PROJECT.raw(project_id=project_id)
        column = _CLOSED_OF_PROJECT.columns().index("period")
        earlier = [Period.parse(c[column]) for c in closed if c[column] < str(period)]
        first = Interval.start.db_value(min([period, *earlier]).start)
        end = Interval.start.db_value(period.end)
        if window is not None:
            first, end = min(first, window[0]), max(end, window[1])
        # Every interval of the project overlapping [first, end]: what the invoice is rated
        # from (its period), what its adjustments re-rate (the closed periods before it)
        # and what its lines are shown with (`window`), in one read.
        intervals = _AROUND.raw(project_id=project_id, first=first, last=end)
        inputs += [billing, _SETTING_ROWS.raw(), closed, intervals]
    inputs += [_PRICE_ROWS.raw(), _VOLUME_TYPE_ROWS.raw()]
    return digest(*inputs), project_id


def _template(doc: dict[str, Any], now: datetime) -> tuple[bytes, ...] | None:
    """A running invoice's answer (`doc`, encoded) split where `now` goes: at the end of
    each line that ends at `now`, so that joined with `now` the parts are `doc` encoded.
    None (and `doc` as it was) when some other text of the answer is the mark."""
    now_text = format_time(now)
    marked: list[tuple[dict[str, Any], str]] = []
    for label in LABELS.values():
        for row in doc[label]:
            if row["adjusts"] is None and row["adjusted_end_date"] == now_text:
                for name in ("adjusted_end_date", "end_date"):
                    if row[name] == now_text:
                        row[name] = _NOW
                        marked.append((row, name))
    parts = tuple(json_text(doc).encode().split(_NOW_JSON))
    if len(parts) == len(marked) + 1:
        return parts
    for row, name in marked:
        row[name] = now_text
    return None


# --- overviews -----------------------------------------------------------------------------


def resource_counts(
    period: Period, now: datetime, project_id: str | None, active: bool
) -> dict[str, int]:
    """Resources per type used this month up to now (or, `active`, in use now)."""
    query = Interval.select(Interval.entity_type, Interval.entity_id).where(
        Interval.start < min(now, period.end)
    )
    if active:
        query = query.where(Interval.end.is_null())
    else:
        query = query.where(Interval.end.is_null() | (Interval.end > period.start))
    if project_id is not None:
        query = query.where(Interval.project_id == project_id)
    seen: dict[str, set[str]] = defaultdict(set)
    for entity_type, entity_id in query.distinct().tuples():
        seen[entity_type].add(entity_id)
    return {t: len(seen.get(t, set())) for t in LABELS}


def resource_prices(
    now: datetime, rules: rating.RatingRules, project_id: str | None, active: bool
) -> dict[str, Decimal]:
    """The running month's charges so far per resource type: the lines of the live invoices
    `/api/invoice/` shows, adjustments to closed invoices left out; `active`: only the lines
    that run up to now, of resources in use."""
    sums = {t: rating.round_money(Decimal(0), rules.decimal_places) for t in LABELS}
    in_use: set[str] = set()
    if active:
        query = Interval.select(Interval.entity_id).where(Interval.end.is_null())
        if project_id is not None:
            query = query.where(Interval.project_id == project_id)
        in_use = {entity_id for (entity_id,) in query.distinct().tuples()}
    for line in invoices.running_lines(now, rules, project_id):
        if active and not (line.entity_id in in_use and line.end >= now):
            continue
        sums[line.entity_type] += line.amount
    return sums


# --- the OpenAPI description ---------------------------------------------------------------

_TIME = {"type": "string", "format": "date-time"}
_NTIME = {**_TIME, "nullable": True}
_STR = {"type": "string"}
_NSTR = {"type": "string", "nullable": True}
_MONEY_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": MONEY_PATTERN},
        {"type": "number", "minimum": 0, "maximum": 999999999999999},
    ],
    "description": 'A decimal string (`"12.50"`) or a JSON number; never negative.',
}
_CURRENCY_SCHEMA = {"type": "string", "pattern": "^[A-Za-z]{3,8}$"}
_TEXT = {"type": "string", "maxLength": 255, "pattern": "^[^\\u0000]*$"}
_KEY_SCHEMA = {**ID_SCHEMA, "maxLength": MAX_ID}


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def _price_body(required: list[str], since: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "hourly_price": _MONEY_SCHEMA,
        "hourly_price_currency": {
            **_CURRENCY_SCHEMA,
            "description": "Default: the billing currency (create), the row's (update).",
        },
        "monthly_price": {**_MONEY_SCHEMA, "nullable": True},
        "monthly_price_currency": {**_CURRENCY_SCHEMA, "nullable": True},
        "flavor_id": {**_KEY_SCHEMA, "description": "Flavor prices only (required there)."},
        "volume_type_id": {**_KEY_SCHEMA, "description": "Volume prices only (required there)."},
        "project_id": {**ID_SCHEMA, "nullable": True, "description": "Only for this project."},
    }
    if since:
        properties["since"] = {
            **DATE_SCHEMA,
            "nullable": True,
            "description": "In force from then; default now; null: from the beginning.",
        }
    return _object(properties, required)


def _inventory_schema() -> dict[str, Any]:
    kinds = {
        "id": dict(ID_SCHEMA),
        "type": {**ID_SCHEMA, "nullable": True},
        "text": {**_TEXT, "nullable": True},
        "gb": {"type": "number", "minimum": 0, "maximum": importer.MAX_GB},
        "date": {"type": "string", "pattern": importer.DATE_PATTERN},
    }
    properties = {}
    for name, section in importer.SECTIONS.items():
        fields = section.field_kinds()
        item = _object({f: kinds[k] for f, k in fields.items()}, list(fields))
        properties[name] = {"type": "array", "items": item}
    return {
        **_object(properties, []),
        "description": "Existing resources; a missing list is empty.",
    }


_ROW_PROPERTIES: dict[str, Any] = {
    "id": {"type": "integer", "description": "The line's position in the invoice."},
    **{field: _STR for field in ID_FIELDS.values()},
    "flavor_id": _NSTR,
    "volume_type_id": _NSTR,
    "space_allocation_gb": {"type": "integer"},
    "volume_name": _NSTR,
    "name": _NSTR,
    "ip": _NSTR,
    "start_date": _TIME,
    "end_date": _NTIME,
    "adjusted_end_date": _TIME,
    "hourly_price": _NSTR,
    "hourly_price_currency": _NSTR,
    "monthly_price": _NSTR,
    "monthly_price_currency": _NSTR,
    "price_charged": _STR,
    "price_charged_currency": _STR,
    "description": _STR,
    "hours": _STR,
    "quantity": {"type": "integer"},
    "missing_price": {"type": "boolean"},
    "adjusts": {"type": "integer", "nullable": True},
}
_SIMPLE_INVOICE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "number": {"type": "integer", "nullable": True},
        "tenant_id": _STR,
        "period": _STR,
        "start_date": _TIME,
        "end_date": _NTIME,
        "finish_date": _NTIME,
        "closed_at": _NTIME,
        "state": {"type": "integer", "enum": [1, 2, 100]},
        "state_name": {"type": "string", "enum": list(invoices.STATES)},
        "tax_percent": _NSTR,
        "subtotal": _NSTR,
        "subtotal_currency": _NSTR,
        "tax": _NSTR,
        "tax_currency": _NSTR,
        "total": _NSTR,
        "total_currency": _NSTR,
    },
    "required": ["id", "tenant_id", "start_date", "state", "state_name", "subtotal", "total"],
}
_ROW = {"$ref": "#/components/schemas/RintikInvoiceRow"}
SCHEMAS: dict[str, Any] = {
    "RintikPrice": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "hourly_price": _STR,
            "hourly_price_currency": _STR,
            "monthly_price": _NSTR,
            "monthly_price_currency": _NSTR,
            "flavor_id": _STR,
            "volume_type_id": _STR,
            "project_id": _NSTR,
            "since": _NTIME,
            "created_at": _TIME,
            "updated_at": _TIME,
        },
        "required": ["id", "hourly_price", "hourly_price_currency", "monthly_price", "since"],
    },
    "RintikPrices": {"type": "array", "items": {"$ref": "#/components/schemas/RintikPrice"}},
    "RintikInvoiceRow": {
        "type": "object",
        "properties": _ROW_PROPERTIES,
        "required": ["id", "start_date", "end_date", "adjusted_end_date", "price_charged"],
    },
    "RintikSimpleInvoice": _SIMPLE_INVOICE,
    "RintikSimpleInvoices": {
        "type": "array",
        "items": {"$ref": "#/components/schemas/RintikSimpleInvoice"},
    },
    "RintikInvoice": {
        **_SIMPLE_INVOICE,
        "properties": {
            **_SIMPLE_INVOICE["properties"],
            **{label: {"type": "array", "items": _ROW} for label in LABELS.values()},
        },
        "required": [*_SIMPLE_INVOICE["required"], *LABELS.values()],
    },
    "RintikInvoices": {"type": "array", "items": {"$ref": "#/components/schemas/RintikInvoice"}},
    "RintikImport": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["success"]},
            "resources": {"type": "integer", "minimum": 0},
            "applied": {"type": "integer", "minimum": 0},
            "duplicate": {"type": "integer", "minimum": 0},
        },
        "required": ["status", "resources", "applied", "duplicate"],
    },
    "RintikSettings": {
        "type": "object",
        "properties": {key: _STR for key in SETTING_KEYS},
        "required": list(SETTING_KEYS),
    },
    "RintikSetting": {
        "type": "object",
        "properties": {key: _STR for key in SETTING_KEYS},
        "minProperties": 1,
        "maxProperties": 1,
        "description": "`{key: value}`, the one setting asked for or changed.",
    },
    "RintikOverview": {
        "type": "object",
        "properties": {
            "label": {"type": "array", "items": {"type": "string"}},
            "data": {
                "type": "array",
                "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            },
            "currency": _STR,
        },
        "required": ["label", "data"],
    },
}

TENANT = Field("id", description="Project (tenant) id.")
TENANT_QUERY = {"tenant_id": TENANT}
HISTORY_QUERY = {
    "history": Field("text", description="`true`: every row, superseded ones included.")
}
IMPORT_QUERY = {
    "billing_start": Field(
        "date", description="Creation times before it are moved up to it (default: kept)."
    )
}
PROJECT_QUERY = {"tenant_id": Field("id", required=True, description="Project (tenant) id.")}

UPDATE_NOTE = (
    "Prices are never edited: this adds a row for the same kind, key and project, in force "
    "from now; the old row stays in force before now, for past invoices. The answer is the "
    "new row (a new id)."
)


def _op(method: str, rule: str, handler: str, summary: str, **more: Any) -> Operation:
    return Operation(method, rule, handler, summary, prefixes=PREFIXES, tag=TAG, **more)


OPERATIONS = (
    _op("GET", "/price/<kind>/", "list_prices", "Prices of a kind in force now, and those "
        "scheduled later.", response="RintikPrices", query=HISTORY_QUERY),
    _op("POST", "/price/<kind>/", "create_price", "Add a price row, in force from `since` "
        "(default now).", status=201, response="RintikPrice"),
    _op("GET", "/price/<kind>/<price_id>/", "get_price", "One price row (superseded or "
        "not).", response="RintikPrice"),
    _op("PUT", "/price/<kind>/<price_id>/", "update_price", "Supersede a price from now.",
        response="RintikPrice", description=UPDATE_NOTE + " Fields left out: hourly_price "
        "is required, monthly_price becomes null, the currency is the row's."),
    _op("PATCH", "/price/<kind>/<price_id>/", "patch_price", "Supersede a price from now, "
        "changing some fields.", response="RintikPrice", description=UPDATE_NOTE
        + " Fields left out keep the row's values."),
    _op("DELETE", "/price/<kind>/<price_id>/", "delete_price", "Refused: prices are "
        "superseded, never deleted.", status=405, response="Error", description="Always "
        "405: a price row stays for the invoices it rated. To stop charging, PUT a price "
        "of 0 (or a project price of 0 for one project)."),
    _op("GET", "/invoice/", "list_invoices", "Invoices with their lines, newest first.",
        response="RintikInvoices", query=PROJECT_QUERY),
    _op("GET", "/invoice/simple_list/", "simple_invoices", "Invoices without their lines, "
        "newest first.", response="RintikSimpleInvoices", query=PROJECT_QUERY),
    _op("GET", "/invoice/<invoice_id>/", "get_invoice", "One invoice with its lines; 404 "
        "when `tenant_id` is given and is not its project.", response="RintikInvoice",
        query=TENANT_QUERY),
    _op("POST", "/invoice/<invoice_id>/finish/", "finish_invoice", "Mark a closed "
        "invoice paid (state 2 -> 100).", response="RintikInvoice", query=TENANT_QUERY),
    _op("GET", "/invoice/<invoice_id>/finish/", "finish_invoice_get", "As POST: Rintik's "
        "dashboard calls it with GET.", response="RintikInvoice", query=TENANT_QUERY),
    _op("POST", "/invoice/<invoice_id>/rollback_to_unpaid/", "rollback_invoice", "Roll a "
        "paid invoice back to unpaid (state 100 -> 2).", response="RintikInvoice",
        query=TENANT_QUERY),
    _op("GET", "/invoice/<invoice_id>/rollback_to_unpaid/", "rollback_invoice_get", "As "
        "POST: Rintik's dashboard calls it with GET.", response="RintikInvoice",
        query=TENANT_QUERY),
    _op("POST", "/invoice/enable_billing/", "enable_billing", "Import existing resources "
        "into the ledger (idempotent).", response="RintikImport", query=IMPORT_QUERY,
        description="Each resource becomes the exists notification its service would send, "
        "recorded as the collector records events (source `import`): a resource the ledger "
        "does not know is billed from its `start_date`. Importing the same inventory again "
        "changes nothing; an item the ledger refuses fails the whole import."),
    _op("GET", "/settings/", "list_settings", "Billing settings in force.",
        response="RintikSettings"),
    _op("GET", "/settings/<key>/", "get_setting", "One billing setting: `{key: value}`.",
        response="RintikSetting"),
    _op("PUT", "/settings/<key>/", "update_setting", "Change a billing setting: body "
        "`{\"value\": ...}`.", response="RintikSetting", description="Stored in the "
        "database, it overrides the settings file for the CLI, the scheduler and the API. "
        "`invoice_tax` applies to invoices closed from now on; `currency` is refused (400) "
        "once any invoice has been closed."),
    _op("PATCH", "/settings/<key>/", "patch_setting", "As PUT.", response="RintikSetting"),
    *(
        _op("GET", f"/admin_overview/{name}/", f"admin_{name}", f"All projects: {text}",
            response="RintikOverview")
        for name, text in (
            ("total_resource", "resources used this month, per type."),
            ("active_resource", "resources in use now, per type."),
            ("price_total_resource", "this month's charges so far, per resource type."),
            ("price_active_resource", "this month's charges of the resources in use now."),
        )
    ),
    *(
        _op("GET", f"/project_overview/{name}/", f"project_{name}", f"One project: {text}",
            response="RintikOverview", query=PROJECT_QUERY)
        for name, text in (
            ("total_resource", "resources used this month, per type."),
            ("active_resource", "resources in use now, per type."),
            ("price_total_resource", "this month's charges so far, per resource type."),
            ("price_active_resource", "this month's charges of the resources in use now."),
        )
    ),
)  # fmt: skip

BODIES: Mapping[str, dict[str, Any]] = {
    "create_price": _price_body(["hourly_price"], since=True),
    "update_price": _price_body(["hourly_price"], since=False),
    "patch_price": _price_body([], since=False),
    "enable_billing": _inventory_schema(),
    "update_setting": _object({"value": {"anyOf": [_STR, {"type": "number"}]}}, ["value"]),
    "patch_setting": _object({"value": {"anyOf": [_STR, {"type": "number"}]}}, ["value"]),
}
PARAMETERS: Mapping[str, dict[str, Any]] = {
    "kind": {"type": "string", "enum": list(KINDS)},
    "price_id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    "invoice_id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    "key": {"type": "string", "enum": list(SETTING_KEYS)},
    "history": {"type": "string", "enum": list(_HISTORY)},
}


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """Complete the OpenAPI document built from OPERATIONS with what `Field` tables cannot
    say: money and inventory bodies, enumerated path parameters, our response schemas."""
    document["info"]["description"] += (
        " Rintik's API (prices, invoices, settings, overviews) is under /api/."
    )
    components = document["components"]
    components["schemas"] = {**components["schemas"], **SCHEMAS}
    handlers = {op.handler for op in OPERATIONS}
    for item in document["paths"].values():
        for operation in item.values():
            handler = operation["operationId"]
            if handler not in handlers:
                continue
            if handler in BODIES:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": BODIES[handler]}},
                }
            for parameter in operation.get("parameters", []):
                if parameter["name"] in PARAMETERS:
                    parameter["schema"] = dict(PARAMETERS[parameter["name"]])
            if operation["responses"].get("405"):
                operation["responses"]["405"]["description"] = "Prices are never deleted."
    return document


# --- routes --------------------------------------------------------------------------------


class RintikRoutes:
    """Handlers of OPERATIONS."""

    def __init__(
        self, settings: Settings, clock: Callable[[], datetime], max_body_bytes: int
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        #: What the rules take from the settings file (`invoices.rules_from`).
        self.billing = tuple(settings[f"billing.{name}"] for name in invoices.RULE_SETTINGS)

    def _rules(self) -> rating.RatingRules:
        return invoices.rules_from(self.settings)

    # --- prices --------------------------------------------------------------------------

    def _kind(self, kind: str) -> str:
        if kind not in KINDS:
            raise not_found(f"unknown price kind {kind[:40]!r}: choose one of {', '.join(KINDS)}")
        return kind

    def _row(self, kind: str, price_id: str) -> dict[str, Any]:
        key = _int_id(price_id, f"{kind} price")
        for row in invoices.list_prices(kind):
            if row["id"] == key:
                return row
        raise not_found(f"{kind} price {key} does not exist")

    def list_prices(self, kind: str) -> str:
        kind = self._kind(kind)
        flag = read_query(HISTORY_QUERY).get("history", "false")
        if flag not in _HISTORY:
            raise bad_request("history must be true or false")
        rows = invoices.list_prices(kind)
        if not _HISTORY[flag]:
            rows = current_prices(rows, self.clock())
        else:
            rows.sort(key=lambda r: int(r["id"]))
        return reply([price_json(r) for r in rows])

    def get_price(self, kind: str, price_id: str) -> str:
        return reply(price_json(self._row(self._kind(kind), price_id)))

    def _price_fields(self, kind: str, body: dict[str, Any], since: bool) -> dict[str, Any]:
        allowed = {
            "hourly_price",
            "hourly_price_currency",
            "monthly_price",
            "monthly_price_currency",
            "project_id",
            *(["since"] if since else []),
        }
        for name in body:
            if name in KEY_FIELDS.values():
                if KEY_FIELDS.get(kind) != name:
                    raise bad_request(f"{name}: {kind} prices have no such key")
            elif name not in allowed:
                if name == "since":
                    raise bad_request(
                        "since: an update is in force from now; to schedule a price, POST "
                        "it with since"
                    )
                raise bad_request(f"unknown field {name[:60]}")
        fields: dict[str, Any] = {}
        if "hourly_price" in body:
            fields["hourly"] = read_money(body["hourly_price"], "hourly_price")
        if body.get("monthly_price") is not None:
            fields["monthly"] = read_money(body["monthly_price"], "monthly_price")
        elif "monthly_price" in body:
            fields["monthly"] = None
        if "hourly_price_currency" in body:
            fields["currency"] = read_currency(
                body["hourly_price_currency"], "hourly_price_currency"
            )
        if body.get("monthly_price_currency") is not None:
            monthly_currency = read_currency(
                body["monthly_price_currency"], "monthly_price_currency"
            )
            if monthly_currency != fields.get("currency", monthly_currency):
                raise bad_request("monthly_price_currency must be hourly_price_currency")
            fields["monthly_currency"] = monthly_currency
        elif "monthly_price_currency" in body:
            fields["monthly_currency"] = None
        key_field = KEY_FIELDS.get(kind)
        if key_field is not None and key_field in body:
            fields["key"] = read_id(body[key_field], key_field)
        if body.get("project_id") is not None:
            fields["project_id"] = read_id(body["project_id"], "project_id")
        elif "project_id" in body:
            fields["project_id"] = None
        if body.get("since") is not None:
            fields["since"] = read_date(body["since"], "since")
        elif "since" in body:
            fields["since"] = None
        return fields

    def _currency(self, fields: dict[str, Any], default: str) -> str:
        currency = fields.get("currency") or fields.get("monthly_currency") or default
        return str(currency)

    def create_price(self, kind: str) -> str:
        kind = self._kind(kind)
        fields = self._price_fields(kind, read_object(self.max_body_bytes), since=True)
        if "hourly" not in fields:
            raise bad_request("hourly_price is required")
        key_field = KEY_FIELDS.get(kind)
        if key_field is not None and "key" not in fields:
            raise bad_request(f"{key_field} is required")
        now = self.clock()
        currency = self._currency(fields, self._rules().currency)
        row = invoices.set_price(
            kind,
            fields.get("key", rating.DEFAULT_KEY),
            fields["hourly"],
            currency=currency,
            now=now,
            monthly=fields.get("monthly"),
            project_id=fields.get("project_id"),
            since=fields.get("since", now),
        )
        return reply(price_json(row), 201)

    def _supersede(self, kind: str, price_id: str, partial: bool) -> str:
        kind = self._kind(kind)
        old = self._row(kind, price_id)
        fields = self._price_fields(kind, read_object(self.max_body_bytes), since=False)
        for name, given in (("key", KEY_FIELDS.get(kind)), ("project_id", "project_id")):
            if name in fields and fields[name] != old[name]:
                raise bad_request(
                    f"{given}: an update keeps the row's {given} ({old[name]}); POST a new "
                    "price for another one"
                )
        if "hourly" not in fields and not partial:
            raise bad_request("hourly_price is required")
        monthly = fields["monthly"] if "monthly" in fields else old["monthly"]
        if not partial and "monthly" not in fields:
            monthly = None
        now = self.clock()
        row = invoices.set_price(
            kind,
            old["key"],
            fields.get("hourly", old["hourly"]),
            currency=self._currency(fields, old["currency"]),
            now=now,
            monthly=monthly,
            project_id=old["project_id"],
            since=now,
        )
        return reply(price_json(row))

    def update_price(self, kind: str, price_id: str) -> str:
        return self._supersede(kind, price_id, partial=False)

    def patch_price(self, kind: str, price_id: str) -> str:
        return self._supersede(kind, price_id, partial=True)

    def delete_price(self, kind: str, price_id: str) -> str:
        self._row(self._kind(kind), price_id)
        raise error(
            405,
            "prices are never deleted: a price row stays for the invoices it rated. "
            "Supersede it from now with PUT (a price of 0 stops charging)",
        )

    # --- invoices ------------------------------------------------------------------------

    def _tenant(self) -> str | None:
        tenant: str | None = read_query(TENANT_QUERY).get("tenant_id")
        return tenant

    def _invoice(self, invoice_id: str) -> dict[str, Any]:
        tenant = self._tenant()
        key = _int_id(invoice_id, "invoice")
        try:
            doc = invoices.show_invoice(key, self.clock(), self._rules())
        except NotFound as exc:
            raise not_found(str(exc)) from None
        if tenant is not None and doc["project_id"] != tenant:
            raise not_found(f"invoice {key} is not an invoice of project {tenant}")
        return doc

    def list_invoices(self) -> str:
        tenant = self._project()
        now, rules = self.clock(), self._rules()
        docs = [
            invoice_json(invoices.show_invoice(entry["id"], now, rules), now)
            for entry in invoices.list_invoices(now, rules, tenant)
        ]
        return reply(docs)

    def simple_invoices(self) -> str:
        tenant = self._project()
        now = self.clock()
        entries = invoices.list_invoices(now, self._rules(), tenant)
        return reply([invoice_json(entry, now) for entry in entries])

    def get_invoice(self, invoice_id: str) -> bytes:
        """Answered from `INVOICE_ANSWERS` while nothing it is made of has changed and, for
        a running invoice, until the first instant its amounts or lines may change; else
        computed, and kept when it can be."""
        tenant = self._tenant()
        key = _int_id(invoice_id, "invoice")
        now = self.clock()
        slot = str(key).encode()
        generation = UNCHANGED.start()
        answer = INVOICE_ANSWERS.get(slot)
        if answer is not None and not answer.since <= now < answer.until:
            answer = None
        if answer is None or not UNCHANGED.up_to_date(slot, answer, generation):
            with read_snapshot():  # the digest and the answer from the same state
                if answer is not None:
                    found = _answer_digest(key, answer.window, self.billing)
                    if found is None or found[0] != answer.key:
                        answer = None
                ANSWER_COUNTS.count(answer is not None)
                if answer is None:
                    answer = self._answer(key, slot, now, generation)
                else:
                    UNCHANGED.add(slot, answer, generation)
        else:
            ANSWER_COUNTS.count(True)
        if tenant is not None and answer.project_id != tenant:
            raise not_found(f"invoice {key} is not an invoice of project {tenant}")
        bottle.response.content_type = JSON
        return answer.body(now)

    def _answer(self, key: int, slot: bytes, now: datetime, generation: int | None) -> _Answer:
        """The answer about invoice `key` computed now, kept in `INVOICE_ANSWERS` when it
        can be: it read only the intervals around its lines, and it stays the same for a
        while (a running invoice under exact rounding does not)."""
        try:
            shown, until = invoices.show_invoice_until(key, now, self._rules())
        except NotFound as exc:
            raise not_found(str(exc)) from None
        doc, around_only, window = _invoice_json(shown, now)
        closed = shown["state"] in invoices.CLOSED_STATES
        keep = around_only and now < until
        template = _template(doc, now) if keep and not closed else None
        keep = keep and (closed or template is not None)
        parts = template if template is not None else (json_text(doc).encode(),)
        answer = _Answer(b"", window, _ALWAYS if closed else now, until, shown["project_id"], parts)
        found = _answer_digest(key, window, self.billing) if keep else None
        if found is not None:
            answer = replace(answer, key=found[0])
            INVOICE_ANSWERS.put(slot, answer)
            UNCHANGED.add(slot, answer, generation)
        return answer

    def _set_paid(self, invoice_id: str, paid: bool) -> str:
        doc = self._invoice(invoice_id)
        change = invoices.pay_invoice if paid else invoices.unpay_invoice
        change(doc["id"], self.clock())
        return reply(invoice_json(self._invoice(invoice_id), self.clock()))

    def finish_invoice(self, invoice_id: str) -> str:
        return self._set_paid(invoice_id, paid=True)

    def rollback_invoice(self, invoice_id: str) -> str:
        return self._set_paid(invoice_id, paid=False)

    finish_invoice_get = finish_invoice
    rollback_invoice_get = rollback_invoice

    def enable_billing(self) -> str:
        start = read_query(IMPORT_QUERY).get("billing_start")
        doc = read_object(self.max_body_bytes)
        counts = importer.import_inventory(
            doc,
            self.clock(),
            billing_start=start,
            metadata_whitelist=self.settings["ledger.metadata_whitelist"],
        )
        return reply({"status": "success", **counts})

    # --- settings ------------------------------------------------------------------------

    def _settings(self) -> dict[str, str]:
        values = invoices.billing_settings(self.settings)
        return {key: str(values[name]) for key, name in SETTING_KEYS.items()}

    def _key(self, key: str) -> str:
        if key not in SETTING_KEYS:
            raise not_found(
                f"unknown setting {key[:40]!r}: choose one of {', '.join(SETTING_KEYS)}"
            )
        return key

    def list_settings(self) -> str:
        return reply(self._settings())

    def get_setting(self, key: str) -> str:
        key = self._key(key)
        return reply({key: self._settings()[key]})

    def update_setting(self, key: str) -> str:
        key = self._key(key)
        body = read_object(self.max_body_bytes)
        for name in body:
            if name != "value":
                raise bad_request(f"unknown field {name[:60]}")
        if "value" not in body:
            raise bad_request("value is required")
        value = body["value"]
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise bad_request("value must be a string or a number")
        if SETTING_KEYS[key] != "tax_percent" and not isinstance(value, str):
            raise bad_request(f"value of {key} must be a string")
        if isinstance(value, str) and key == "invoice_tax" and not _MONEY.fullmatch(value):
            raise bad_request("value of invoice_tax must be a decimal number of percent")
        try:
            invoices.set_billing_setting(SETTING_KEYS[key], value, self.settings, self.clock())
        except InvalidInput as exc:
            raise bad_request(str(exc).replace("tax_percent", "invoice_tax")) from None
        return reply({key: self._settings()[key]})

    patch_setting = update_setting

    # --- overviews -----------------------------------------------------------------------

    def _overview(self, name: str, project_id: str | None) -> str:
        now = self.clock()
        labels = list(LABELS.values())
        if name in ("total_resource", "active_resource"):
            counts = resource_counts(
                Period.containing(now), now, project_id, active=name == "active_resource"
            )
            return reply({"label": labels, "data": list(counts.values())})
        rules = self._rules()
        sums = resource_prices(now, rules, project_id, active=name == "price_active_resource")
        return reply(
            {
                "label": labels,
                "data": [format(v, "f") for v in sums.values()],
                "currency": rules.currency,
            }
        )

    def _project(self) -> str:
        project_id: str = read_query(PROJECT_QUERY)["tenant_id"]
        return project_id

    def admin_total_resource(self) -> str:
        return self._overview("total_resource", None)

    def admin_active_resource(self) -> str:
        return self._overview("active_resource", None)

    def admin_price_total_resource(self) -> str:
        return self._overview("price_total_resource", None)

    def admin_price_active_resource(self) -> str:
        return self._overview("price_active_resource", None)

    def project_total_resource(self) -> str:
        return self._overview("total_resource", self._project())

    def project_active_resource(self) -> str:
        return self._overview("active_resource", self._project())

    def project_price_total_resource(self) -> str:
        return self._overview("price_total_resource", self._project())

    def project_price_active_resource(self) -> str:
        return self._overview("price_active_resource", self._project())


__all__ = ["OPERATIONS", "RintikRoutes", "describe"]
