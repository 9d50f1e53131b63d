"""The server threads' database connections: each thread keeps its own open from one request
to the next, reconnects after losing it, and follows the database when it is rebound."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest
from playhouse.db_url import connect

from rintik_lite.api import API_CACHE_KIB, create_app
from rintik_lite.api.server import ApiServer, threads_for
from rintik_lite.db import close_database, database, open_database
from tests.conftest import NOW, POSTGRES_URL, notification, record, settings_for

TOKEN = "connections-token-7e1d"


def serve(url: str, threads: int = 1) -> ApiServer:
    settings = settings_for(url, auth__private_key=TOKEN)
    api = ApiServer(create_app(settings, clock=lambda: NOW), "127.0.0.1", 0, threads=threads)
    api.start()
    return api


def get(api: ApiServer, path: str) -> tuple[int, Any]:
    host, port = api.address
    client = http.client.HTTPConnection(host, port, timeout=10)
    try:
        client.request("GET", path, headers={"X-Auth-Token": TOKEN})
        response = client.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        client.close()


def create(project_id: str, instance_id: str) -> None:
    payload = {
        "instance_id": instance_id,
        "tenant_id": project_id,
        "display_name": instance_id,
        "instance_type": "m1.small",
        "state": "active",
        "created_at": "2026-11-02T00:00:00Z",
        "launched_at": "2026-11-02T00:00:00Z",
    }
    record(notification("compute.instance.create.end", payload, "2026-11-02T00:00:00Z"))


def entities(project_id: str) -> str:
    return f"/v1/project/{project_id}/entities?start=2026-11-01T00:00:00Z"


@pytest.fixture
def counted_connects() -> Iterator[Callable[[], int]]:
    """How many connections the bound database has opened since."""
    made: list[int] = []
    db = database.obj
    original = db._connect

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return original(*args, **kwargs)

    db._connect = counting
    yield lambda: len(made)
    del db._connect


def test_a_server_thread_keeps_a_small_sqlite_page_cache(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rintik.db'}"
    open_database(url)
    opened: list[Any] = []
    original = database.obj._connect

    def recording(*args: Any, **kwargs: Any) -> Any:
        opened.append(original(*args, **kwargs))
        return opened[-1]

    database.obj._connect = recording
    api = serve(url)
    try:
        assert get(api, entities("p-1")) == (200, [])
        assert get(api, entities("p-1")) == (200, [])
    finally:
        api.stop()
        del database.obj._connect
        close_database()
    [worker] = opened  # the fixture's connection was open already
    assert worker.execute("PRAGMA cache_size").fetchone()[0] == -API_CACHE_KIB
    worker.close()


def test_a_server_thread_keeps_its_connection_between_requests(
    db_url: str, counted_connects: Callable[[], int]
) -> None:
    create("p-1", "i-1")
    api = serve(db_url)
    try:
        for _ in range(5):
            status, body = get(api, entities("p-1"))
            assert (status, [e["entity_id"] for e in body]) == (200, ["i-1"])
        assert get(api, "/healthz")[0] == 200
    finally:
        api.stop()
    assert counted_connects() == 1  # one worker thread, one connection


def end_sessions_that_read(admin: Any, project: str) -> list[tuple[Any, ...]]:
    """End, from the server's side, every PostgreSQL session whose last query named
    `project` (as a restart or an idle-session timeout would)."""
    return list(
        admin.execute_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND query LIKE %s",
            (f"%{project}%",),
        ).fetchall()
    )


def test_a_read_survives_its_postgresql_session_being_killed(tmp_path: Path) -> None:
    from tests.conftest import reset_postgres

    url = reset_postgres()
    open_database(url)
    project = f"p-{uuid.uuid4().hex}"
    create(project, "i-1")
    api = serve(url)
    admin = connect(POSTGRES_URL)
    try:
        assert get(api, entities(project))[0] == 200
        # The worker's session ran the entities query last: end it from the server's side,
        # as a PostgreSQL restart or an idle-session timeout would.
        killed = end_sessions_that_read(admin, project)
        assert killed == [(True,)]
        status, body = get(api, entities(project))
        assert (status, [e["entity_id"] for e in body]) == (200, ["i-1"])
        assert get(api, entities(project))[0] == 200
    finally:
        api.stop()
        admin.close()
        close_database()


def test_a_write_on_a_lost_connection_is_a_503_and_the_next_request_reconnects(
    tmp_path: Path,
) -> None:
    from tests.conftest import reset_postgres

    url = reset_postgres()
    open_database(url)
    project = f"p-{uuid.uuid4().hex}"
    create(project, "i-1")
    api = serve(url)
    admin = connect(POSTGRES_URL)
    host, port = api.address
    try:
        assert get(api, entities(project))[0] == 200
        end_sessions_that_read(admin, project)
        client = http.client.HTTPConnection(host, port, timeout=10)
        body = json.dumps({"type_id": "vt-1", "type_name": "ssd"})
        client.request(
            "POST",
            "/v1/volume_type",
            body=body,
            headers={"X-Auth-Token": TOKEN, "Content-Type": "application/json"},
        )
        response = client.getresponse()
        answer = json.loads(response.read())
        client.close()
        assert (response.status, answer) == (
            503,
            {"error": "the database cannot be reached or is busy"},
        )  # not retried: it might have been applied
        assert get(api, "/v1/volume_types")[0] == 200
    finally:
        api.stop()
        admin.close()
        close_database()


def test_a_rebound_database_is_the_one_the_server_threads_read(tmp_path: Path) -> None:
    first, second = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    open_database(first)
    create("p-1", "i-a")
    close_database()
    open_database(second)
    create("p-1", "i-b")
    close_database()

    open_database(first)
    api = serve(first)
    try:
        assert [e["entity_id"] for e in get(api, entities("p-1"))[1]] == ["i-a"]
        close_database()
        open_database(second)  # as a test, or the TUI, rebinding `database`
        assert [e["entity_id"] for e in get(api, entities("p-1"))[1]] == ["i-b"]
    finally:
        api.stop()
        close_database()


def test_database_errors_still_answer_503_with_a_json_body(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rintik.db'}"
    open_database(url)
    api = serve(url)
    try:
        assert get(api, entities("p-1")) == (200, [])
        database.execute_sql('DROP TABLE "interval"')  # every read of it now fails
        assert get(api, entities("p-1")) == (
            503,
            {"error": "the database cannot be reached or is busy"},
        )
    finally:
        api.stop()
        close_database()


def test_an_unreachable_postgresql_is_a_503() -> None:
    # Nothing listens on port 9: connecting fails in the server thread itself.
    database.initialize(peewee.PostgresqlDatabase("test", host="127.0.0.1", port=9))
    api = serve("postgresql://postgres@127.0.0.1:9/test")
    try:
        status, body = get(api, entities("p-1"))
        assert (status, body) == (503, {"error": "the database cannot be reached or is busy"})
        # Routes that need no database, or report it down, do not fail on connecting.
        assert get(api, "/openapi.json")[0] == 200
        status, health = get(api, "/healthz")
        assert (status, health["healthy"]) == (503, False)
        assert "OperationalError" in health["error"]
    finally:
        api.stop()
        close_database()


def test_the_default_single_worker_serves_clients_that_keep_their_connections_open(
    db_url: str,
) -> None:
    """On SQLite `api.threads` gives one worker by default (server.py says why): a client
    that keeps its connection open between requests must not hold it. cheroot hands an
    idle keep-alive connection back to its selector; were the worker to wait on it
    instead, the fresh client below would wait the server's 10 s timeout and fail its 3 s
    one. (On PostgreSQL the same default gives 8 workers: the test holds for both.)"""
    create("p-1", "i-1")
    settings = settings_for(db_url, auth__private_key=TOKEN)
    api = ApiServer.from_settings(
        settings.replace(api__host="127.0.0.1", api__port=0),
        create_app(settings, clock=lambda: NOW),
    )
    assert api.threads == (1 if db_url.startswith("sqlite") else 8)
    api.start()
    host, port = api.address
    idle = [http.client.HTTPConnection(host, port, timeout=3) for _ in range(3)]
    try:
        for client in idle:  # a request on each, then the connection left open, idle
            client.request("GET", entities("p-1"), headers={"X-Auth-Token": TOKEN})
            response = client.getresponse()
            assert response.status == 200 and response.getheader("Connection") != "close"
            assert [e["entity_id"] for e in json.loads(response.read())] == ["i-1"]
        fresh = http.client.HTTPConnection(host, port, timeout=3)
        fresh.request("GET", "/healthz")
        assert fresh.getresponse().status == 200
        fresh.close()
        for client in reversed(idle):  # and each kept connection still answers
            client.request("GET", entities("p-1"), headers={"X-Auth-Token": TOKEN})
            response = client.getresponse()
            assert response.status == 200
            response.read()
    finally:
        for client in idle:
            client.close()
        api.stop()


@pytest.mark.parametrize(
    ("url", "asked", "threads"),
    [
        ("sqlite:///rintik.db", 0, 1),
        ("postgresql://rintik@127.0.0.1/rintik", 0, 8),
        ("sqlite:///rintik.db", 3, 3),
        ("postgresql://rintik@127.0.0.1/rintik", 2, 2),
    ],
)
def test_the_worker_threads_default_by_database_and_follow_the_setting(
    url: str, asked: int, threads: int
) -> None:
    settings = settings_for(url, api__threads=asked)
    assert threads_for(settings) == threads
    assert ApiServer.from_settings(settings, create_app(settings)).threads == threads
