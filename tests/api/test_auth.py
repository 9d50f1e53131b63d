"""X-Auth-Token strategies: private key, Keystone (the real one, tests/keystone_server.py),
or either; 401 with a JSON body; 503 when Keystone cannot be reached; tokens never logged."""

from __future__ import annotations

import logging

import pytest
from webtest import TestApp

from rintik_lite.api import create_app
from rintik_lite.api.keystone import KeystoneAuth
from rintik_lite.errors import SettingsError
from rintik_lite.models import Project
from rintik_lite.settings import Settings
from tests.conftest import NOW, settings_for
from tests.keystone_server import KeystoneServer, free_port, keystone_server

__all__ = ["keystone_server"]  # the session fixture, imported for pytest

KEY = "private-key-8d1e0b"
REFUSED = {"error": "missing or invalid X-Auth-Token header"}


@pytest.mark.parametrize(
    ("token", "status"),
    [
        (KEY, 200),
        (KEY + " ", 401),
        (KEY[:-1], 401),
        ("", 401),
        ("ключ", 401),  # not latin-1: refused, never a 500
        ("\x00", 401),
    ],
)
def test_private_key(sqlite_url: str, token: str, status: int) -> None:
    app = TestApp(create_app(settings_for(sqlite_url, auth__private_key=KEY)))
    response = app.get("/v1/volume_types", headers={"X-Auth-Token": token}, expect_errors=True)
    assert response.status_int == status
    if status == 401:
        assert response.json == REFUSED


def test_tokens_never_reach_the_log(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    app = TestApp(create_app(settings_for(sqlite_url, auth__private_key=KEY)))
    with caplog.at_level(logging.DEBUG):
        app.get("/v1/volume_types", headers={"X-Auth-Token": "guess-" + KEY}, status=401)
        app.get("/v1/volume_types", headers={"X-Auth-Token": KEY}, status=200)
    assert "refused GET /v1/volume_types" in caplog.text
    assert KEY not in caplog.text


def test_an_empty_private_key_is_refused_at_start(sqlite_url: str) -> None:
    with pytest.raises(SettingsError, match=r"auth\.private_key is empty"):
        create_app(settings_for(sqlite_url, auth__private_key=""))


def keystone_settings(server: KeystoneServer, db_url: str, strategy: str) -> Settings:
    name, password, project = server.service
    return settings_for(
        db_url,
        auth__strategy=strategy,
        auth__private_key=KEY,
        keystone__auth_url=server.url,
        keystone__username=name,
        keystone__password=password,
        keystone__project_name=project,
    )


@pytest.mark.parametrize("strategy", ["keystone", "private_key,keystone"])
def test_keystone_strategies(
    keystone_server: KeystoneServer, sqlite_url: str, strategy: str
) -> None:
    app = TestApp(create_app(keystone_settings(keystone_server, sqlite_url, strategy)))
    admin = keystone_server.issue_token(keystone_server.admin)
    member = keystone_server.issue_token(keystone_server.member)  # lacks the admin role
    assert app.get("/v1/volume_types", headers={"X-Auth-Token": admin}).status_int == 200
    for token in (member, "not-a-token", ""):
        response = app.get("/v1/volume_types", headers={"X-Auth-Token": token}, status=401)
        assert response.json == REFUSED
    by_key = app.get("/v1/volume_types", headers={"X-Auth-Token": KEY}, expect_errors=True)
    assert by_key.status_int == (200 if "private_key" in strategy else 401)


def test_project_names_come_from_keystone(keystone_server: KeystoneServer, sqlite_url: str) -> None:
    settings = keystone_settings(keystone_server, sqlite_url, "private_key")
    keystone = KeystoneAuth(settings)
    app = TestApp(create_app(settings, keystone=keystone, clock=lambda: NOW))
    demo = keystone_server.project_ids["demo"]
    Project.create(project_id=demo, updated_at=NOW)  # known by id only
    Project.create(project_id="gone", name="from-the-bus", updated_at=NOW)
    listing = app.get("/v1/projects", headers={"X-Auth-Token": KEY}).json
    assert {p["project_id"]: p["project_name"] for p in listing} == {
        demo: "demo",
        "gone": "from-the-bus",  # Keystone does not know it: the registry's name
    }


def test_keystone_unreachable_is_503(keystone_server: KeystoneServer, sqlite_url: str) -> None:
    settings = keystone_settings(keystone_server, sqlite_url, "private_key,keystone").replace(
        keystone__auth_url=f"http://127.0.0.1:{free_port()}/v3"
    )
    app = TestApp(create_app(settings))
    response = app.get("/v1/volume_types", headers={"X-Auth-Token": "some-token"}, status=503)
    assert response.content_type == "application/json"
    assert "Keystone" in response.json["error"] or "keystone" in response.json["error"]
    # The private key still works without Keystone.
    assert app.get("/v1/volume_types", headers={"X-Auth-Token": KEY}).status_int == 200
