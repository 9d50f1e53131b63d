"""`rintik-lite demo`: the simulated cloud (pure, in-process) and the command as a real
process, its API over loopback, its database read by the other commands."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rintik_lite import services
from rintik_lite.demo import PROFILES, LabCloud
from rintik_lite.ledger.notifications import ENTITY_TYPES
from rintik_lite.models import Interval, Project
from tests.conftest import envelope
from tests.test_cli import free_port, http_json, rintik

TOKEN = "demo-test-token"
START = datetime(2026, 9, 22, tzinfo=UTC)
END = datetime(2026, 11, 21, tzinfo=UTC)


# --- the simulated cloud ----------------------------------------------------------------------


def test_the_same_seed_publishes_the_same_history() -> None:
    first = LabCloud(7).history(START, END)
    assert first == LabCloud(7).history(START, END)
    assert first != LabCloud(8).history(START, END)
    exchanges = Counter(exchange for exchange, _ in first)
    assert set(exchanges) == {"nova", "openstack", "neutron", "glance", "keystone"}
    times = [message["timestamp"] for _, message in first]
    assert times == sorted(times) and START.strftime("%Y-%m-%d") <= times[0] < times[-1]
    assert times[-1] < END.strftime("%Y-%m-%d")
    assert all(m["publisher_id"].split(".", 1)[1].startswith("demo-") for _, m in first)


def test_every_notification_of_the_history_is_read_and_applied(sqlite_url: str) -> None:
    history = LabCloud(3).history(START, END)
    result = services.record_messages(
        [services.Incoming(envelope(message)) for _, message in history], END
    )
    assert (result.received, result.quarantined, result.duplicate) == (len(history), 0, 0)
    applied = {event_type for (event_type, outcome) in result.by_type if outcome == "applied"}
    assert {
        "compute.instance.create.end",
        "compute.instance.finish_resize.end",
        "compute.instance.delete.end",
        "volume.attach.end",
        "volume.resize.end",
        "snapshot.create.end",
        "image.activate",
        "floatingip.delete.end",
        "router.create.end",
        "identity.project.created",
        "volume_type.create",
    } <= applied
    assert {p.name for p in Project.select()} == {p.name for p in PROFILES}
    assert {row.entity_type for row in Interval.select(Interval.entity_type)} == set(ENTITY_TYPES)


# --- the command --------------------------------------------------------------------------------


@dataclass
class Demo:
    """A running `rintik-lite demo` and what it printed."""

    process: subprocess.Popen[str]
    lines: list[str]

    def wait_for(self, text: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not printed: {''.join(self.lines)}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(20)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def start_demo(folder: Path, *args: str, env: dict[str, str] | None = None) -> Demo:
    folder.mkdir(exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "rintik_lite", "demo", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    lines: list[str] = []
    assert process.stdout is not None
    stream = process.stdout
    threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")), daemon=True).start()
    return Demo(process, lines)


def demo_config(folder: Path, port: int) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "lab.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{folder / "lab.db"}"\n'
        f'[api]\nport = {port}\n[auth]\nprivate_key = "{TOKEN}"\n'
    )
    return path


@pytest.mark.slow
def test_the_demo_serves_a_populated_api_and_database(tmp_path: Path) -> None:
    port = free_port()
    config = demo_config(tmp_path, port)
    demo = start_demo(tmp_path, "--seed", "1", "--duration", "120", "--config", str(config))
    try:
        began = time.monotonic()
        demo.wait_for("live events every few seconds", 60)
        ready = time.monotonic() - began
        api = f"http://127.0.0.1:{port}"
        assert demo.wait_for("  API ", 1).split() == ["API", api, "token:", TOKEN]
        metrics = ["metrics", f"{api}/metrics", "same", "token"]
        assert demo.wait_for("  metrics ", 1).split() == metrics
        assert f"TUI       rintik-lite tui --config {config}" in "".join(demo.lines)
        projects = http_json(f"{api}/v1/projects", token=TOKEN)
        assert {p["project_name"] for p in projects} == {p.name for p in PROFILES}
        start = (datetime.now(UTC) - timedelta(days=61)).strftime("%Y-%m-%d")
        kinds: Counter[str] = Counter()
        for project in projects:
            rows = http_json(
                f"{api}/v1/project/{project['project_id']}/entities?start={start}", token=TOKEN
            )
            kinds.update(row["entity_type"] for row in rows)
        assert set(kinds) == set(ENTITY_TYPES) and kinds["instance"] > 50
        health = http_json(f"{api}/healthz")
        assert health["healthy"] is True
        assert set(health["threads"]) == {"scheduler", "collector", "api", "simulator"}
        # the other commands read the demo's database while it runs
        listed = rintik("invoice", "list", "--json", "--config", str(config))
        closed = [i for i in json.loads(listed.stdout) if i["state"] == "unpaid"]
        last_month = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        assert {i["period"] for i in closed} >= {last_month}
        assert len([i for i in closed if i["period"] == last_month]) == len(PROFILES)
        shown = rintik("invoice", "show", str(closed[0]["id"]), "--config", str(config))
        invoice = json.loads(shown.stdout)
        assert invoice["number"] and invoice["lines"] and float(invoice["total"]) > 0
        assert all(line["amount"] is not None for line in invoice["lines"])
        # live events reach the collector (and /metrics, behind the same token)
        before = received(api)
        deadline = time.monotonic() + 30
        while received(api) == before:
            assert time.monotonic() < deadline, "no live event reached the collector"
            time.sleep(0.5)
        assert re.search(r"^\d\d:\d\d:\d\d  [a-z-]+: ", "".join(demo.lines), re.MULTILINE)
    finally:
        code = demo.stop()
    output = "".join(demo.lines)
    assert code == 0, output
    assert "stopped; the data stays in the database" in output
    assert "Traceback" not in output
    assert ready < 60, f"the demo took {ready:.0f} s to be ready"
    assert not (tmp_path / "rintik-demo.toml").exists()  # --config given: nothing written
    assert (tmp_path / "lab.db").stat().st_mode & 0o777 == 0o600


def received(api: str) -> float:
    request = urllib.request.Request(f"{api}/metrics", headers={"X-Auth-Token": TOKEN})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read().decode()
    return sum(
        sample.value
        for metric in text_string_to_metric_families(body)
        for sample in metric.samples
        if sample.name == "rintik_events_received_total"
    )


def ledger(database: Path) -> dict[str, Any]:
    """What must be equal between two runs: every interval, every closed invoice and line."""
    with closing(sqlite3.connect(database)) as db:
        intervals = db.execute(
            'SELECT entity_id, entity_type, project_id, start, "end", name, attributes '
            "FROM interval ORDER BY entity_id, start"
        ).fetchall()
        invoices = db.execute(
            "SELECT id, project_id, period, state, number, subtotal, tax, total FROM invoice "
            "WHERE state != 'in_progress' ORDER BY number"
        ).fetchall()
        lines = db.execute(
            'SELECT invoice_id, position, entity_id, description, start, "end", hours, '
            "quantity, unit_price, amount FROM invoice_line ORDER BY invoice_id, position"
        ).fetchall()
    return {"intervals": intervals, "invoices": invoices, "lines": lines}


@pytest.mark.slow
def test_the_same_seed_gives_the_same_ledger(tmp_path: Path) -> None:
    """Two runs with --seed 5 and no --config (rintik-demo.db and rintik-demo.toml in the
    working directory), each stopped at once after the history: the same ledger. The
    second also logs JSON at debug: one line per event, one per batch."""

    def run(name: str, **env: str) -> tuple[Path, str]:
        demo = start_demo(
            tmp_path / name,
            "--seed",
            "5",
            "--duration",
            "0",
            env={"RINTIK_API_PORT": str(free_port()), **env},
        )
        assert demo.process.wait(120) == 0, "".join(demo.lines)
        output = "".join(demo.lines)
        return tmp_path / name, output

    for _ in range(2):  # the history ends at today 00:00 UTC: run again if midnight passed
        (a, out_a), (b, out_b) = (
            run("a"),
            run("b", RINTIK_LOG_LEVEL="DEBUG", RINTIK_LOG_FORMAT="json"),
        )
        history_a = [line for line in out_a.splitlines() if "history" in line]
        history_b = [line for line in out_b.splitlines() if "history" in line]
        if history_a == history_b:
            break
    assert ledger(a / "rintik-demo.db") == ledger(b / "rintik-demo.db")
    assert len(ledger(a / "rintik-demo.db")["invoices"]) >= len(PROFILES)
    # the configuration the demo wrote reaches its database from any other command
    config = a / "rintik-demo.toml"
    assert config.stat().st_mode & 0o777 == 0o600
    assert 'private_key = "demo"' in config.read_text()
    listed = rintik("invoice", "list", "--json", "--config", str(config))
    assert listed.returncode == 0 and json.loads(listed.stdout)
    logs = [json.loads(line) for line in out_b.splitlines() if line.startswith("{")]
    per_event = [r for r in logs if r["logger"] == "rintik_lite.services"]
    batches = [r for r in logs if r["message"].startswith("batch: ")]
    received = sum(int(r["message"].split()[1]) for r in batches)
    assert len(per_event) == received > 1000
    assert {r["level"] for r in batches} == {"INFO"}


def test_the_demo_never_writes_into_a_real_ledger(tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    capture = tmp_path / "capture.json"
    capture.write_text(
        json.dumps(
            {
                "event_type": "compute.instance.exists",
                "publisher_id": "compute.prod-17",
                "timestamp": "2026-10-01 00:00:00",
                "payload": {"instance_id": "i-1", "tenant_id": "p", "state": "active"},
            }
        )
    )
    env = {"RINTIK_DATABASE_URL": f"sqlite:///{real}", "RINTIK_API_PORT": str(free_port())}
    assert rintik("replay", str(capture), env=env).returncode == 0
    done = rintik("demo", "--seed", "1", "--duration", "0", env=env)
    assert done.returncode == 2
    assert done.stderr == (
        "error: this database holds events that the demo did not make; the demo writes a "
        "simulated cloud into its database: give it another [database] url\n"
    )


def test_the_default_seed_comes_from_the_database(tmp_path: Path, monkeypatch: Any) -> None:
    from rintik_lite.demo import default_seed

    monkeypatch.chdir(tmp_path)
    here = default_seed("sqlite:///rintik-demo.db")
    assert here == default_seed(f"sqlite:///{tmp_path / 'rintik-demo.db'}")  # same file
    assert here != default_seed(f"sqlite:///{tmp_path / 'other' / 'rintik-demo.db'}")
    assert 1 <= here <= 10**6
    secret = default_seed("postgresql://rintik:secret@127.0.0.1/demo")
    assert secret == default_seed("postgresql://rintik:other@127.0.0.1/demo")  # no password


@pytest.mark.slow
def test_running_the_demo_again_carries_on_the_same_cloud(tmp_path: Path) -> None:
    """The README's command, run twice in one folder (no --seed): the second run's history
    is the first's, so it adds only duplicates and the ledger stays the same."""

    def run() -> str:
        demo = start_demo(tmp_path, "--duration", "0", env={"RINTIK_API_PORT": str(free_port())})
        assert demo.process.wait(120) == 0, "".join(demo.lines)
        return "".join(demo.lines)

    first = run()
    before = ledger(tmp_path / "rintik-demo.db")
    second = run()
    window = re.compile(r"history\s+(\S+ \.\. \S+ \S+)")  # the dates, not the counts
    if window.findall(first) == window.findall(second):  # unless midnight passed between
        assert window.findall(first)
        assert ledger(tmp_path / "rintik-demo.db") == before
        (ingested,) = [line for line in second.splitlines() if "ingested" in line]
        assert " 0 applied" in ingested and " 0 duplicate" not in ingested, ingested
    assert len(before["invoices"]) >= len(PROFILES)
