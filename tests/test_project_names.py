"""Project names wherever a project is shown: Keystone's when [keystone] is set up (a real
Keystone, tests/keystone_server.py), else what Keystone's notifications carried."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rintik_lite.cli import app
from tests.billing import trace
from tests.conftest import notification, record, settings_for
from tests.keystone_server import KeystoneServer, keystone_server

__all__ = ["keystone_server"]  # the session fixture, imported for pytest

runner = CliRunner()


def invoice_rows(config: Path) -> list[dict[str, object]]:
    result = runner.invoke(app, ["invoice", "list", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_invoice_list_names_projects_from_the_registry(tmp_path: Path, sqlite_url: str) -> None:
    record(
        trace.instance("create.end", trace.utc(2026, 10, 5), project="p-named", instance_id="i-1")
    )
    record(
        notification(
            "identity.project.created",
            {
                "resource_info": "p-named",
                "target": {"id": "p-named", "name": "acme"},
                "eventTime": "2026-10-01T00:00:00Z",
            },
            "2026-10-01 00:00:00",
            publisher_id="identity.host",
        )
    )
    config = tmp_path / "rintik.toml"
    config.write_text(f'[database]\nurl = "{sqlite_url}"\n')
    assert {(r["project_id"], r["project_name"]) for r in invoice_rows(config)} == {
        ("p-named", "acme")
    }
    table = runner.invoke(app, ["invoice", "list", "--config", str(config)])
    assert "acme" in table.stdout


def test_invoice_list_names_projects_from_keystone(
    tmp_path: Path, sqlite_url: str, keystone_server: KeystoneServer
) -> None:
    demo = keystone_server.project_ids["demo"]
    record(trace.instance("create.end", trace.utc(2026, 10, 5), project=demo, instance_id="i-1"))
    name, password, project = keystone_server.service
    config = tmp_path / "rintik.toml"
    config.write_text(
        f'[database]\nurl = "{sqlite_url}"\n[keystone]\nauth_url = "{keystone_server.url}"\n'
        f'username = "{name}"\npassword = "{password}"\nproject_name = "{project}"\n'
    )
    assert {(r["project_id"], r["project_name"]) for r in invoice_rows(config)} == {(demo, "demo")}


def test_the_tui_names_projects_from_keystone(
    sqlite_url: str, keystone_server: KeystoneServer
) -> None:
    from rintik_lite.tui.source import LedgerSource

    demo = keystone_server.project_ids["demo"]
    record(trace.instance("create.end", trace.utc(2026, 10, 5), project=demo, instance_id="i-1"))
    name, password, project = keystone_server.service
    settings = settings_for(
        sqlite_url,
        keystone__auth_url=keystone_server.url,
        keystone__username=name,
        keystone__password=password,
        keystone__project_name=project,
    )
    source = LedgerSource(settings, processes=False)
    assert [(p.project_id, p.name) for p in source.projects()] == [(demo, "demo")]
    assert source.project(demo, trace.utc(2026, 11, 21)).name == "demo"
