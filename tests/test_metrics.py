"""GET /metrics: the Prometheus text format, read back with Prometheus' own Python parser.

A real runtime (real RabbitMQ, real SQLite, the API over loopback) for the collector's
counters, the queue depth and the ledger figures; the WSGI app in-process for the request
counters and the token setting.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from webtest import TestApp

from rintik_lite import invoices
from rintik_lite.api import create_app
from rintik_lite.api.metrics import CONTENT_TYPE, family, instrument, text
from rintik_lite.billing.periods import Period
from rintik_lite.runtime import Runtime
from tests.billing import trace
from tests.conftest import NOW, Broker, notification, record, settings_for

TOKEN = "metrics-token-51c7e0"
H = {"X-Auth-Token": TOKEN}
Samples = dict[str, list[tuple[dict[str, str], float]]]


def samples(body: str) -> Samples:
    """Every sample by its name (`x_total`, `x_bucket`...), parsed as Prometheus does."""
    found: Samples = {}
    for metric in text_string_to_metric_families(body):
        for sample in metric.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    matches = [
        v for have, v in found.get(name, []) if all(have.get(k) == w for k, w in labels.items())
    ]
    assert len(matches) == 1, (name, labels, found.get(name))
    return matches[0]


@pytest.fixture
def running(broker: Broker, sqlite_url: str) -> Iterator[Runtime]:
    settings = broker.settings(
        sqlite_url, api__port=0, scheduler__enabled=False, auth__private_key=TOKEN
    )
    runtime = Runtime(settings)
    runtime.start()
    deadline = time.monotonic() + 15
    while not runtime.collector.status.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    yield runtime
    runtime.shutdown()


def get(url: str, token: str | None = None) -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"X-Auth-Token": token} if token else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


def test_metrics_of_a_running_runtime(running: Runtime, broker: Broker) -> None:
    # a closed October, a price, and an instance running this (real) month
    record(trace.instance("create.end", trace.utc(2026, 10, 5), project="p-1", instance_id="i-0"))
    invoices.set_price("flavor", "m1.small", "0.10", currency="USD", now=NOW)
    rules = invoices.rules_from(running.settings)
    assert invoices.close_invoices(Period(2026, 10), NOW, rules)
    launched = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    create = trace.instance("create.end", launched, project="p-1", instance_id="i-1")
    broker.publish("nova", create)
    broker.publish("nova", create)  # redelivered by the cloud: a duplicate
    broker.publish("nova", notification("compute.instance.create.end", {"state": "x"}, "now"))
    status = running.collector.status
    deadline = time.monotonic() + 20
    while status.totals.received < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    api = running.api.url
    get(f"{api}/v1/projects", TOKEN)
    content_type, body = get(f"{api}/metrics", token=TOKEN)
    assert content_type == CONTENT_TYPE
    found = samples(body)
    create_end = "compute.instance.create.end"
    assert value(found, "rintik_events_received_total", event_type=create_end) == 3
    for outcome in ("applied", "duplicate", "quarantined"):
        assert value(found, "rintik_events_total", event_type=create_end, outcome=outcome) == 1
    assert value(found, "rintik_broker_connected") == 1
    assert value(found, "rintik_queue_messages", queue=broker.queue) == 0
    assert 0 <= value(found, "rintik_last_event_age_seconds") < 60
    assert value(found, "rintik_database_up") == 1
    assert value(found, "rintik_invoices_closed_total") == 1
    assert value(found, "rintik_revenue_month_to_date", currency="USD") > 0
    assert value(found, "rintik_active_resources") == 2
    route = {"method": "GET", "route": "/v1/projects"}
    assert value(found, "rintik_api_requests_total", **route, status="200") == 1
    assert value(found, "rintik_api_request_duration_seconds_count", **route) == 1
    assert "rintik_scheduler_next_run_timestamp_seconds" not in found  # off: a timer closes
    # nothing secret: not the token, not the broker's credentials or address
    assert TOKEN not in body and "guest" not in body and "127.0.0.1" not in body
    # [scheduler] enabled = false: no scheduler thread, and still healthy
    _, health = get(f"{api}/healthz")
    assert '"healthy":true' in health.replace(" ", "")
    assert {t.name for t in running.threads} == {"collector", "api"}


def app_for(db_url: str, **changes: Any) -> TestApp:
    settings = settings_for(db_url, auth__private_key=TOKEN, **changes)
    return TestApp(instrument(create_app(settings), settings, lambda: "rintik_up 1\n"))


def test_requests_are_counted_and_timed_by_route_rule(sqlite_url: str) -> None:
    app = app_for(sqlite_url)
    app.get("/v1/projects", headers=H)
    app.get("/v1/projects", status=401)
    app.get("/v1/project/p-1/entities?start=2026-10-01", headers=H)
    app.get("/v1/project/p-2/entities?start=2026-10-01", headers=H)
    app.get("/no/such/path", headers=H, status=404)
    response = app.get("/metrics", headers=H)
    assert response.headers["Content-Type"] == CONTENT_TYPE
    found = samples(response.text)
    assert value(found, "rintik_up") == 1  # the runtime's figures come first
    counted = {
        (labels["route"], labels["status"]): n for labels, n in found["rintik_api_requests_total"]
    }
    assert counted == {
        ("/v1/projects", "200"): 1,
        ("/v1/projects", "401"): 1,
        ("/v1/project/<project_id>/entities", "200"): 2,
        ("<unmatched>", "404"): 1,
    }
    entities = {"method": "GET", "route": "/v1/project/<project_id>/entities"}
    buckets = [
        (float(labels["le"]), n)
        for labels, n in found["rintik_api_request_duration_seconds_bucket"]
        if labels["route"] == entities["route"]
    ]
    assert [n for _, n in sorted(buckets)] == sorted(n for _, n in buckets)  # cumulative
    assert max(n for _, n in buckets) == 2
    assert value(found, "rintik_api_request_duration_seconds_count", **entities) == 2
    assert value(found, "rintik_api_request_duration_seconds_sum", **entities) > 0


def test_metrics_ask_for_the_token_unless_told_not_to(sqlite_url: str) -> None:
    guarded = app_for(sqlite_url)
    refused = guarded.get("/metrics", status=401)
    assert refused.json == {"error": "missing or invalid X-Auth-Token header"}
    guarded.get("/metrics", headers={"X-Auth-Token": "wrong"}, status=401)
    guarded.get("/metrics", headers={"Authorization": "Basic " + TOKEN}, status=401)
    assert "rintik_up 1" in guarded.get("/metrics", headers=H).text
    bearer = {"Authorization": f"Bearer {TOKEN}"}  # Prometheus' `authorization` option
    assert "rintik_up 1" in guarded.get("/metrics", headers=bearer).text
    guarded.post("/metrics", headers=H, status=405)
    public = app_for(sqlite_url, api__metrics_require_token=False)
    assert public.get("/metrics").status_int == 200


@pytest.mark.parametrize("label", ['a "quoted" one', "back\\slash", "two\nlines", "ünïcode"])
def test_label_values_are_escaped(label: str) -> None:
    body = text(family("x_total", "counter", "Help with \\ and\nnewline.", [({"l": label}, 2)]))
    (metric,) = text_string_to_metric_families(body)
    assert metric.documentation == "Help with \\ and\nnewline."
    assert [(s.labels, s.value) for s in metric.samples] == [({"l": label}, 2.0)]
