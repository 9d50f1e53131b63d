"""The published Almanach client (python-almanachclient, unchanged) against a live server
on 127.0.0.1, and the server's start / stop."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from almanachclient.exceptions import HTTPError
from almanachclient.v1.client import Client

from rintik_lite.api import create_app
from rintik_lite.api.server import ApiServer
from rintik_lite.errors import SettingsError
from tests.conftest import NOW, settings_for

TOKEN = "client-token-51b7"
P1 = "7c150a59fe714e6f9263774af9688f0e"
T0 = datetime(2026, 10, 1)  # naive, as an Almanach user passes dates: UTC here


@pytest.fixture
def server(db_url: str) -> Iterator[ApiServer]:
    settings = settings_for(db_url, auth__private_key=TOKEN, api__max_body_bytes=4096)
    api = ApiServer(create_app(settings, clock=lambda: NOW), "127.0.0.1", 0, threads=4)
    api.start()
    yield api
    api.stop()


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def iso(hours: float) -> str:
    return at(hours).replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_almanach_client_round_trip(server: ApiServer) -> None:
    client = Client(server.url, TOKEN)
    assert client.get_info()["database"] == {"all_entities": 0, "active_entities": 0}

    assert client.create_volume_type("vt-ssd", "ssd") is True
    assert client.get_volume_types() == [{"volume_type_id": "vt-ssd", "volume_type_name": "ssd"}]
    assert client.get_volume_type("vt-ssd")["volume_type_name"] == "ssd"

    image = {"distro": "ubuntu", "version": "24.04", "type": "linux"}
    client.create_instance(P1, "i-1", "web", "m1.small", at(0), image)
    client.create_instance(P1, "i-2", "db", "m1.small", at(0))  # no image: os fields are null
    client.resize_instance("i-1", "m1.large", at(2))
    entity = client.update_instance_entity("i-1", name="web-renamed")
    assert (entity["entity_id"], entity["name"], entity["flavor"]) == (
        "i-1",
        "web-renamed",
        "m1.large",
    )
    client.delete_instance("i-2", at(3))

    client.create_volume(P1, "v-1", "vt-ssd", "data", 10, ["i-1"], at(0))
    client.resize_volume("v-1", 20, at(1))
    client.detach_volume("v-1", [], at(2))
    client.attach_volume("v-1", ["i-1"], at(3))
    client.delete_volume("v-1", at(4))

    instances = client.get_instances(P1, at(0), at(10))
    assert [(r["entity_id"], r["start"], r["end"], r["flavor"]) for r in instances] == [
        ("i-1", iso(0), iso(2), "m1.small"),
        ("i-2", iso(0), iso(3), "m1.small"),
        ("i-1", iso(2), None, "m1.large"),
    ]
    assert instances[0]["os"] == {"os_type": "linux", "distro": "ubuntu", "version": "24.04"}
    assert instances[1]["os"] == {"os_type": None, "distro": None, "version": None}
    volumes = client.get_volumes(P1, at(0), at(10))
    assert [(r["size"], r["attached_to"]) for r in volumes] == [
        (10, ["i-1"]),
        (20, ["i-1"]),
        (20, []),
        (20, ["i-1"]),
    ]
    assert {r["volume_type"] for r in volumes} == {"ssd"}
    assert volumes[-1]["end"] == iso(4)
    assert [r["entity_type"] for r in client.get_tenant_entities(P1, at(0))] == [
        "instance",
        "instance",
        "volume",
        "volume",
        "instance",
        "volume",
        "volume",
    ]
    assert [r["end"] for r in client.get_entity("i-2")] == [iso(3)]
    assert client.get_info()["database"] == {"all_entities": 3, "active_entities": 1}

    assert client.delete_volume_type("vt-ssd") is True
    with pytest.raises(HTTPError, match=r"volume type vt-ssd is unknown \(404\)"):
        client.get_volume_type("vt-ssd")
    with pytest.raises(HTTPError, match=r"instance nope is not in the ledger \(404\)"):
        client.delete_instance("nope", at(1))


@pytest.mark.parametrize("token", [None, "wrong"])
def test_client_without_a_valid_token_gets_401(server: ApiServer, token: str | None) -> None:
    with pytest.raises(HTTPError, match=r"missing or invalid X-Auth-Token header \(401\)"):
        Client(server.url, token).get_volume_types()
    assert Client(server.url, token).get_info()["info"]["version"]  # /info is public


def request(
    server: ApiServer,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> tuple[int, bytes]:
    host, port = server.address
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_body_limit_on_the_wire(server: ApiServer) -> None:
    headers = {"X-Auth-Token": TOKEN, "Content-Type": "application/json"}
    path = f"/v1/project/{P1}/instance"
    big = json.dumps({"id": "i-1", "name": "x" * 5000}).encode()
    assert request(server, "POST", path, big, headers) == (
        413,
        b'{"error":"request body is larger than 4096 bytes"}',
    )
    status, body = request(server, "POST", path, iter([big]), headers, chunked=True)
    assert (status, json.loads(body)) == (413, {"error": "request body is larger than 4096 bytes"})
    small = {"id": "i-1", "created_at": "2026-10-01T00:00:00Z", "name": "x", "flavor": "m1"}
    status, body = request(server, "POST", path, iter([json.dumps(small).encode()]), headers, True)
    assert (status, body) == (201, b"")


def test_stop_is_quick_and_idempotent_with_an_idle_keepalive_connection(db_url: str) -> None:
    settings = settings_for(db_url, auth__private_key=TOKEN)
    api = ApiServer(create_app(settings), "127.0.0.1", 0, threads=2)
    api.stop()  # before start: nothing to do
    api = ApiServer(create_app(settings), "127.0.0.1", 0, threads=2)
    api.start()
    api.start()  # a second start does nothing
    host, port = api.address
    keepalive = http.client.HTTPConnection(host, port, timeout=5)
    keepalive.request("GET", "/info")
    assert keepalive.getresponse().read()  # the connection stays open, idle
    began = time.monotonic()
    api.stop()
    assert time.monotonic() - began < 3
    assert not api.alive()
    api.stop()
    with pytest.raises(OSError), socket.create_connection((host, port), timeout=1):
        pass
    keepalive.close()


def test_a_busy_port_is_a_clear_error(db_url: str) -> None:
    app = create_app(settings_for(db_url, auth__private_key=TOKEN))
    first = ApiServer(app, "127.0.0.1", 0)
    first.start()
    try:
        second = ApiServer(app, "127.0.0.1", first.address[1])
        with pytest.raises(SettingsError, match=r"the API cannot listen on 127\.0\.0\.1:"):
            second.start()
    finally:
        first.stop()
