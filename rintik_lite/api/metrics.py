"""`GET /metrics`: the Prometheus text exposition format (version 0.0.4).

`instrument(app, settings, figures)` wraps the API's WSGI app. It answers `GET /metrics`
itself (public unless `[api] metrics_require_token`) and, for every other request, counts
it and times it by method, route *rule* (`/v1/project/<project_id>/entities`, never the
concrete path, so the number of series stays bounded) and status. `figures()` is the
process's own part: `rintik-lite run` passes `Runtime.metrics`, which renders the
collector's counters, the queue depth, the scheduler and the ledger with `runtime_text`.

/metrics holds counts, times and amounts only: no URL, token, password or project name.
/metrics is not an Almanach route and is not in /openapi.json; the README documents it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from kombu import Connection, Queue

from rintik_lite import __version__
from rintik_lite.settings import Settings

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PATH = "/metrics"
#: Upper bounds of the API latency histogram, in seconds.
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "<unmatched>"

Sample = tuple[Mapping[str, str], float | int]
Figures = Callable[[], str]


# --- the text format -----------------------------------------------------------------------


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float | int | Decimal) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(number)


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
    return "{" + inner + "}"


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    """The lines of one metric family: HELP, TYPE, then one line per sample."""
    lines = [f"# HELP {name} {_escape_help(help_text)}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples]
    return lines


def text(lines: Iterable[str]) -> str:
    body = "\n".join(lines)
    return body + "\n" if body else ""


# --- the API's own figures ----------------------------------------------------------------


class ApiStats:
    """Request counts by (method, route, status) and a latency histogram by (method, route).
    Thread-safe: the API's worker threads record into it concurrently."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str, str]] = Counter()
        self._buckets: dict[tuple[str, str], list[int]] = {}
        self._sums: dict[tuple[str, str], float] = {}

    def record(self, method: str, route: str, status: str, seconds: float) -> None:
        key = (method, route)
        with self._lock:
            self._requests[(method, route, status)] += 1
            counts = self._buckets.setdefault(key, [0] * (len(BUCKETS) + 1))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-1] += 1  # +Inf
            self._sums[key] = self._sums.get(key, 0.0) + seconds

    def lines(self) -> list[str]:
        with self._lock:
            requests = sorted(self._requests.items())
            buckets = {k: list(v) for k, v in sorted(self._buckets.items())}
            sums = dict(self._sums)
        lines = family(
            "rintik_api_requests_total",
            "counter",
            "API requests answered, by method, route rule and status code.",
            (({"method": m, "route": r, "status": s}, n) for (m, r, s), n in requests),
        )
        lines += family(
            "rintik_api_request_duration_seconds",
            "histogram",
            "Time to answer an API request, by method and route rule.",
            [],
        )
        name = "rintik_api_request_duration_seconds"
        for (method, route), counts in buckets.items():
            for bound, count in zip((*BUCKETS, math.inf), counts, strict=True):
                le = "+Inf" if math.isinf(bound) else _number(bound)
                bucket = _labels({"method": method, "route": route, "le": le})
                lines.append(f"{name}_bucket{bucket} {count}")
            labels = _labels({"method": method, "route": route})
            lines.append(f"{name}_sum{labels} {_number(sums[(method, route)])}")
            lines.append(f"{name}_count{labels} {counts[-1]}")
        return lines


class MetricsApp:
    """WSGI middleware: serves GET /metrics, and counts and times every other request."""

    def __init__(
        self,
        app: Callable[..., Any],
        figures: Figures | None = None,
        token_check: Any | None = None,
    ) -> None:
        self.app = app
        self.figures = figures
        self.token_check = token_check  # rintik_lite.api.auth.TokenCheck, or None: public
        self.stats = ApiStats()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == PATH:
            return self._metrics(environ, start_response)
        status_seen: list[str] = []

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            status_seen[:] = [status.split(" ", 1)[0]]
            return (
                start_response(status, headers, exc_info)
                if exc_info
                else start_response(status, headers)
            )

        began = time.perf_counter()
        try:
            return self.app(environ, recording_start_response)
        finally:
            route = environ.get("bottle.route")
            rule = getattr(route, "rule", None) or UNMATCHED
            self.stats.record(
                str(environ.get("REQUEST_METHOD", "GET")),
                rule,
                status_seen[0] if status_seen else "500",
                time.perf_counter() - began,
            )

    def _metrics(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _reply(start_response, "405 Method Not Allowed", '{"error": "use GET"}\n', "")
        if self.token_check is not None:
            try:
                accepted = self.token_check.accepts(_token(environ))
            except Exception as exc:  # Keystone unreachable
                return _reply(start_response, "503 Service Unavailable", _json_error(exc), "")
            if not accepted:
                message = '{"error": "missing or invalid X-Auth-Token header"}\n'
                return _reply(start_response, "401 Unauthorized", message, "")
        parts: list[str] = []
        if self.figures is not None:
            try:
                parts.append(self.figures())
            except Exception:  # a broken figure must not hide the others
                log.exception("cannot compute the metrics")
        parts.append(text(self.stats.lines()))
        body = "".join(parts)
        return _reply(start_response, "200 OK", body, CONTENT_TYPE, head=method == "HEAD")


def _json_error(exc: Exception) -> str:
    import json

    return json.dumps({"error": str(exc)[:500]}) + "\n"


def _reply(
    start_response: Callable[..., Any],
    status: str,
    body: str,
    content_type: str,
    head: bool = False,
) -> Iterator[bytes]:
    data = body.encode("utf-8")
    start_response(
        status,
        [
            ("Content-Type", content_type or "application/json"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
        ],
    )
    return iter([] if head else [data])


def _token(environ: dict[str, Any]) -> str | None:
    """`X-Auth-Token`, else the credentials of `Authorization: Bearer <token>`."""
    token = environ.get("HTTP_X_AUTH_TOKEN")
    if token:
        return str(token)
    scheme, _, credentials = str(environ.get("HTTP_AUTHORIZATION", "")).partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def instrument(
    app: Callable[..., Any], settings: Settings, figures: Figures | None = None
) -> MetricsApp:
    """Wrap the API app with /metrics, asking for the token when the settings say so."""
    token_check = None
    if settings["api.metrics_require_token"]:
        from rintik_lite.api.auth import TokenCheck, strategies

        keystone = None
        if "keystone" in strategies(settings):
            from rintik_lite.api.keystone import KeystoneAuth

            keystone = KeystoneAuth(settings)
        token_check = TokenCheck(settings, keystone)
    return MetricsApp(app, figures, token_check)


# --- the process's figures ----------------------------------------------------------------


class QueueDepth:
    """Messages ready in our queue, by a passive `queue.declare`; cached `cache_seconds`.
    None when the broker cannot be asked (or the queue does not exist yet)."""

    def __init__(
        self,
        settings: Settings,
        connection_factory: Callable[[], Connection] | None = None,
        cache_seconds: float = 5.0,
    ) -> None:
        self.queue = settings["broker.queue"]
        url = settings["broker.url"]
        self._connect = connection_factory or (lambda: Connection(url, connect_timeout=2))
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._value: int | None = None
        self._at = -math.inf

    def __call__(self) -> int | None:
        with self._lock:
            if time.monotonic() - self._at < self.cache_seconds:
                return self._value
            self._value = self._ask()
            self._at = time.monotonic()
            return self._value

    def _ask(self) -> int | None:
        try:
            with self._connect() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
                with conn.channel() as channel:
                    declared = Queue(self.queue, channel=channel).queue_declare(passive=True)
                    return int(declared.message_count)
        except Exception as exc:
            log.debug("queue depth of %s unknown: %s", self.queue, exc)
            return None


def runtime_text(
    collector: Any,
    scheduler: Any,
    queue: str,
    queue_depth: int | None,
    ledger: Mapping[str, Any] | None,
    now: datetime,
) -> str:
    """The figures of a `run` process. `collector` is its CollectorStatus, `scheduler` its
    Scheduler, `ledger` what `ledger_figures()` read (None: the database failed)."""
    totals = collector.totals
    received: Counter[str] = Counter()
    for (event_type, _outcome), count in totals.by_type.items():
        received[event_type] += count
    lines = family(
        "rintik_build_info",
        "gauge",
        "Always 1; the version is a label.",
        [({"version": __version__}, 1)],
    )
    lines += family(
        "rintik_events_received_total",
        "counter",
        "Notifications received and committed by the collector, by event type.",
        (({"event_type": t}, n) for t, n in sorted(received.items())),
    )
    lines += family(
        "rintik_events_total",
        "counter",
        "Notifications by event type and outcome: applied, ignored (changes nothing "
        "billable), duplicate (seen before) or quarantined (could not be read).",
        (({"event_type": t, "outcome": o}, n) for (t, o), n in sorted(totals.by_type.items())),
    )
    lines += family(
        "rintik_broker_connected",
        "gauge",
        "1 while the collector is connected to the broker.",
        [({}, 1 if collector.connected else 0)],
    )
    lines += family(
        "rintik_collector_pending_messages",
        "gauge",
        "Messages received and not yet committed (the batch being filled).",
        [({}, collector.pending)],
    )
    lines += family(
        "rintik_queue_messages",
        "gauge",
        "Messages waiting in our queue on the broker (absent when the broker cannot be asked).",
        [] if queue_depth is None else [({"queue": queue}, queue_depth)],
    )
    last = collector.last_message_at or (ledger or {}).get("last_event")
    lines += family(
        "rintik_last_event_age_seconds",
        "gauge",
        "Seconds since the last notification was received (absent before the first).",
        [] if last is None else [({}, round(max(0.0, (now - last).total_seconds()), 3))],
    )
    lines += family(
        "rintik_database_up",
        "gauge",
        "1 when the database answered this scrape.",
        [({}, 0 if ledger is None else 1)],
    )
    if ledger is not None:
        lines += family(
            "rintik_invoices_closed_total",
            "counter",
            "Invoices closed (unpaid or paid) in the database.",
            [({}, ledger["invoices_closed"])],
        )
        lines += family(
            "rintik_revenue_month_to_date",
            "gauge",
            "Total of this month's open invoices so far, by currency (tax included).",
            (({"currency": c}, a) for c, a in sorted(ledger["month_to_date"].items())),
        )
        lines += family(
            "rintik_active_resources",
            "gauge",
            "Resources with an open interval in the ledger.",
            [({}, ledger["active_entities"])],
        )
    next_run = scheduler.next_run if scheduler.enabled else None
    lines += family(
        "rintik_scheduler_invoices_closed_total",
        "counter",
        "Invoices this process's scheduler has closed since it started.",
        [({}, int(scheduler.closed_count))],
    )
    lines += family(
        "rintik_scheduler_next_run_timestamp_seconds",
        "gauge",
        "When the scheduler closes the next month (absent when it is off).",
        [] if next_run is None else [({}, int(next_run.timestamp()))],
    )
    return text(lines)


def ledger_figures(now: datetime, rules: Any) -> dict[str, Any] | None:
    """What /metrics reads from the database: closed invoices, this month's revenue so far,
    active resources and the time of the last stored event. None when the database fails
    (logged). Closes the thread's connection after, when it opened it."""
    from rintik_lite.db import close_database, database

    opened = database.is_closed()
    try:
        return _ledger_figures(now, rules)
    except Exception as exc:
        log.warning("/metrics cannot read the database: %s: %s", type(exc).__name__, exc)
        return None
    finally:
        if opened:
            close_database()


def _ledger_figures(now: datetime, rules: Any) -> dict[str, Any]:
    from rintik_lite import invoices, services
    from rintik_lite.billing.periods import Period
    from rintik_lite.models import Invoice

    closed = Invoice.select().where(Invoice.state.in_(invoices.CLOSED_STATES)).count()
    month: dict[str, Decimal] = {}
    for doc in invoices.list_invoices(now, rules, None, Period.containing(now)):
        if doc.get("total") is not None:
            month[doc["currency"]] = month.get(doc["currency"], Decimal(0)) + Decimal(doc["total"])
    return {
        "invoices_closed": closed,
        "month_to_date": dict(month),
        "active_entities": services.counts()["active_entities"],
        "last_event": services.last_event_time(),
    }
