"""The Almanach v1 routes and the extra queries, called in-process (webtest), on real SQLite
and PostgreSQL. Writes go through the ledger code and are stored as events from the API."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import bottle
import pytest
from webtest import TestApp

from rintik_lite import services
from rintik_lite.api import create_app, openapi_document
from rintik_lite.api.openapi import openapi_path
from rintik_lite.models import Event, Project
from tests.conftest import NOW, notification, record, settings_for

TOKEN = "test-token-3f9c2a"
H = {"X-Auth-Token": TOKEN}
P1 = "7c150a59fe714e6f9263774af9688f0e"
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def qs(hours: float) -> str:
    """A date as Almanach's client writes it in a query string."""
    return (T0 + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S.%f")


def body_date(hours: float) -> str:
    """A date as Almanach's client writes it in a body."""
    return (T0 + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_app(db_url: str, **changes: Any) -> TestApp:
    settings = settings_for(db_url, auth__private_key=TOKEN, **changes)
    return TestApp(create_app(settings, clock=lambda: NOW))


@pytest.fixture
def app(db_url: str) -> TestApp:
    return make_app(db_url)


def create_instance(
    app: TestApp, instance_id: str = "i-1", hours: float = 0, prefix: str = "/v1", **extra: Any
) -> None:
    body = {
        "id": instance_id,
        "created_at": body_date(hours),
        "name": "web",
        "flavor": "m1.small",
        "os_type": "linux",
        "os_distro": "ubuntu",
        "os_version": "24.04",
        **extra,
    }
    response = app.post_json(f"{prefix}/project/{P1}/instance", body, headers=H, status=201)
    assert response.body == b""


def create_volume(app: TestApp, volume_id: str = "v-1", hours: float = 0, **extra: Any) -> None:
    body = {
        "volume_id": volume_id,
        "start": body_date(hours),
        "volume_type": "vt-ssd",
        "size": 10,
        "volume_name": "data",
        "attached_to": [],
        **extra,
    }
    app.post_json(f"/v1/project/{P1}/volume", body, headers=H, status=201)


def spans(rows: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(r["entity_id"], r["start"], r["end"]) for r in rows]


# --- the Almanach routes -------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_instance_lifecycle(app: TestApp, prefix: str) -> None:
    create_instance(app, prefix=prefix)
    app.put_json(
        f"{prefix}/instance/i-1/resize", {"date": body_date(3), "flavor": "m1.large"}, headers=H
    )
    rebuild = {
        "rebuild_date": body_date(4),
        "distro": "debian",
        "version": "13",
        "os_type": "linux",
    }
    app.put_json(f"{prefix}/instance/i-1/rebuild", rebuild, headers=H, status=200)
    app.delete_json(f"{prefix}/instance/i-1", {"date": body_date(5)}, headers=H, status=202)

    rows = app.get(f"{prefix}/project/{P1}/instances", {"start": qs(-1)}, headers=H).json
    assert spans(rows) == [("i-1", iso(0), iso(3)), ("i-1", iso(3), iso(5))]
    assert [r["flavor"] for r in rows] == ["m1.small", "m1.large"]
    # The ledger's rule: an OS change updates the open interval in place.
    assert rows[0]["os"] == {"os_type": "linux", "distro": "ubuntu", "version": "24.04"}
    assert rows[1]["os"] == {"os_type": "linux", "distro": "debian", "version": "13"}
    for row in rows:
        assert set(row) >= {"entity_id", "entity_type", "project_id", "start", "end"}
        assert (row["entity_type"], row["project_id"], row["name"]) == ("instance", P1, "web")
        assert row["metadata"] == {}
    assert app.get(f"{prefix}/entity/i-1", headers=H).json == rows
    assert app.head(f"{prefix}/entity/i-1", headers=H).status_int == 200

    events = list(Event.select().order_by(Event.event_time))
    assert [e.event_type for e in events] == [
        "compute.instance.create.end",
        "compute.instance.resize.confirm.end",
        "compute.instance.rebuild.end",
        "compute.instance.delete.end",
    ]
    assert {e.source for e in events} == {"api"}
    assert len({e.message_id for e in events}) == 4


def test_volume_lifecycle_and_volume_types(app: TestApp) -> None:
    app.post_json("/v1/volume_type", {"type_id": "vt-ssd", "type_name": "ssd"}, headers=H)
    create_volume(app, attached_to=["i-1"])
    app.put_json("/v1/volume/v-1/resize", {"size": "20", "date": body_date(2)}, headers=H)
    app.put_json("/v1/volume/v-1/detach", {"date": body_date(3), "attachments": []}, headers=H)
    app.put_json("/v1/volume/v-1/attach", {"date": body_date(4), "attachments": ["i-2"]}, headers=H)
    app.delete_json("/v1/volume/v-1", {"date": body_date(6)}, headers=H, status=202)

    rows = app.get(f"/project/{P1}/volumes", {"start": qs(0), "end": qs(10)}, headers=H).json
    assert spans(rows) == [
        ("v-1", iso(0), iso(2)),
        ("v-1", iso(2), iso(3)),
        ("v-1", iso(3), iso(4)),
        ("v-1", iso(4), iso(6)),
    ]
    assert [(r["size"], r["attached_to"]) for r in rows] == [
        (10, ["i-1"]),
        (20, ["i-1"]),
        (20, []),
        (20, ["i-2"]),
    ]
    assert {(r["volume_type"], r["name"]) for r in rows} == {("ssd", "data")}

    assert app.get("/v1/volume_types", headers=H).json == [
        {"volume_type_id": "vt-ssd", "volume_type_name": "ssd"}
    ]
    assert app.get("/volume_type/vt-ssd", headers=H).json == {
        "volume_type_id": "vt-ssd",
        "volume_type_name": "ssd",
    }
    app.delete("/v1/volume_type/vt-ssd", headers=H, status=202)
    assert app.get("/v1/volume_type/vt-ssd", headers=H, status=404).json == {
        "error": "volume type vt-ssd is unknown"
    }
    app.delete("/v1/volume_type/vt-ssd", headers=H, status=404)
    # Without its name, a volume shows its type id.
    assert app.get("/v1/entity/v-1", headers=H).json[0]["volume_type"] == "vt-ssd"


def test_entities_lists_every_type_overlapping_the_window(app: TestApp) -> None:
    create_instance(app, hours=0)
    create_volume(app, hours=5)
    both = app.get(f"/v1/project/{P1}/entities", {"start": qs(0)}, headers=H).json
    assert [(r["entity_id"], r["entity_type"]) for r in both] == [
        ("i-1", "instance"),
        ("v-1", "volume"),
    ]
    before = app.get(f"/v1/project/{P1}/entities", {"start": qs(0), "end": qs(4)}, headers=H)
    assert [r["entity_id"] for r in before.json] == ["i-1"]
    assert app.get("/v1/project/other/entities", {"start": qs(0)}, headers=H).json == []


@pytest.mark.parametrize(
    "start",
    [
        "2026-09-30 00:00:00.000000",  # Almanach's query-string format
        "2026-09-30T00:00:00Z",
        "2026-09-30T02:00:00+02:00",
        "2026-09-30",
        "2026-09-30 00:00",
    ],
)
def test_dates_in_every_accepted_form(app: TestApp, start: str) -> None:
    create_instance(app)
    rows = app.get(f"/v1/project/{P1}/instances", {"start": start}, headers=H).json
    assert spans(rows) == [("i-1", iso(0), None)]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({}, "start is required"),
        ({"start": "yesterday"}, "start is not a date: 'yesterday'"),
        ({"start": "2026-02-30"}, "start is not a valid date between 1900 and 9998"),
        ({"start": "0001-01-01T00:00:00+01:00"}, "start is not a date"),
        ({"start": qs(0), "end": "2026-13-01"}, "end is not a date"),
        ({"start": qs(5), "end": qs(1)}, "end must be after start"),
    ],
)
def test_bad_query_dates_are_400(app: TestApp, query: dict[str, str], error: str) -> None:
    response = app.get(f"/v1/project/{P1}/instances", query, headers=H, status=400)
    assert response.content_type == "application/json"
    assert response.json["error"].startswith(error)


CREATE = f"/v1/project/{P1}/instance"
GOOD = {"id": "i-9", "created_at": body_date(0), "name": "x", "flavor": "m1.small"}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "request body is not valid JSON"),
        (b"", "request body is missing: expected a JSON object"),
        (b"[1, 2]", "request body is JSON array, not an object"),
        (b'{"id": NaN}', "request body is not valid JSON: NaN is not a JSON number"),
        (b"[" * 100_000, "request body is not valid JSON: nested too deeply"),
        (b"\xff\xfe\x00", "request body is not valid JSON"),
        ({**GOOD, "colour": "red"}, "unknown field colour"),
        ({k: v for k, v in GOOD.items() if k != "flavor"}, "flavor is required"),
        ({**GOOD, "id": 12}, "id must be a string, not number"),
        ({**GOOD, "id": None}, "id must not be null"),
        ({**GOOD, "id": ""}, "id is empty"),
        ({**GOOD, "id": "a" * 256}, "id is longer than 255 characters"),
        ({**GOOD, "id": "a/b"}, "id contains a control character or a slash"),
        ({**GOOD, "name": "nul\x00"}, "name contains a NUL character"),
        ({**GOOD, "name": "\ud800"}, "name is not valid Unicode text"),
        ({**GOOD, "flavor": ["m1"]}, "flavor must be a string, not array"),
        ({**GOOD, "created_at": "31/12/2026"}, "created_at is not a date"),
        ({**GOOD, "created_at": 1700000000}, "created_at must be a date string, not number"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(app: TestApp, body: Any, error: str) -> None:
    if isinstance(body, bytes):
        response = app.post(
            CREATE, body, headers={**H, "Content-Type": "application/json"}, status=400
        )
    else:
        raw = json.dumps(body).encode()
        response = app.post(
            CREATE, raw, headers={**H, "Content-Type": "application/json"}, status=400
        )
    assert response.content_type == "application/json"
    assert response.json["error"].startswith(error), response.json
    assert Event.select().count() == 0


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/v1/volume/v-1/resize", {"size": -1, "date": body_date(1)}, "size must be between"),
        ("/v1/volume/v-1/resize", {"size": True, "date": body_date(1)}, "size must be a whole"),
        ("/v1/volume/v-1/resize", {"size": 1.5, "date": body_date(1)}, "size must be a whole"),
        ("/v1/volume/v-1/attach", {"date": body_date(1), "attachments": "i-1"}, "attachments"),
        ("/v1/volume/v-1/attach", {"date": body_date(1), "attachments": [1]}, "attachments[0]"),
        ("/v1/volume/v-1/detach", {"date": body_date(1)}, "attachments is required"),
        ("/v1/entity/instance/i-1", {"os": {"distro": "x"}}, "os.os_type is required"),
        (
            "/v1/entity/instance/i-1",
            {"os": {**dict.fromkeys(("os_type", "distro", "version"), "x"), "arch": "x"}},
            "unknown field os.arch",
        ),
        ("/v1/entity/instance/i-1", {"metadata": {"k": 1}}, "metadata.k must be a string"),
    ],
)
def test_bad_update_bodies(app: TestApp, path: str, body: Any, error: str) -> None:
    create_instance(app)
    create_volume(app)
    response = app.put_json(path, body, headers=H, status=400)
    assert response.json["error"].startswith(error), response.json


def test_writes_about_unknown_ids_are_404(app: TestApp) -> None:
    create_volume(app, volume_id="v-1")
    date = {"date": body_date(1)}
    cases = [
        ("DELETE", "/v1/instance/nope", date),
        ("PUT", "/v1/instance/nope/resize", {**date, "flavor": "m1.large"}),
        ("PUT", "/instance/nope/rebuild", {"rebuild_date": body_date(1), "distro": None,
                                           "version": None, "os_type": None}),
        ("PUT", "/v1/entity/instance/nope", {"name": "x"}),
        ("DELETE", "/v1/volume/nope", date),
        ("PUT", "/v1/volume/nope/resize", {**date, "size": 1}),
        ("PUT", "/v1/volume/nope/attach", {**date, "attachments": []}),
        ("PUT", "/volume/nope/detach", {**date, "attachments": []}),
        ("DELETE", "/v1/instance/v-1", date),  # a volume is not an instance
    ]  # fmt: skip
    for method, path, body in cases:
        response = app.request(
            path,
            method=method,
            body=json.dumps(body).encode(),
            headers={**H, "Content-Type": "application/json"},
            expect_errors=True,
        )
        assert response.status_int == 404, (method, path, response.body)
        assert "is not in the ledger" in response.json["error"]
    assert app.get("/v1/entity/nope", headers=H, status=404).json == {
        "error": "entity nope is not in the ledger"
    }
    app.head("/v1/entity/nope", headers=H, status=404)
    app.get("/v1/volume_type/nope", headers=H, status=404)
    assert Event.select().count() == 1


def test_an_id_of_another_resource_type_is_refused(app: TestApp) -> None:
    create_instance(app, instance_id="shared")
    response = app.post_json(
        f"/v1/project/{P1}/volume",
        {"volume_id": "shared", "start": body_date(1), "volume_type": None, "size": 1},
        headers=H,
        status=400,
    )
    assert response.json == {"error": "entity shared is a instance in the ledger, not a volume"}


def test_update_of_the_open_interval(app: TestApp) -> None:
    create_instance(app)
    app.put_json("/v1/instance/i-1/resize", {"date": body_date(3), "flavor": "m1.large"}, headers=H)
    # Name and OS change the open interval in place (at NOW, the clock, by default).
    os = {"os_type": "linux", "distro": "alma", "version": "9"}
    row = app.put_json("/v1/entity/instance/i-1", {"name": "renamed", "os": os}, headers=H).json
    assert (row["start"], row["end"], row["name"], row["flavor"], row["os"]) == (
        iso(3),
        None,
        "renamed",
        "m1.large",
        os,
    )
    # A flavor splits it, from start_date on.
    change = {"flavor": "m1.xlarge", "start_date": body_date(4)}
    row = app.put_json("/v1/entity/instance/i-1", change, headers=H).json
    assert (row["start"], row["name"], row["flavor"]) == (iso(4), "renamed", "m1.xlarge")
    rows = app.get("/v1/entity/i-1", headers=H).json
    assert [(r["start"], r["flavor"], r["name"]) for r in rows] == [
        (iso(0), "m1.small", "web"),
        (iso(3), "m1.large", "web"),
        (iso(4), "m1.xlarge", "renamed"),
    ]
    assert app.put_json("/v1/entity/instance/i-1", {}, headers=H).json == rows[-1]

    # Almanach's edit of a closed interval corrects exactly that one, and survives a refold.
    window = "start=2026-10-01%2000:00:00.000000&end=2026-10-01%2003:00:00.0"
    fixed = app.put_json(
        f"/v1/entity/instance/i-1?{window}",
        {
            "name": "fixed",
            "flavor": "m1.medium",
            "os": {"os_type": "linux", "distro": "alma", "version": "9"},
        },
        headers=H,
    ).json
    assert (fixed["start"], fixed["end"], fixed["name"], fixed["flavor"]) == (
        iso(0),
        iso(3),
        "fixed",
        "m1.medium",
    )
    assert fixed["os"] == {"os_type": "linux", "distro": "alma", "version": "9"}
    assert [(r["flavor"], r["name"]) for r in app.get("/v1/entity/i-1", headers=H).json] == [
        ("m1.medium", "fixed"),
        ("m1.large", "web"),
        ("m1.xlarge", "renamed"),
    ]
    assert Event.select().where(Event.event_type == "rintik.instance.correct").count() == 1
    assert services.rebuild_ledger() == 1
    assert app.get("/v1/entity/i-1", headers=H).json[0]["name"] == "fixed"
    missing = app.put_json(
        "/v1/entity/instance/i-1?start=2026-10-01%2000:00:00&end=2026-10-01%2002:00:00",
        {"name": "x"},
        headers=H,
        status=404,
    )
    assert missing.json == {
        "error": "instance i-1 has no closed interval from "
        "2026-10-01T00:00:00Z to 2026-10-01T02:00:00Z"
    }
    half = app.put_json(
        "/v1/entity/instance/i-1?start=2026-10-01", {"name": "x"}, headers=H, status=400
    )
    assert half.json["error"] == "start and end go together: the closed interval to correct"
    ended = app.put_json(
        "/v1/entity/instance/i-1", {"end_date": body_date(9)}, headers=H, status=400
    )
    assert ended.json["error"].startswith("end_date: an open interval ends")

    app.delete_json("/v1/instance/i-1", {"date": body_date(5)}, headers=H, status=202)
    gone = app.put_json("/v1/entity/instance/i-1", {"name": "y"}, headers=H, status=404)
    assert gone.json == {"error": "instance i-1 has no open interval"}


def test_api_and_bus_events_fold_together(app: TestApp) -> None:
    """A bus create and an API resize of the same instance give one ledger."""
    payload = {
        "instance_id": "i-1",
        "tenant_id": P1,
        "display_name": "web",
        "instance_type": "m1.small",
        "state": "active",
        "launched_at": qs(0),
    }
    record(notification("compute.instance.create.end", payload, qs(0)))
    app.put_json("/v1/instance/i-1/resize", {"date": body_date(2), "flavor": "m1.large"}, headers=H)
    rows = app.get("/v1/entity/i-1", headers=H).json
    assert spans(rows) == [("i-1", iso(0), iso(2)), ("i-1", iso(2), None)]
    assert [e.source for e in Event.select().order_by(Event.event_time)] == ["amqp", "api"]


# --- limits, errors, auth ------------------------------------------------------------------


def wsgi_call(
    app: bottle.Bottle, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[str, dict[str, str], bytes]:
    """Call the WSGI app with a hand-made environ (for bodies webtest will not send)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_LENGTH", "CONTENT_TYPE") else f"HTTP_{key}"] = value
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    out = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], out


def test_request_bodies_over_the_limit_are_413(db_url: str) -> None:
    app = make_app(db_url, api__max_body_bytes=1000)
    big = json.dumps({**GOOD, "name": "x" * 2000}).encode()
    response = app.post(CREATE, big, headers={**H, "Content-Type": "application/json"}, status=413)
    assert response.json == {"error": "request body is larger than 1000 bytes"}
    # Declared too large: refused before anything reads it, on any route.
    status, _, out = wsgi_call(app.app, "GET", "/info", b"", {"Content-Length": "5000"})
    assert (status, json.loads(out)) == (
        "413 Request Entity Too Large",
        {"error": "request body is larger than 1000 bytes"},
    )
    # Chunked (no Content-Length): counted while read.
    chunked = {**H, "Transfer-Encoding": "chunked"}
    status, _, out = wsgi_call(app.app, "POST", CREATE, big, chunked)
    assert status.startswith("413") and json.loads(out)["error"].startswith(
        "request body is larger"
    )
    small = json.dumps(GOOD).encode()
    status, _, out = wsgi_call(app.app, "POST", CREATE, small, chunked)
    assert status == "201 Created", out
    status, _, out = wsgi_call(app.app, "POST", CREATE, small, {**H, "Content-Length": "x1"})
    assert (status, json.loads(out)) == (
        "400 Bad Request",
        {"error": "Content-Length is not a number"},
    )


PUBLIC = {"/info", "/v1/info", "/healthz", "/openapi.json"}


def test_every_route_but_the_public_ones_needs_a_token(app: TestApp) -> None:
    routes = app.app.routes
    assert len(routes) > 40
    for route in routes:
        path = route.rule.replace("<", "").replace(">", "")  # <project_id> -> project_id
        for headers in ({}, {"X-Auth-Token": "wrong"}, {"X-Auth-Token": TOKEN[:-1]}):
            response = app.request(path, method=route.method, headers=headers, expect_errors=True)
            if route.rule in PUBLIC:
                assert response.status_int == 200, route.rule
            else:
                assert response.status_int == 401, (route.method, route.rule)
                if route.method != "HEAD":
                    assert response.json == {"error": "missing or invalid X-Auth-Token header"}
    assert app.get("/v1/volume_types", headers=H).status_int == 200


def test_an_unexpected_error_is_a_json_500_without_traceback(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(db_url)

    def broken() -> str:
        raise RuntimeError("secret internals")

    app.app.route("/v1/broken", "GET", broken)
    with caplog.at_level(logging.ERROR):
        response = app.get("/v1/broken", headers=H, status=500)
    assert response.json == {"error": "internal server error; the cause is in the server log"}
    assert b"secret internals" not in response.body and b"Traceback" not in response.body
    assert "secret internals" in caplog.text and "Traceback" in caplog.text


def test_info_and_healthz(db_url: str) -> None:
    app = make_app(db_url)
    create_instance(app)
    create_volume(app)
    app.delete_json("/v1/volume/v-1", {"date": body_date(1)}, headers=H, status=202)
    info = app.get("/v1/info").json
    assert info["database"] == {"all_entities": 2, "active_entities": 1}
    assert app.get("/info").json == info
    assert app.get("/healthz").json == {
        "healthy": True,
        "database": {"writable": True, "error": None},
    }

    def unhealthy() -> dict[str, Any]:
        return {"healthy": False, "threads": {"collector": False}, "last_event_seconds": 9}

    def failing() -> dict[str, Any]:
        raise ConnectionError("broker gone")

    settings = settings_for(db_url, auth__private_key=TOKEN)
    sick = TestApp(create_app(settings, health=unhealthy))
    assert sick.get("/healthz", status=503).json == unhealthy()
    broken = TestApp(create_app(settings, health=failing))
    assert broken.get("/healthz", status=503).json == {
        "healthy": False,
        "error": "ConnectionError: broker gone",
    }


def test_openapi_describes_exactly_the_routes(app: TestApp) -> None:
    document = app.get("/openapi.json").json
    assert document == openapi_document()
    described = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    routed = {(r.method, openapi_path(r.rule)) for r in app.app.routes}
    assert described == routed
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


# --- the extra queries ---------------------------------------------------------------------


def test_projects_with_active_counts_and_names(app: TestApp) -> None:
    create_instance(app, instance_id="i-1")
    create_instance(app, instance_id="i-2")
    create_volume(app)
    app.delete_json("/v1/instance/i-2", {"date": body_date(1)}, headers=H, status=202)
    Project.create(project_id=P1, name="acme", updated_at=NOW)
    Project.create(project_id="p-empty", updated_at=NOW)
    projects = app.get("/v1/projects", headers=H).json
    assert projects == [
        {
            "project_id": P1,
            "project_name": "acme",
            "active": {
                "instance": 1,
                "volume": 1,
                "snapshot": 0,
                "image": 0,
                "floating_ip": 0,
                "router": 0,
            },
            "active_total": 2,
        },
        {
            "project_id": "p-empty",
            "project_name": None,
            "active": dict.fromkeys(
                ("instance", "volume", "snapshot", "image", "floating_ip", "router"), 0
            ),
            "active_total": 0,
        },
    ]
    app.get("/projects", headers=H, status=404)  # rintik-lite's own queries live under /v1


def test_entity_history(app: TestApp) -> None:
    create_instance(app)
    app.put_json("/v1/instance/i-1/resize", {"date": body_date(3), "flavor": "m1.large"}, headers=H)
    history = app.get("/v1/entity/i-1/history", headers=H).json
    assert (history["entity_type"], history["project_id"], history["deleted"]) == (
        "instance",
        P1,
        False,
    )
    assert spans(history["intervals"]) == [("i-1", iso(0), iso(3)), ("i-1", iso(3), None)]
    events = [
        (e["event_type"], e["event_time"], e["source"], e["action"]) for e in history["events"]
    ]
    assert events == [
        ("compute.instance.create.end", iso(0), "api", "exists"),
        ("compute.instance.resize.confirm.end", iso(3), "api", "exists"),
    ]
    assert app.get("/v1/entity/nope/history", headers=H, status=404).json == {
        "error": "entity nope is not in the ledger"
    }


def test_usage_summary(app: TestApp) -> None:
    create_instance(app, hours=0)  # open: counts up to NOW, never past it
    create_volume(app, hours=0)  # 10 GB
    app.put_json("/v1/volume/v-1/resize", {"size": 20, "date": body_date(10)}, headers=H)
    app.delete_json("/v1/volume/v-1", {"date": body_date(20)}, headers=H, status=202)

    window = {"start": qs(5), "end": qs(15)}
    usage = app.get("/v1/usage", window, headers=H).json
    assert (usage["start"], usage["end"]) == (iso(5), iso(15))
    lines = {line["entity_type"]: line for line in usage["lines"]}
    assert lines["instance"] == {
        "project_id": P1,
        "project_name": None,
        "entity_type": "instance",
        "entities": 1,
        "intervals": 1,
        "seconds": 36000.0,
        "hours": 10.0,
        "gb_hours": None,
    }
    assert (lines["volume"]["intervals"], lines["volume"]["hours"]) == (2, 10.0)
    assert lines["volume"]["gb_hours"] == 5 * 10 + 5 * 20

    everything = app.get("/v1/usage", {"start": qs(0), "project_id": P1}, headers=H).json
    hours_to_now = (NOW - T0).total_seconds() / 3600
    instance = next(line for line in everything["lines"] if line["entity_type"] == "instance")
    assert instance["hours"] == round(hours_to_now, 6)
    assert (
        app.get("/v1/usage", {"start": qs(0), "project_id": "other"}, headers=H).json["lines"] == []
    )
    app.get("/v1/usage", {"start": qs(5), "end": qs(5)}, headers=H, status=400)


def test_whitelisted_metadata_is_kept_through_the_api(db_url: str) -> None:
    app = make_app(db_url, ledger__metadata_whitelist=["billing_code"])
    create_instance(app)
    app.put_json(
        "/v1/entity/instance/i-1",
        {"metadata": {"billing_code": "cc-43", "other": "y"}, "start_date": body_date(2)},
        headers=H,
        status=200,
    )
    rows = app.get(f"/v1/project/{P1}/instances", {"start": qs(-1)}, headers=H).json
    assert [r["metadata"] for r in rows] == [{"billing_code": "cc-43"}]
