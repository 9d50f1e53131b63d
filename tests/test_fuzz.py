"""Bad input: hypothesis-made notifications through the collector, and bad CLI arguments.

Notifications: malformed JSON, wrong types, huge fields (up to 100 KiB), unknown event
types, bad dates, missing ids, NUL characters and lone surrogates, in the envelope, flat
and listener forms, for every handled event type. Every message ends up applied, ignored,
duplicate or quarantined with its reason, and the counts add up: fast, through
record_messages (SQLite and PostgreSQL); then over RabbitMQ through a real Collector thread,
which stays alive and drains its queue.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from peewee import fn
from typer.testing import CliRunner

from rintik_lite import services
from rintik_lite.cli import app
from rintik_lite.collector import Collector
from rintik_lite.ledger.notifications import HANDLED_EVENT_TYPES
from rintik_lite.models import Event, Quarantine, quarantine_digest
from tests.conftest import NOW, Broker
from tests.faults.harness import declare, publish_all, wait_for
from tests.test_services import instance, volume

SLOW_FIXTURES = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
]

# --- strategies ------------------------------------------------------------------------------

HUGE = st.sampled_from([255, 256, 4096, 100 * 1024]).map(lambda n: "x" * n)
ODD_TEXT = st.sampled_from(
    ["", "\x00", "a\x00b", "\ud800", "x\udfff", "None", "null", "' OR 1=1 --", "é" * 300]
)
DATES = st.one_of(
    st.sampled_from(
        [
            "2026-10-01 00:00:00.000000",
            "2026-10-01T00:00:00Z",
            "2026-10-01T00:00:00+05:30",
            "2026-13-45 25:61:00",
            "0000-00-00 00:00:00",
            "9999-12-31T23:59:59.999999",
            "yesterday",
            "2026-10-01T00:00:00+25:00",
            "",
        ]
    ),
    st.datetimes().map(str),
    st.integers(),
    st.floats(),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**40),
    st.floats(),
    st.text(max_size=12),
    ODD_TEXT,
    HUGE,
    DATES,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = [
    "instance_id",
    "tenant_id",
    "project_id",
    "volume_id",
    "snapshot_id",
    "size",
    "display_name",
    "instance_type",
    "instance_flavor_id",
    "vcpus",
    "memory_mb",
    "disk_gb",
    "state",
    "launched_at",
    "created_at",
    "deleted_at",
    "terminated_at",
    "audit_period_ending",
    "image_meta",
    "volume_type",
    "volume_type_id",
    "status",
    "volume_attachment",
    "floatingip",
    "router",
    "id",
    "owner",
    "name",
    "resource_info",
    "metadata",
    ").split(",
]
TEMPLATES = [
    instance("create.end", 0)["payload"],
    instance("delete.end", 5, deleted=5)["payload"],
    volume("attach.end", 2, attached=["i-1"])["payload"],
    {"floatingip": {"id": "f-1", "tenant_id": "p", "floating_ip_address": "10.0.0.1"}},
    {"router": {"id": "r-1", "tenant_id": "p", "external_gateway_info": {"network_id": "n"}}},
    {"id": "img-1", "owner": "p", "size": 1024, "created_at": "2026-10-01T00:00:00Z"},
    {"resource_info": "p-1"},
    {"volume_types": {"id": "vt-1", "name": "ssd"}},
]


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    """A real payload with a few fields broken, or made up from scratch, or not a dict."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(VALUES)
    if kind <= 3:
        return draw(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=8))
    payload = dict(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from([*FIELDS, *payload]))
        if draw(st.booleans()) and key in payload:
            del payload[key]  # a missing id, date, size ...
        else:
            payload[key] = draw(VALUES)
    return payload


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """One message body as it may arrive on the bus."""
    message: dict[str, Any] = {
        "event_type": draw(
            st.one_of(
                st.sampled_from(sorted(HANDLED_EVENT_TYPES)),
                st.text(max_size=30),  # unknown event types
                SCALARS,
            )
        ),
        "payload": draw(payloads()),
        "publisher_id": draw(st.one_of(st.just("compute.host-1"), SCALARS)),
        "timestamp": draw(DATES),
        "priority": "INFO",
    }
    message_id = draw(st.one_of(st.uuids().map(str), st.none(), SCALARS))
    if message_id is not None:
        message["message_id"] = message_id
    shape = draw(st.integers(0, 7))
    doc: Any
    if shape == 0:
        return draw(st.binary(max_size=300))  # not JSON, maybe not UTF-8
    if shape == 1:  # the envelope
        doc = {"oslo.version": "2.0", "oslo.message": json.dumps(message)}
    elif shape == 2:  # a broken envelope
        doc = {"oslo.version": draw(SCALARS), "oslo.message": draw(st.one_of(VALUES, st.just("{")))}
    elif shape == 3:  # the listener form
        doc = {
            "ctxt": draw(st.one_of(st.just({"project_id": "p"}), VALUES)),
            "publisher_id": message["publisher_id"],
            "event_type": message["event_type"],
            "payload": message["payload"],
            "metadata": {"message_id": message.get("message_id"), "timestamp": "x"},
        }
    else:  # the flat form
        doc = message
    text = json.dumps(doc)  # lone surrogates and NULs travel as \\u escapes
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]  # truncated JSON
    return text.encode("utf-8")


def quarantine_attempts() -> int:
    """Every message quarantined so far: each body is kept once, with the times it came."""
    return int(Quarantine.select(fn.SUM(Quarantine.attempts)).scalar() or 0)


def check_quarantine() -> None:
    """Each quarantined body once, found by its digest, with a reason."""
    rows = list(Quarantine.select())
    assert all(q.reason.strip() for q in rows)
    assert [q.digest for q in rows] == [quarantine_digest(q.body) for q in rows]
    assert len({q.body for q in rows}) == len(rows)


def check_result(result: services.BatchResult, sent: int) -> None:
    assert result.received == sent
    assert result.received == (
        result.applied + result.ignored + result.duplicate + result.quarantined
    )


# --- record_messages ------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW_FIXTURES)
@given(batch=st.lists(bodies(), min_size=1, max_size=12))
def test_every_message_is_applied_or_quarantined(db_url: str, batch: list[bytes]) -> None:
    events, kept = Event.select().count(), quarantine_attempts()
    batch = batch + batch[:2]  # and a redelivery or two
    result = services.record_messages([services.Incoming(b) for b in batch], NOW)
    check_result(result, len(batch))
    assert Event.select().count() - events == result.applied + result.ignored
    assert quarantine_attempts() - kept == result.quarantined
    check_quarantine()


# --- a real Collector thread over RabbitMQ ----------------------------------------------------


@pytest.mark.slow
@settings(max_examples=1, deadline=None, suppress_health_check=SLOW_FIXTURES)
@given(batch=st.lists(bodies(), min_size=200, max_size=200))
def test_the_collector_thread_survives_anything(
    broker: Broker, db_url: str, batch: list[bytes]
) -> None:
    collector = Collector(broker.settings(db_url, broker__batch_size=50))
    events, kept = Event.select().count(), quarantine_attempts()
    before = collector.status.totals.received
    declare(broker)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        publish_all(broker, [("nova", body) for body in batch])
        wait_for(lambda: collector.status.totals.received - before >= len(batch), 60)
        assert thread.is_alive()
        assert collector.status.database_error is None
        assert collector.status.broker_error is None
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    totals = collector.status.totals
    check_result(totals, len(batch))
    assert broker.queue_depth() == 0
    assert Event.select().count() - events == totals.applied + totals.ignored
    assert quarantine_attempts() - kept == totals.quarantined
    check_quarantine()


# --- the command line ----------------------------------------------------------------------

runner = CliRunner()


def _files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "bad.toml").write_text("[database\nurl =")
    (tmp_path / "unknown.toml").write_text("[database]\nuri = 'x'\n")
    (tmp_path / "value.toml").write_text("[api]\nport = 'http'\n")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "folder").mkdir()
    (tmp_path / "log.ini").write_text("not a logging configuration")
    names = ("bad.toml", "unknown.toml", "value.toml", "binary.toml", "folder", "log.ini")
    return {name: str(tmp_path / name) for name in names}


BAD_ARGUMENTS = [
    ["usage", "--project", "p", "--start", "yesterday"],
    ["usage", "--project", "p", "--end", "2026-99-01"],
    ["usage", "--project", "p", "--start", "2026-10-02", "--end", "2026-10-01"],
    ["replay", "/nonexistent/folder"],
    ["price", "set", "nope", "k", "--hourly", "1"],
    ["price", "set", "flavor", "k", "--hourly", "abc"],
    ["price", "set", "flavor", "k", "--hourly", "NaN"],
    ["price", "set", "flavor", "k", "--hourly", "-1"],
    ["price", "set", "flavor", "k", "--hourly", "1e999"],
    ["price", "set", "flavor", "", "--hourly", "1"],
    ["price", "set", "router", "k", "--hourly", "1"],
    ["price", "set", "flavor", "k", "--hourly", "1", "--since", "never"],
    ["price", "list", "--kind", "nope"],
    ["invoice", "close", "--period", "2026-13"],
    ["invoice", "close", "--period", "2999-01"],
    ["invoice", "list", "--period", "x"],
    ["invoice", "show", "abc"],
    ["invoice", "show", "99"],
    ["invoice", "show", "1", "--format", "xml"],
    ["invoice", "pay", "99999999999999999999999"],
    ["invoice", "unpay", "1.5"],
    ["usage", "--project", "p", "--config", "{bad.toml}"],
    ["usage", "--project", "p", "--config", "{unknown.toml}"],
    ["usage", "--project", "p", "--config", "{value.toml}"],
    ["usage", "--project", "p", "--config", "/nonexistent.toml"],
]


@pytest.mark.parametrize("args", BAD_ARGUMENTS, ids=" ".join)
def test_bad_arguments_and_files_give_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    files = _files(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = [files[a[1:-1]] if a.startswith("{") else a for a in args]
    env = {"RINTIK_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.startswith("error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["usage", "--project", "p", "--config", "{folder}"],
        ["usage", "--project", "p", "--config", "{binary.toml}"],
        ["run", "--logging", "{log.ini}"],  # configparser's multi-line message (cli.py)
    ],
    ids=" ".join,
)
def test_unreadable_config_files_give_one_line(tmp_path: Path, args: list[str]) -> None:
    files = _files(tmp_path)
    args = [files[a[1:-1]] if a.startswith("{") else a for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [["usage"], ["usage", "--project"], ["usage", "--bogus", "x"], ["invoice", "show"], ["nope"]],
    ids=" ".join,
)
def test_usage_errors_exit_2_without_a_traceback(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
