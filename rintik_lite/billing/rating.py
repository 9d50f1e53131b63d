"""Rating: ledger intervals x prices -> invoice lines, and invoice totals.

These are the product's billing rules; every one is implemented here and nowhere else.

1. A billing period is a calendar month in UTC (:class:`~rintik_lite.billing.periods.Period`).
   Each ledger interval, clipped to the period and never beyond ``now``, is one invoice
   line; an interval that is still open is counted up to ``now``.
2. A price change inside a clipped interval splits it at that instant into separate
   lines, each rated at the price in effect at its own start and each with its own
   hours rounding (rule 3) and monthly cap (rule 5). A "change" is a change of the
   hourly or monthly amount in effect (including a price appearing or disappearing);
   a new row repeating the same amounts does not split.
3. Hours: ``rounding="hour_ceil"`` bills ``ceil(seconds / 3600)`` whole hours per line
   (1 second bills 1 hour, exactly 3600 s bills 1 hour); ``rounding="exact"`` bills
   ``seconds / 3600`` computed to :data:`PRECISION` significant digits and not rounded
   further. Seconds are exact to the microsecond.
4. Quantity: volumes, snapshots and images are billed per whole GB (a fractional size is
   rounded UP; a missing size counts as 0 GB); instances, floating IPs and routers
   have quantity 1.
5. ``amount = hours x hourly x quantity``; when the price has a monthly amount it caps
   the per-unit charge of the line: ``amount = min(hours x hourly, monthly) x quantity``.
   The cap is per line, so an interval split by a resize or a price change is capped
   piecewise.
6. Money: each line's amount is rounded to the currency's minor unit
   (``RatingRules.decimal_places``) with ROUND_HALF_UP (halves away from zero); the
   unrounded value is kept in ``Line.exact_amount``. Because rounding happens per line,
   a sum of rounded lines may differ from the rounded sum of exact amounts by at most
   half a minor unit per line. ``subtotal`` is the exact sum of the rounded lines;
   ``tax = subtotal x tax_percent / 100`` rounded the same way; ``total = subtotal + tax``.
7. A resource with no price in effect is still a line: amount 0, ``unit_price`` 0 and
   ``missing_price=True``, so an operator can see what was not charged.
8. Price lookup (:func:`find_price`): prices are never edited in place; each row has a
   ``since`` (``None`` = from the beginning of time) and the row in effect at an instant
   is the one with the greatest ``since <= instant``. Rows for the project
   (``project_id`` set) are searched first and any such row in effect wins over every
   global row; within each scope the id key (flavor id / volume type id) is tried
   before the name key. Two rows with the same kind, key, scope and ``since``: the later
   one in the sequence wins. Only prices in ``RatingRules.currency`` are used by
   :func:`rate_usage`; rows in other currencies are ignored.

All arithmetic runs in an explicit decimal context (:data:`PRECISION` digits), so the
result never depends on the caller's thread-local decimal context. Floats are refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext
from fractions import Fraction
from itertools import pairwise
from types import MappingProxyType
from typing import NamedTuple

from rintik_lite.billing.periods import Period, clip, require_aware

#: Significant digits of every intermediate Decimal computation (exact hours, products).
PRECISION = 50

_CONTEXT = Context(prec=PRECISION, rounding=ROUND_HALF_EVEN)
_SECONDS_PER_HOUR = Decimal(3600)
_BEGINNING_OF_TIME = datetime.min.replace(tzinfo=UTC)

#: Hours rounding modes accepted by :class:`RatingRules`.
ROUNDING_MODES: tuple[str, ...] = ("hour_ceil", "exact")

#: Kinds of price row.
PRICE_KINDS: tuple[str, ...] = ("flavor", "volume", "snapshot", "image", "floating_ip", "router")

#: Which kind of price rates each ledger entity type.
ENTITY_PRICE_KIND: Mapping[str, str] = MappingProxyType(
    {
        "instance": "flavor",
        "volume": "volume",
        "snapshot": "snapshot",
        "image": "image",
        "floating_ip": "floating_ip",
        "router": "router",
    }
)

#: Entity types billed per GB of size; every other type has quantity 1.
SIZED_ENTITY_TYPES: frozenset[str] = frozenset({"volume", "snapshot", "image"})

#: The key of price kinds that have a single price per kind.
DEFAULT_KEY = "default"


def _require_decimal(value: object, name: str) -> None:
    """Raise ``TypeError`` unless ``value`` is a finite Decimal (never a float)."""
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a decimal.Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")


@dataclass(frozen=True)
class RatingRules:
    """How usage is turned into money: hours rounding, minor unit, tax, currency."""

    rounding: str = "hour_ceil"
    decimal_places: int = 2
    tax_percent: Decimal = Decimal("0")
    currency: str = "USD"

    def __post_init__(self) -> None:
        """Validate every field; ``ValueError`` / ``TypeError`` name the one at fault."""
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding must be one of {ROUNDING_MODES}, got {self.rounding!r}")
        if not 0 <= self.decimal_places <= 10:
            raise ValueError(f"decimal_places must be 0..10, got {self.decimal_places}")
        _require_decimal(self.tax_percent, "tax_percent")
        if self.tax_percent < 0:
            raise ValueError(f"tax_percent must not be negative, got {self.tax_percent}")
        if not self.currency:
            raise ValueError("currency must not be empty")


@dataclass(frozen=True)
class Price:
    """One immutable price row, in effect from ``since`` until a later row replaces it.

    ``hourly`` is per hour (per GB-hour for volumes, snapshots and images); ``monthly``,
    when set, caps the per-unit charge of one line. ``project_id=None`` is a global
    price; a project's own row overrides global rows for that project.
    """

    kind: str
    key: str
    hourly: Decimal
    monthly: Decimal | None
    currency: str
    since: datetime | None
    project_id: str | None = None

    def __post_init__(self) -> None:
        """Refuse unknown kinds, floats, non-finite amounts and naive ``since``."""
        if self.kind not in PRICE_KINDS:
            raise ValueError(f"price kind must be one of {PRICE_KINDS}, got {self.kind!r}")
        _require_decimal(self.hourly, "hourly")
        if self.monthly is not None:
            _require_decimal(self.monthly, "monthly")
        if self.since is not None:
            require_aware(self.since, "since")


@dataclass(frozen=True, slots=True)
class Usage:
    """One ledger interval ``[start, end)`` of one resource, as the ledger stores it.

    ``end=None`` means the interval is still open. ``size`` is in GB (volumes,
    snapshots, images). Datetimes must be timezone-aware.
    """

    entity_id: str
    entity_type: str
    project_id: str
    start: datetime
    end: datetime | None
    name: str | None = None
    flavor_id: str | None = None
    flavor: str | None = None
    volume_type_id: str | None = None
    volume_type: str | None = None
    size: int | Decimal | Fraction | None = None

    def __post_init__(self) -> None:
        """Refuse naive datetimes: the ledger's instants must be unambiguous."""
        require_aware(self.start, "start")
        if self.end is not None:
            require_aware(self.end, "end")


@dataclass(frozen=True, slots=True)
class Line:
    """One invoice line: a clipped interval of one resource at one price.

    ``unit_price`` is the hourly price applied (0 when the price is missing);
    ``amount`` is rounded to the minor unit, ``exact_amount`` is the same amount
    before that rounding (after hours rounding and the monthly cap). ``price_key`` is
    the key of the price used, or the first key looked for when none was found.
    """

    entity_id: str
    entity_type: str
    description: str
    start: datetime
    end: datetime
    hours: Decimal
    quantity: int
    unit_price: Decimal
    amount: Decimal
    missing_price: bool
    price_kind: str
    price_key: str | None
    exact_amount: Decimal


@dataclass(frozen=True)
class Totals:
    """Invoice totals: ``total = subtotal + tax``, all at the minor unit."""

    subtotal: Decimal
    tax: Decimal
    total: Decimal


def round_money(amount: Decimal, decimal_places: int) -> Decimal:
    """Round ``amount`` to ``decimal_places`` with ROUND_HALF_UP (halves away from zero).

    ``round_money(Decimal("0.005"), 2) == Decimal("0.01")``;
    ``round_money(Decimal("-0.005"), 2) == Decimal("-0.01")``.
    """
    return amount.quantize(Decimal(1).scaleb(-decimal_places), ROUND_HALF_UP, _CONTEXT)


def interval_seconds(start: datetime, end: datetime) -> Decimal:
    """Exact length of ``[start, end)`` in seconds, to the microsecond."""
    delta = end - start
    microseconds = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return Decimal(microseconds).scaleb(-6, _CONTEXT)


def billable_hours(seconds: int | Decimal, rounding: str) -> Decimal:
    """Hours billed for ``seconds`` of use under ``rounding``.

    ``"hour_ceil"``: ``ceil(seconds / 3600)`` as an integral Decimal (1 s -> 1,
    3600 s -> 1, 3601 s -> 2, 0 s -> 0). ``"exact"``: ``seconds / 3600`` to
    :data:`PRECISION` significant digits, no further rounding.
    """
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {ROUNDING_MODES}, got {rounding!r}")
    if isinstance(seconds, float):
        raise TypeError("seconds must be an int or a Decimal, not a float")
    if seconds < 0:
        raise ValueError(f"seconds must not be negative, got {seconds}")
    exact = _CONTEXT.divide(Decimal(seconds), _SECONDS_PER_HOUR)
    if rounding == "exact":
        return exact
    return exact.to_integral_value(ROUND_CEILING, _CONTEXT)


def billable_quantity(entity_type: str, size: int | Decimal | Fraction | None) -> int:
    """Units billed for one resource: whole GB (rounded UP) for sized types, else 1.

    Volumes, snapshots and images are sized; a missing size counts as 0 GB. Instances,
    floating IPs and routers are always 1.
    """
    if entity_type not in SIZED_ENTITY_TYPES:
        return 1
    if size is None:
        return 0
    if isinstance(size, float):
        raise TypeError("size must be an int, Decimal or Fraction, not a float")
    if size < 0:
        raise ValueError(f"size must not be negative, got {size}")
    return math.ceil(size)


def unrounded_amount(
    hours: Decimal, hourly: Decimal, monthly: Decimal | None, quantity: int
) -> Decimal:
    """``min(hours x hourly, monthly) x quantity`` (no cap when ``monthly`` is None).

    Computed exactly to :data:`PRECISION` digits; rounding to the minor unit is done
    afterwards, per line, by :func:`round_money`.
    """
    per_unit = _CONTEXT.multiply(hours, hourly)
    if monthly is not None and per_unit > monthly:
        per_unit = monthly
    return _CONTEXT.multiply(per_unit, Decimal(quantity))


def _since(price: Price) -> datetime:
    """A price's ``since`` with ``None`` read as the beginning of time."""
    return _BEGINNING_OF_TIME if price.since is None else price.since


def find_price(
    prices: Sequence[Price], kind: str, keys: Sequence[str], project_id: str, at: datetime
) -> Price | None:
    """The price of ``kind`` in effect at ``at`` for ``project_id``, or None.

    Search order: the project's own rows, then global rows; within each, ``keys`` in
    order (id key before name key). For one scope and key the row in effect is the one
    with the greatest ``since <= at`` (``since=None`` is the beginning of time; on a
    tie the later row in ``prices`` wins). The first scope and key with a row in
    effect decides, so a project row in effect always beats a global row.
    """
    require_aware(at, "at")
    for scope in (project_id, None):
        for key in keys:
            best: Price | None = None
            for price in prices:
                if (
                    price.kind == kind
                    and price.key == key
                    and price.project_id == scope
                    and _since(price) <= at
                    and (best is None or _since(price) >= _since(best))
                ):
                    best = price
            if best is not None:
                return best
    return None


def _terms(price: Price | None) -> tuple[Decimal, Decimal | None] | None:
    """The amounts that matter for rating: (hourly, monthly), or None when missing."""
    return None if price is None else (price.hourly, price.monthly)


def price_changes(
    prices: Sequence[Price],
    kind: str,
    keys: Sequence[str],
    project_id: str,
    start: datetime,
    end: datetime,
) -> list[datetime]:
    """Instants strictly inside ``(start, end)`` where the price in effect changes.

    Only a change of hourly or monthly amount counts (see :func:`find_price` for which
    row is in effect); a price appearing or disappearing counts too. Sorted, in UTC.
    """
    require_aware(start, "start")
    require_aware(end, "end")
    candidates = sorted(
        {
            price.since.astimezone(UTC)
            for price in prices
            if price.since is not None
            and price.kind == kind
            and price.key in keys
            and price.project_id in (project_id, None)
            and start < price.since < end
        }
    )
    changes: list[datetime] = []
    in_effect = _terms(find_price(prices, kind, keys, project_id, start))
    for instant in candidates:
        terms = _terms(find_price(prices, kind, keys, project_id, instant))
        if terms != in_effect:
            changes.append(instant)
            in_effect = terms
    return changes


def price_keys(usage: Usage) -> list[str]:
    """Keys to look a usage's price up by, in order: id key, then name key.

    Instances use (flavor_id, flavor), volumes (volume_type_id, volume_type); other
    kinds use ``"default"``. Missing and repeated keys are left out.
    """
    kind = _price_kind(usage.entity_type)
    if kind == "flavor":
        candidates = [usage.flavor_id, usage.flavor]
    elif kind == "volume":
        candidates = [usage.volume_type_id, usage.volume_type]
    else:
        candidates = [DEFAULT_KEY]
    keys: list[str] = []
    for key in candidates:
        if key and key not in keys:
            keys.append(key)
    return keys


def describe(usage: Usage, quantity: int) -> str:
    """A short human description, e.g. ``"m1.small (instance web-1)"``.

    Other forms: ``"20 GB ssd (volume data)"``, ``"5 GB (snapshot nightly)"``,
    ``"floating IP 203.0.113.7"``, ``"router edge"``; the entity id stands in for a
    missing name.
    """
    name = usage.name or usage.entity_id
    if usage.entity_type == "instance":
        flavor = usage.flavor or usage.flavor_id or "unknown flavor"
        return f"{flavor} (instance {name})"
    if usage.entity_type in SIZED_ENTITY_TYPES:
        volume_type = usage.volume_type or usage.volume_type_id
        size = f"{quantity} GB {volume_type}" if volume_type else f"{quantity} GB"
        return f"{size} ({usage.entity_type} {name})"
    label = "floating IP" if usage.entity_type == "floating_ip" else usage.entity_type
    return f"{label} {name}"


def _price_kind(entity_type: str) -> str:
    """The price kind for ``entity_type``; ``ValueError`` for an unknown type."""
    try:
        return ENTITY_PRICE_KIND[entity_type]
    except KeyError:
        raise ValueError(f"unknown entity type {entity_type!r}") from None


def rate_usage(
    usage: Usage, period: Period, now: datetime, prices: Sequence[Price], rules: RatingRules
) -> list[Line]:
    """Rate one ledger interval for ``period``: clip, split at price changes, rate.

    Returns no line when the interval does not overlap the period before ``now``; one
    line otherwise, or more when a price change falls inside it (rules 1-8 of this
    module). Only prices in ``rules.currency`` are considered.
    """
    kind = _price_kind(usage.entity_type)
    clipped = clip(usage.start, usage.end, period, now)
    if clipped is None:
        return []
    start, end = clipped
    keys = price_keys(usage)
    usable = [
        price
        for price in prices
        if price.currency == rules.currency
        and price.kind == kind
        and price.key in keys
        and price.project_id in (usage.project_id, None)
    ]
    quantity = billable_quantity(usage.entity_type, usage.size)
    spans = _rate_span(usable, kind, keys, usage.project_id, start, end, quantity, rules)
    return _lines(usage, kind, quantity, spans)


#: What `steady_until` returns when no later instant changes the lines.
FOREVER = datetime.max.replace(tzinfo=UTC)
_HOUR = timedelta(hours=1)


def steady_until(
    usages: Iterable[Usage],
    period: Period,
    now: datetime,
    prices: Sequence[Price],
    rules: RatingRules,
    lines: Iterable[tuple[datetime, datetime]] | None = None,
) -> datetime:
    """The first instant from ``now`` on at which rating ``usages`` for ``period`` may give
    other lines than it gives at ``now``: for every ``later`` in ``[now, until)``,
    ``rate_usage(u, period, later, prices, rules)`` equals the lines at ``now`` except that
    each line ending at ``now`` (an interval still running, clipped at ``now``) ends at
    ``later`` instead, with the same hours and amount.

    The instants that may change the lines (rules 1 to 3), counted from ``now`` on: an
    interval's start or end (clipped to the period) and the period's end, since a line
    appears, stops following ``now`` or stops being open there; every price row's ``since``
    (a split); and, under ``hour_ceil``, the next whole hour of a line ending at ``now``
    since its start (one more hour billed just after it). Under ``exact`` rounding a line
    ending at ``now`` bills more at every later instant: then ``until`` is ``now``, as it
    is when one of those instants is ``now`` itself. :data:`FOREVER` when none comes.

    ``lines``: the (start, end) of the lines ``usages`` rate to at ``now``, when the caller
    has them already; else they are rated here. A line ending at ``now`` of a resource that
    ends at ``now`` counts in them and not here, but ``until`` is ``now`` then either way.
    """
    require_aware(now, "now")
    now = now.astimezone(UTC)
    until = FOREVER
    for price in prices:
        if price.since is not None and now <= price.since < until:
            until = price.since
    running: list[tuple[datetime, datetime]] = []
    for usage in usages:
        lower = max(usage.start, period.start)
        upper = period.end if usage.end is None else min(usage.end, period.end)
        if upper <= lower:
            continue  # never a line in this period
        for instant in (lower, upper):
            if now <= instant < until:
                until = instant
        if lines is None and lower < now < upper:  # a line may follow `now`
            rated = rate_usage(usage, period, now, prices, rules)
            running += ((line.start, line.end) for line in rated)
    for start, end in running if lines is None else lines:
        if end != now:
            continue
        if rules.rounding != "hour_ceil":
            return now
        hours = -(-(now - start) // _HOUR)  # ceil: the hour being billed ends
        boundary = start + hours * _HOUR
        if boundary < until:
            until = boundary
    return until


class _Span(NamedTuple):
    """A line's rating, without the resource: what `_rate_span` computes."""

    start: datetime
    end: datetime
    hours: Decimal
    unit_price: Decimal
    amount: Decimal
    missing_price: bool
    price_key: str | None
    exact_amount: Decimal


def _rate_span(
    usable: Sequence[Price],
    kind: str,
    keys: Sequence[str],
    project_id: str,
    start: datetime,
    end: datetime,
    quantity: int,
    rules: RatingRules,
) -> list[_Span]:
    """Rate the clipped interval ``[start, end)`` of ``quantity`` units with the ``usable``
    price rows (those of its kind, keys, scope and currency): split at price changes, one
    span per price in effect (rules 2, 3, 5, 6 and 7)."""
    bounds = [start, *price_changes(usable, kind, keys, project_id, start, end), end]
    spans: list[_Span] = []
    for line_start, line_end in pairwise(bounds):
        price = find_price(usable, kind, keys, project_id, line_start)
        hours = billable_hours(interval_seconds(line_start, line_end), rules.rounding)
        if price is None:
            unit_price, exact, key = Decimal(0), Decimal(0), (keys[0] if keys else None)
        else:
            unit_price, key = price.hourly, price.key
            exact = unrounded_amount(hours, price.hourly, price.monthly, quantity)
        amount = round_money(exact, rules.decimal_places)
        spans.append(
            _Span(line_start, line_end, hours, unit_price, amount, price is None, key, exact)
        )
    return spans


def _lines(usage: Usage, kind: str, quantity: int, spans: Sequence[_Span]) -> list[Line]:
    """The invoice lines of one usage rated as ``spans``."""
    description = describe(usage, quantity)
    return [
        Line(
            entity_id=usage.entity_id,
            entity_type=usage.entity_type,
            description=description,
            start=span.start,
            end=span.end,
            hours=span.hours,
            quantity=quantity,
            unit_price=span.unit_price,
            amount=span.amount,
            missing_price=span.missing_price,
            price_kind=kind,
            price_key=span.price_key,
            exact_amount=span.exact_amount,
        )
        for span in spans
    ]


class UsageRater:
    """:func:`rate_usage` for many usages of one period, with the same ``now``, prices and
    rules: ``rater.rate(usage) == rate_usage(usage, period, now, prices, rules)``.

    Built for rating a month of thousands of resources (closing invoices): the price rows
    are indexed by kind and key once instead of scanned for every usage, and a clipped
    span is rated once for every usage that shares it (same usable price rows, start, end
    and quantity: every resource of one flavor that ran the whole month). It remembers
    up to :attr:`MAX_SPANS` spans, then forgets them all and starts again, so its memory
    stays bounded however many usages it rates.
    """

    MAX_SPANS = 10_000

    def __init__(
        self, period: Period, now: datetime, prices: Sequence[Price], rules: RatingRules
    ) -> None:
        require_aware(now, "now")
        self._period_start = period.start
        self._period_end = min(period.end, now)
        self._rules = rules
        rows: dict[tuple[str, str], list[tuple[int, Price]]] = {}
        self._scoped: set[tuple[str, str]] = set()  # (kind, project) with rows of its own
        for position, price in enumerate(prices):
            if price.currency == rules.currency:
                rows.setdefault((price.kind, price.key), []).append((position, price))
                if price.project_id is not None:
                    self._scoped.add((price.kind, price.project_id))
        self._rows = rows
        self._usable: dict[tuple[str, tuple[str, ...], str | None], list[Price]] = {}
        self._spans: dict[tuple[object, ...], list[_Span]] = {}

    def _usable_rows(self, kind: str, keys: tuple[str, ...], scope: str | None) -> list[Price]:
        """The rows `rate_usage` keeps for a usage of ``kind``, ``keys`` and a project that
        has rows of its own (``scope``) or none (None), in their original order."""
        usable = self._usable.get((kind, keys, scope))
        if usable is None:
            found = sorted(
                (position, price)
                for key in keys
                for position, price in self._rows.get((kind, key), ())
                if price.project_id is None or price.project_id == scope
            )
            usable = self._usable[(kind, keys, scope)] = [price for _, price in found]
        return usable

    def rate(self, usage: Usage) -> list[Line]:
        """The lines of ``usage``: the same as :func:`rate_usage`."""
        kind = _price_kind(usage.entity_type)
        # clip(), with `now` and the period's bounds checked and computed once
        lower = max(usage.start, self._period_start)
        upper = self._period_end if usage.end is None else min(usage.end, self._period_end)
        if upper <= lower:
            return []
        quantity = billable_quantity(usage.entity_type, usage.size)
        # A project without rows of its own is rated with the global rows alone, like
        # every other such project: its spans are shared.
        scope = usage.project_id if (kind, usage.project_id) in self._scoped else None
        # What the price keys are made of (`price_keys`), and the clipped bounds as they
        # are (equal instants hash alike in any time zone): no work before a span is known.
        span_key = (
            usage.entity_type,
            usage.flavor_id,
            usage.flavor,
            usage.volume_type_id,
            usage.volume_type,
            scope,
            lower,
            upper,
            quantity,
        )
        spans = self._spans.get(span_key)
        if spans is None:
            if len(self._spans) >= self.MAX_SPANS:
                self._spans.clear()
            keys = tuple(price_keys(usage))
            spans = self._spans[span_key] = _rate_span(
                self._usable_rows(kind, keys, scope),
                kind,
                keys,
                usage.project_id,
                lower.astimezone(UTC),
                upper.astimezone(UTC),
                quantity,
                self._rules,
            )
        return _lines(usage, kind, quantity, spans)


def totals(lines: Sequence[Line], rules: RatingRules) -> Totals:
    """Subtotal (exact sum of the rounded line amounts), tax and total.

    ``tax = round_money(subtotal x tax_percent / 100)`` (ROUND_HALF_UP at
    ``rules.decimal_places``); ``total = subtotal + tax``, exact.
    """
    return totals_of([line.amount for line in lines], rules)


def totals_of(amounts: Iterable[Decimal], rules: RatingRules) -> Totals:
    """:func:`totals` of lines with these rounded amounts."""
    with localcontext(_CONTEXT):
        subtotal = round_money(Decimal(0), rules.decimal_places)
        for amount in amounts:
            subtotal += amount
        tax = round_money(subtotal * rules.tax_percent / 100, rules.decimal_places)
        return Totals(subtotal=subtotal, tax=tax, total=subtotal + tax)
