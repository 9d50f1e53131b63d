"""Security: which routes are public, secrets kept out of logs, errors and /metrics, SQL
injection strings through every string parameter of the API and the CLI, files 0600.

(Every route answering 401 without a token: tests/api/test_almanach.py
::test_every_route_but_the_public_ones_needs_a_token; constant-time comparison and Keystone
tokens: tests/api/test_auth.py and tests/api/test_keystone.py.)
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from webtest import TestApp

from rintik_lite import services
from rintik_lite.api import create_app, operations
from rintik_lite.api.openapi import path_parameters
from rintik_lite.cli import app as cli_app
from rintik_lite.db import close_database, database, open_database
from rintik_lite.models import Entity, Event, Interval, Quarantine
from tests.conftest import ROOT, Broker, record, settings_for
from tests.faults.harness import (
    RunProcess,
    close_from_the_broker,
    free_port,
    wait_for,
    write_config,
)
from tests.test_services import P1, instance, volume

TOKEN = "t0ken-9f1c2a"
H = {"X-Auth-Token": TOKEN}
PUBLIC = {"/info", "/healthz", "/openapi.json"}


def test_only_info_healthz_and_openapi_are_public(sqlite_url: str) -> None:
    assert {op.rule for op in operations() if op.public} == PUBLIC
    app = create_app(settings_for(sqlite_url, auth__private_key=TOKEN))
    public = {r.rule for r in app.routes if r.config.get("public")}
    assert public == {"/info", "/v1/info", "/healthz", "/openapi.json"}


# --- secrets ---------------------------------------------------------------------------------

BROKER_PASSWORD = "Br0ker-pw-6d0e4c"
PRIVATE_KEY = "Pr1vate-key-77ab31"
KEYSTONE_PASSWORD = "K3ystone-pw-0c5d9e"
SECRETS = (BROKER_PASSWORD, PRIVATE_KEY, KEYSTONE_PASSWORD)


def _http(port: int, method: str, path: str, token: str | None, body: bytes | None = None) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        method=method,
        headers={"X-Auth-Token": token, "Content-Type": "application/json"} if token else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return f"{response.status} {response.headers} {response.read().decode()}"
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {exc.headers} {exc.read().decode()}"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, check=True, timeout=60)


@pytest.fixture
def broker_user() -> Iterator[str]:
    """A RabbitMQ user of this test's own, with BROKER_PASSWORD; deleted after."""
    name = f"rintik-test-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_user", name, BROKER_PASSWORD)
    try:
        _rabbitmqctl("set_permissions", "-p", "/", name, ".*", ".*", ".*")
        yield name
    finally:
        _rabbitmqctl("delete_user", name)


@pytest.mark.slow
def test_no_secret_in_logs_errors_or_metrics(
    tmp_path: Path, broker: Broker, broker_user: str
) -> None:
    """`run` with a broker password, a private key and a Keystone password (Keystone down),
    DEBUG logging: failing requests, then the broker drops us; nothing shows a secret."""
    port = free_port()
    url = f"sqlite:///{tmp_path / 'rintik.db'}"
    own_broker = broker.url.replace("guest:guest@", f"{broker_user}:{BROKER_PASSWORD}@")
    assert BROKER_PASSWORD in own_broker
    sections = {
        "broker": {"url": own_broker, "reconnect_max_seconds": 1.0},
        "auth": {"private_key": PRIVATE_KEY, "strategy": "private_key,keystone"},
        "keystone": {
            "auth_url": f"http://127.0.0.1:{free_port()}/v3",
            "username": "rintik",
            "password": KEYSTONE_PASSWORD,
        },
        "log": {"level": "DEBUG"},
    }
    run = RunProcess(write_config(tmp_path / "rintik.toml", broker, url, port, sections), port)
    replies = []
    try:
        run.start()
        close_from_the_broker(f"rintik-lite collector ({broker.queue})")
        run.wait_for_log("retrying in", 30)  # the broker dropped us
        for method, path, token, body in [
            ("GET", "/healthz", None, None),
            ("GET", "/info", None, None),
            ("GET", "/v1/projects", None, None),
            ("GET", "/v1/projects", "wrong-token", None),  # Keystone asked, unreachable
            ("GET", "/v1/projects", PRIVATE_KEY[:-1], None),
            ("GET", f"/v1/projects?token={PRIVATE_KEY}", None, None),
            ("GET", "/v1/projects", PRIVATE_KEY, None),
            ("POST", f"/v1/project/{P1}/instance", PRIVATE_KEY, b"{not json"),
            ("GET", "/v1/no/such/route", PRIVATE_KEY, None),
            ("GET", "/metrics", None, None),
            ("GET", "/metrics", PRIVATE_KEY, None),
        ]:
            replies.append(_http(port, method, path, token, body))
        wait_for(lambda: run.text.count("consuming") >= 2, 30)  # back
        assert run.terminate() == 0
    finally:
        run.stop_quietly()
    assert replies[3].startswith("503"), replies[3]  # Keystone down
    # A broker that refuses the password: `run` says so in one line, without it.
    refused = own_broker.replace(BROKER_PASSWORD, BROKER_PASSWORD[::-1])
    result = subprocess.run(
        [sys.executable, "-m", "rintik_lite", "run", "--config", str(run.config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RINTIK_BROKER_URL": refused},
        check=False,
    )
    assert result.returncode == 2, result.stderr
    replies.append(result.stderr)
    everything = run.text + "\n".join(replies)
    for secret in SECRETS:
        for form in {secret, secret[::-1], urllib.parse.quote(secret), secret[:10]}:
            assert form not in everything.replace(f"token={PRIVATE_KEY}", ""), form


def test_run_refuses_an_unreachable_database_without_its_password(tmp_path: Path) -> None:
    env = {**os.environ, "RINTIK_DATABASE_URL": "postgresql://u:Db-pw-55e1@127.0.0.1:1/none"}
    result = subprocess.run(
        [sys.executable, "-m", "rintik_lite", "run"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: database ")
    assert "Db-pw-55e1" not in result.stderr + result.stdout


# --- SQL injection ---------------------------------------------------------------------------

INJECTIONS = [
    "' OR 1=1 --",
    "'); DROP TABLE interval; --",
    '" OR ""="',
    "1; SELECT pg_sleep(10); --",
    "\\x00",
    "\x00",
    "ﾟ･✿ヾ(｡◕‿◕｡)✿･ﾟ",
]
VALUE_OF_KIND = {
    "date": "2026-10-02T00:00:00Z",
    "size": 10,
}


def _body_for(spec: Any, text: str) -> dict[str, Any]:
    """A body whose every string field (ids, names, os, metadata, lists) holds `text`."""
    body: dict[str, Any] = {}
    for name, field in spec.items():
        if field.kind in VALUE_OF_KIND:
            body[name] = VALUE_OF_KIND[field.kind]
        elif field.kind == "ids":
            body[name] = [text]
        elif field.kind == "os":
            body[name] = {"os_type": text, "distro": text, "version": text}
        elif field.kind == "metadata":
            body[name] = {text: text}
        else:
            body[name] = text
    return body


def _snapshot() -> dict[str, Any]:
    return {
        "tables": sorted(database.get_tables()),
        "usage": services.usage(P1),
        "events": sorted(e.key for e in Event.select(Event.key)),
        "quarantine": Quarantine.select().count(),
    }


def _requests(text: str) -> list[tuple[str, str, Any]]:
    """(method, path, JSON body or None) putting `text` in each string parameter in turn."""
    quoted = urllib.parse.quote(text, safe="")
    known = {
        "project_id": P1,
        "instance_id": "i-1",
        "volume_id": "v-1",
        "entity_id": "i-1",
        "type_id": "vt-1",
        "kind": "flavor",
        "price_id": "1",
        "invoice_id": "1",
        "key": "tax_percent",
    }
    requests = []
    for op in operations():
        if op.public:
            continue
        rule = "/v1" + op.rule if "/v1" in op.prefixes else op.paths()[0]
        params = path_parameters(op.rule)
        body = _body_for(op.body, text) if op.body else None
        if body is None and op.method in ("POST", "PUT", "PATCH"):
            body = {"name": text, "value": text, "price": text, "key": text}
        for param in params:  # each path parameter in turn
            path = rule
            for other in params:
                read = op.method in ("GET", "HEAD")
                value = quoted if other == param or not read else known.get(other, "x")
                path = path.replace(f"<{other}>", value)
            requests.append((op.method, path, body))
        base = rule  # reads of known rows; writes only ever to the string itself
        for other in params:
            value = known.get(other, "x") if op.method in ("GET", "HEAD") else quoted
            base = base.replace(f"<{other}>", value)
        for name in op.query:  # each query parameter in turn
            requests.append((op.method, f"{base}?{name}={quoted}", body))
        if body is not None:
            requests.append((op.method, base, body))
    return requests


@pytest.mark.parametrize("text", INJECTIONS, ids=range(len(INJECTIONS)))
def test_injection_strings_through_every_api_parameter(db_url: str, text: str) -> None:
    record(instance("create.end", 0), volume("create.end", 1))
    app = TestApp(create_app(settings_for(db_url, auth__private_key=TOKEN)))
    before = _snapshot()
    reads = [r for r in _requests(text) if r[0] in ("GET", "HEAD")]
    writes = [r for r in _requests(text) if r[0] not in ("GET", "HEAD")]
    for method, path, _ in reads:
        response = app.request(path, method=method, headers=H, expect_errors=True)
        assert response.status_int < 500, (method, path, response.text)
    assert _snapshot() == before  # reads changed nothing
    for method, path, body in writes:
        response = app.request(
            path,
            method=method,
            headers={**H, "Content-Type": "application/json"},
            body=json.dumps(body).encode() if body is not None else b"",
            expect_errors=True,
        )
        assert response.status_int < 500, (method, path, body, response.text)
    after = _snapshot()
    assert after["tables"] == before["tables"]
    assert set(before["events"]) <= set(after["events"])
    # The seeded resources are as they were; whatever the writes created holds the string
    # as data (an id, a name), never as SQL.
    kept = [r for r in after["usage"] if r["entity_id"] in ("i-1", "v-1")]
    assert kept == before["usage"]
    created = {e.entity_id for e in Entity.select()} - {"i-1", "v-1"}
    assert created <= {text}
    assert {r.project_id for r in Interval.select()} <= {P1, text}


CLI_COMMANDS = [
    ["usage", "--project", "{}"],
    ["usage", "--project", P1, "--start", "{}"],
    ["invoice", "list", "--project", "{}"],
    ["invoice", "list", "--period", "{}"],
    ["invoice", "show", "{}"],
    ["invoice", "pay", "{}"],
    ["invoice", "unpay", "{}"],
    ["invoice", "close", "--period", "{}", "--dry-run"],
    ["price", "list", "--project", "{}"],
    ["price", "list", "--kind", "{}"],
    ["price", "missing", "--period", "{}"],
    ["price", "set", "flavor", "{}", "--hourly", "1", "--project", "{}", "--currency", "EUR"],
    ["price", "set", "volume", "ssd", "--hourly", "{}"],
    ["price", "set", "{}", "default", "--hourly", "1"],
]


@pytest.mark.parametrize("text", [t for t in INJECTIONS if "\x00" not in t], ids=str)
def test_injection_strings_through_every_cli_string_option(
    tmp_path: Path, sqlite_url: str, text: str
) -> None:
    record(instance("create.end", 0), volume("create.end", 1))
    before = _snapshot()
    close_database()
    runner = CliRunner()
    env = {"RINTIK_DATABASE_URL": sqlite_url}
    for command in CLI_COMMANDS:
        args = [a.replace("{}", text) for a in command]
        result = runner.invoke(cli_app, args, env=env)
        assert result.exit_code in (0, 2), (args, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), args
        assert "Traceback" not in result.output
    open_database(sqlite_url)
    after = _snapshot()
    assert after == before
    assert all(p["key"] == text for p in _prices() if p["key"] not in ("default", "ssd"))


def _prices() -> list[dict[str, Any]]:
    from rintik_lite import invoices

    return invoices.list_prices()


# --- files 0600 ------------------------------------------------------------------------------


def test_the_database_and_its_journal_files_are_created_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "new.db"
        open_database(f"sqlite:///{path}")
        record(instance("create.end", 0))
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files if p.exists()}
        close_database()
    finally:
        os.umask(old)
    assert modes[path.name] == 0o600
    assert set(modes.values()) == {0o600}, modes


def test_config_check_flags_a_configuration_file_others_can_read(tmp_path: Path) -> None:
    config = tmp_path / "rintik.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "r.db"}"\n')
    lines = {}
    for mode in (0o644, 0o600):
        config.chmod(mode)
        result = subprocess.run(
            [sys.executable, "-m", "rintik_lite", "config", "check", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )
        lines[mode] = next(
            line for line in result.stdout.splitlines() if f"permissions of {config}" in line
        )
    assert not lines[0o644].startswith("ok") and "chmod 600" in lines[0o644]
    assert lines[0o600].startswith("ok")
