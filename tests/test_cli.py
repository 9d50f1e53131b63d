"""The command line: through typer's CliRunner, and as real subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.main import get_command
from typer.testing import CliRunner

from rintik_lite import db
from rintik_lite.cli import app
from rintik_lite.models import Event
from tests.conftest import CORPUS, ROOT, Broker, envelope, settings_for
from tests.test_db import KINDS, Watched, no_cyclic_gc
from tests.test_services import P1, instance, iso, volume

runner = CliRunner()


def rintik(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("rintik-lite", path=str(Path(sys.executable).parent))
    command = [executable] if executable else [sys.executable, "-m", "rintik_lite"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def config_file(tmp_path: Path, db_url: str, extra: str = "") -> Path:
    path = tmp_path / "rintik.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n{extra}')
    return path


def test_replay_then_usage_json(tmp_path: Path, db_url: str) -> None:
    folder = tmp_path / "captured"
    folder.mkdir()
    messages = [
        instance("create.end", 0),
        volume("create.end", 1),
        volume("attach.end", 2, attached=["i-1"]),
        instance("delete.end", 5, deleted=5),
    ]
    for i, message in enumerate(messages[:3]):
        (folder / f"{i}.json").write_text(envelope(message))
    (folder / "more.jsonl").write_text(json.dumps(messages[3]) + "\n\n{broken\n")
    config = config_file(tmp_path, db_url)
    result = runner.invoke(app, ["replay", str(folder), "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "received": 5,
        "applied": 4,
        "ignored": 0,
        "duplicate": 0,
        "quarantined": 1,
    }
    result = runner.invoke(app, ["usage", "--project", P1, "--json", "--config", str(config)])
    rows = json.loads(result.stdout)
    assert [(r["entity_id"], r["start"], r["end"]) for r in rows] == [
        ("i-1", iso(0), iso(5)),
        ("v-1", iso(0), iso(2)),
        ("v-1", iso(2), None),
    ]
    assert rows[2]["attached_to"] == ["i-1"] and rows[2]["size"] == 10
    window = runner.invoke(
        app,
        [
            "usage",
            "--project",
            P1,
            "--json",
            "--config",
            str(config),
            "--start",
            "2026-10-01T03:00:00Z",
            "--end",
            "2026-10-01T04:00",
        ],
    )
    assert [r["start"] for r in json.loads(window.stdout)] == [iso(0), iso(2)]


@pytest.mark.parametrize("batch", ["1", "2", "3"])
def test_replay_records_the_same_whatever_its_batch(
    tmp_path: Path, batch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 1, 2 and 3 against the default (one batch here): commits in the writer
    thread, one batch read while the one before commits, give the same ledger and events."""
    bodies = [
        envelope(m)
        for m in (
            instance("create.end", 0),
            volume("create.end", 1),
            volume("attach.end", 2, attached=["i-1"]),
            instance("delete.end", 5, deleted=5),
        )
    ]
    bodies.append(bodies[1])  # a duplicate, in a later batch than its first copy
    captured = tmp_path / "in.jsonl"
    captured.write_text("".join(b + "\n" for b in bodies) + "{broken\n")

    from rintik_lite import services

    sizes: list[int] = []
    record = services.record_read

    def spy(read: services.ReadBatch, *args: Any) -> services.BatchResult:
        sizes.append(read.received)
        return record(read, *args)

    monkeypatch.setattr(services, "record_read", spy)

    def replayed(name: str, *options: str) -> tuple[Any, Any, list[tuple[Any, ...]]]:
        sizes.clear()
        url = f"sqlite:///{tmp_path / name}"
        folder = tmp_path / name.replace(".db", "")
        folder.mkdir()
        config = config_file(folder, url)
        args = ["replay", str(captured), "--config", str(config), "--json", *options]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        usage = runner.invoke(app, ["usage", "--project", P1, "--json", "--config", str(config)])
        db.open_database(url)
        try:
            events = [
                (e.key, e.event_type, e.observation) for e in Event.select().order_by(Event.key)
            ]
        finally:
            db.close_binding()
        return json.loads(result.stdout), json.loads(usage.stdout), events

    default = replayed("default.db")
    assert default[0] == {
        "received": 6,
        "applied": 4,
        "ignored": 0,
        "duplicate": 1,
        "quarantined": 1,
    }
    assert len(default[2]) == 4 and len(default[1]) == 3
    assert sizes == [6]
    assert replayed(f"batch-{batch}.db", "--batch", batch) == default
    n = int(batch)
    assert sizes == [n] * (6 // n) + ([6 % n] if 6 % n else [])


def test_events_failed_and_retry(tmp_path: Path, sqlite_url: str) -> None:
    config = config_file(tmp_path, sqlite_url)
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "event_type": "volume.create.end",
                "payload": {"size": 1},
                "timestamp": "2026-10-01 00:00:00",
            }
        )
    )
    assert runner.invoke(app, ["replay", str(bad), "--config", str(config)]).exit_code == 0
    failed = json.loads(
        runner.invoke(app, ["events", "failed", "--json", "--config", str(config)]).stdout
    )
    assert [(f["event_type"], f["reason"], f["attempts"]) for f in failed] == [
        ("volume.create.end", "payload.volume_id is missing", 1)
    ]
    # Replayed again, it is quarantined again, on the same row.
    result = runner.invoke(app, ["replay", str(bad), "--config", str(config)])
    assert result.stdout == "1 received, 0 applied, 0 ignored, 0 duplicate, 1 quarantined\n"
    result = runner.invoke(app, ["events", "retry", "--config", str(config)])
    assert result.stdout.strip() == "1 retried: 0 applied, 0 duplicate, 1 still quarantined"
    again = json.loads(
        runner.invoke(app, ["events", "failed", "--json", "--config", str(config)]).stdout
    )
    assert [(f["id"], f["attempts"]) for f in again] == [(failed[0]["id"], 3)]
    table = runner.invoke(app, ["events", "failed", "--config", str(config)])
    assert "volume.create.end" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["usage", "--project", "p", "--start", "yesterday"],
            "error: --start: 'yesterday' is not an ISO 8601",
        ),
        (
            ["usage", "--project", "p", "--start", "2026-10-02", "--end", "2026-10-01"],
            "error: end must be after start",
        ),
        (["replay", "/nonexistent/folder"], "error: /nonexistent/folder does not exist"),
        (
            ["usage", "--project", "p", "--config", "/nonexistent.toml"],
            "error: configuration file /nonexistent.toml does not exist",
        ),
    ],
)
def test_errors_are_one_line_with_exit_code_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    os.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1


def test_bad_settings_and_unreachable_database_as_a_real_process(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[database]\nuri = 'x'\n")
    result = rintik("usage", "--project", "p", "--config", str(bad))
    assert (result.returncode, result.stderr) == (
        2,
        f"error: unknown setting database.uri in {bad}\n",
    )
    env = {"RINTIK_DATABASE_URL": "postgresql://nobody:secret@127.0.0.1:1/none"}
    result = rintik("usage", "--project", "p", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: database postgresql://nobody:***@127.0.0.1:1/none cannot be reached"
    )
    assert "secret" not in result.stderr and "Traceback" not in result.stderr
    result = rintik("usage", "--project", "p", env={"RINTIK_API_PORT": "http"})
    assert (
        result.stderr == "error: bad value for api.port (from $RINTIK_API_PORT): 'http' "
        "is not a non-negative integer\n"
    )


def test_db_upgrade_and_a_newer_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    env = {"RINTIK_DATABASE_URL": url}
    assert rintik("db", "upgrade", env=env).stdout == (
        f"schema upgraded from version 0 to {db.SCHEMA_VERSION}\n"
    )
    assert rintik("db", "upgrade", env=env).stdout == (
        f"schema is up to date (version {db.SCHEMA_VERSION})\n"
    )
    assert (tmp_path / "r.db").stat().st_mode & 0o777 == 0o600
    db.open_database(url)
    db.SchemaVersion.update(version=db.SCHEMA_VERSION + 1).execute()
    db.close_database()
    result = rintik("usage", "--project", "p", env=env)
    assert result.returncode == 2
    assert result.stderr == (
        f"error: the database is at schema version {db.SCHEMA_VERSION + 1}, "
        f"but this rintik-lite knows only up to {db.SCHEMA_VERSION}: "
        "upgrade rintik-lite\n"
    )


def test_replay_reads_the_whole_corpus_without_crashing(tmp_path: Path) -> None:
    env = {"RINTIK_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    result = rintik("replay", str(CORPUS), "--json", env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    files = [p for p in CORPUS.rglob("*.json")]
    assert summary["received"] == len(files)
    assert summary["received"] == (
        summary["applied"] + summary["ignored"] + summary["duplicate"] + summary["quarantined"]
    )
    assert summary["applied"] > 40
    # Replayed again: nothing new, and each message quarantined the first time is still
    # one entry of the quarantine, counted twice.
    first = summary
    result = rintik("replay", str(CORPUS), "--json", env=env)
    summary = json.loads(result.stdout)
    assert (summary["duplicate"], summary["quarantined"]) == (
        first["applied"] + first["ignored"] + first["duplicate"],
        first["quarantined"],
    )
    failed = json.loads(rintik("events", "failed", "--json", env=env).stdout)
    assert len(failed) == first["quarantined"] > 0
    assert {f["attempts"] for f in failed} == {2}


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()

    def walk(command: Any, prefix: list[str]) -> list[str]:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            return [
                name
                for sub_name, sub in subcommands.items()
                for name in walk(sub, [*prefix, sub_name])
            ]
        return [" ".join(prefix)]

    commands = walk(get_command(app), [])
    assert len(commands) >= 8
    for command in commands:
        assert f"`rintik-lite {command}" in readme, command


@pytest.mark.slow
def test_run_ingests_from_rabbitmq_and_stops_on_sigterm(
    tmp_path: Path, broker: Broker, sqlite_url: str
) -> None:
    """The issue's 'done when': notifications published as oslo.messaging does, read back
    with `rintik-lite usage --json`; SIGTERM stops `run` within 5 s, nothing lost."""
    settings = broker.settings(sqlite_url)
    port = free_port()
    config = config_file(
        tmp_path,
        sqlite_url,
        (
            f'[broker]\nurl = "{broker.url}"\nqueue = "{broker.queue}"\n'
            f"exchanges = {json.dumps(settings['broker.exchanges'])}\nbatch_seconds = 0.1\n"
            f'[api]\nport = {port}\n[auth]\nprivate_key = "k-123"\n'
        ),
    )
    api = f"http://127.0.0.1:{port}"
    logging_ini = tmp_path / "logging.ini"
    logging_ini.write_text(
        "[loggers]\nkeys=root\n[handlers]\nkeys=err\n[formatters]\nkeys=plain\n"
        "[logger_root]\nlevel=INFO\nhandlers=err\n"
        "[handler_err]\nclass=StreamHandler\nformatter=plain\nargs=(sys.stderr,)\n"
        "[formatter_plain]\nformat=FROM-INI %(levelname)s %(name)s %(message)s\n"
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rintik_lite",
            "run",
            "--config",
            str(config),
            "--logging",
            str(logging_ini),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log: list[str] = []
    assert process.stderr is not None
    reader = threading.Thread(
        target=lambda: log.extend(iter(process.stderr.readline, "")), daemon=True
    )
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("consuming" in line for line in log):
            time.sleep(0.05)
        for service, message in [
            ("nova", instance("create.end", 0)),
            ("openstack", volume("create.end", 1)),
            ("nova", instance("resize.confirm.end", 3, flavor="m1.large", launched=3)),
            ("openstack", volume("attach.end", 4, attached=["i-1"])),
            ("openstack", volume("resize.end", 6, size=20, attached=["i-1"])),
            ("openstack", volume("detach.end", 7, size=20)),
            ("nova", instance("delete.end", 8, flavor="m1.large", launched=3, deleted=8)),
            ("openstack", volume("delete.end", 9, size=20)),
        ]:
            broker.publish(service, message)
        while time.monotonic() < deadline and Event.select().count() < 8:
            time.sleep(0.1)
        # The API thread serves the same ledger, behind the token; /healthz is public.
        health = http_json(f"{api}/healthz")
        assert health["healthy"] is True, health
        assert health["threads"] == {"scheduler": True, "collector": True, "api": True}
        assert health["broker"]["connected"] is True
        assert health["scheduler"]["next_run"] is not None
        entities = http_json(f"{api}/v1/project/{P1}/entities?start=2026-10-01", token="k-123")
        assert len(entities) == 6
        with pytest.raises(urllib.error.HTTPError) as refused:
            http_json(f"{api}/v1/project/{P1}/entities?start=2026-10-01")
        assert refused.value.code == 401
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        assert time.monotonic() - started < 5
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(5)
    assert process.returncode == 0, "".join(log)
    assert any("received SIGTERM, stopping" in line for line in log)
    assert all(line.startswith("FROM-INI ") for line in log if line.strip()), log[:3]
    usage = rintik("usage", "--project", P1, "--json", "--config", str(config))
    rows = [
        (
            r["entity_id"],
            r["start"],
            r["end"],
            r.get("flavor") or r.get("size"),
            r.get("attached_to"),
        )
        for r in json.loads(usage.stdout)
    ]
    assert rows == [
        ("i-1", iso(0), iso(3), "m1.small", None),
        ("v-1", iso(0), iso(4), 10, []),
        ("i-1", iso(3), iso(8), "m1.large", None),
        ("v-1", iso(4), iso(6), 10, ["i-1"]),
        ("v-1", iso(6), iso(7), 20, ["i-1"]),
        ("v-1", iso(7), iso(9), 20, []),
    ]
    assert broker.queue_depth() == 0
    assert settings_for(sqlite_url)["database.url"] == sqlite_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(url: str, token: str | None = None) -> Any:
    request = urllib.request.Request(url, headers={"X-Auth-Token": token} if token else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_run_refuses_to_start_without_a_broker(tmp_path: Path) -> None:
    env = {
        "RINTIK_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
        "RINTIK_BROKER_URL": "amqp://rintik:s3cret-pw@127.0.0.1:1//",
    }
    result = rintik("run", env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "error: broker amqp://rintik:***@127.0.0.1:1// cannot be reached: "
        "[Errno 111] Connection refused (check [broker] url)"
    )
    assert "s3cret-pw" not in result.stderr + result.stdout


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite://:memory:"])
def test_run_refuses_an_in_memory_database(url: str) -> None:
    # Each thread's connection would be a database of its own: the API would never see
    # what the collector wrote, and everything would go at exit.
    broker = "amqp://guest:guest@127.0.0.1:1//"  # never reached: the check comes first
    result = rintik("run", env={"RINTIK_DATABASE_URL": url, "RINTIK_BROKER_URL": broker})
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(f"error: database.url {url} is an in-memory")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["usage"], "error: Missing option '--project'. (see --help)\n"),
        (["no-such-command"], "error: No such command 'no-such-command'. (see --help)\n"),
    ],
)
def test_usage_errors_are_one_line_too(args: list[str], line: str) -> None:
    result = rintik(*args)
    assert (result.returncode, result.stderr) == (2, line)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([b"{}", b'{"a": 1}', b" ", b"", b"\t", b"x\ry"]), max_size=8),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_jsonl_files_are_cut_into_the_lines_splitlines_gives(
    parts: list[bytes], newline: bytes
) -> None:
    from rintik_lite import reading
    from rintik_lite.cli import _batches

    data = newline.join(parts) + newline
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "n.jsonl"
        path.write_bytes(data)
        batches = list(_batches([path], 100, lambda: None))
        got = [m.body for batch in batches for m in reading.expanded(batch)]
    assert got == [line for line in data.splitlines() if line.strip()]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([".jsonl", ".json"]),
            st.lists(
                st.sampled_from([b"{}", b'{"a": 1}', b" ", b"", b"\t", b" {}", b"\x0c", b"x\ry"]),
                max_size=9,
            ),
            st.sampled_from([b"\n", b"\r\n"]),
            st.booleans(),  # ends with a newline
        ),
        min_size=1,
        max_size=4,
    ),
    st.integers(min_value=1, max_value=7),
)
def test_replay_batches_hold_the_files_messages_in_order_size_by_size(
    files: list[tuple[str, list[bytes], bytes, bool]], size: int
) -> None:
    """`_batches` gives one message per .json file and one per line of a .jsonl file but
    blank ones (cut as `bytes.splitlines` cuts), in order, `size` to a batch but the last,
    whether they are sent as bodies or as spans of a file for a reader to read."""
    from rintik_lite import reading
    from rintik_lite.cli import _batches

    with tempfile.TemporaryDirectory() as folder:
        contents = []
        for n, (suffix, parts, newline, ends) in enumerate(files):
            path = Path(folder) / f"{n}{suffix}"
            path.write_bytes(newline.join(parts) + (newline if ends else b""))
            contents.append((path, path.read_bytes()))
        paths = [path for path, _ in contents]
        done: list[int] = []
        batches = list(_batches(paths, size, lambda: done.append(1)))
        got = [[m.body for m in reading.expanded(batch)] for batch in batches]
        expected = [
            body
            for path, content in contents
            for body in (
                [line for line in content.splitlines() if line.strip()]
                if path.suffix == ".jsonl"
                else [content]
            )
        ]
        spans = [p for batch in batches for p in batch if isinstance(p, reading.FileSpan)]
    assert [body for batch in got for body in batch] == expected
    assert all(len(batch) == size for batch in got[:-1])
    assert 0 < len(got[-1]) <= size if got else not expected
    assert len(done) == len(paths) - 1
    # Files cut at b"\n" alone are sent as spans; the others as their bodies.
    cut_at_newline = [
        str(path) for path, content in contents if path.suffix == ".jsonl" and b"\r" not in content
    ]
    with_messages = {
        path for path, content in contents if any(line.strip() for line in content.split(b"\n"))
    }
    assert {s.path for s in spans} == set(cut_at_newline) & {str(p) for p in with_messages}


def mapped_file_mb() -> float:
    """RssFile of this process: the pages of files it has mapped that are in memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssFile in /proc/self/status")


def test_replay_scans_a_large_file_without_holding_it(tmp_path: Path) -> None:
    """A capture of a day is gigabytes: `_batches` maps the file and lets the pages it has
    scanned go, so what it holds stays about a batch whatever the file's size (64 MB here,
    batches of about 2 MB). Before, it read each file whole, then cut it into lines."""
    from rintik_lite import reading
    from rintik_lite.cli import _batches

    line = b'{"event_type": "x", "padding": "' + b"p" * 2000 + b'"}'
    path = tmp_path / "large.jsonl"
    path.write_bytes(b"\n".join([line] * 32_000) + b"\n")
    before = mapped_file_mb()
    grew = 0.0
    spans = 0
    for batch in _batches([path], 1_000, lambda: None):
        spans += sum(isinstance(p, reading.FileSpan) for p in batch)
        grew = max(grew, mapped_file_mb() - before)
    assert spans == 32
    assert grew < 16, f"{grew:.1f} MB of the 64 MB file mapped at once"


def test_replay_of_a_file_gone_before_its_lines_are_read_fails_cleanly(
    tmp_path: Path, sqlite_url: str
) -> None:
    """The lines of a .jsonl file are read when their batch is, after the file was scanned:
    a file removed in between stops the command with the reason, not a traceback, and what
    was committed before stays."""
    folder = tmp_path / "in"
    folder.mkdir()
    first = [envelope(instance("create.end", n)) for n in range(3)]
    (folder / "a.jsonl").write_text("\n".join(first) + "\n")
    (folder / "b.jsonl").write_text(envelope(instance("create.end", 9)) + "\n")
    from rintik_lite import reading

    read = reading.FileSpan.messages

    def gone_once_scanned(span: reading.FileSpan) -> list[Any]:
        if span.path.endswith("b.jsonl"):
            Path(span.path).unlink()
        return read(span)

    args = ["replay", str(folder), "--readers", "0", "--batch", "3", "--json"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reading.FileSpan, "messages", gone_once_scanned)
        result = runner.invoke(app, args, env={"RINTIK_DATABASE_URL": sqlite_url})
    assert result.exit_code == 2, result.output
    assert result.output == f"error: cannot read {folder / 'b.jsonl'}: No such file or directory\n"
    assert Event.select().count() == 3


def test_bulk_commands_tune_the_garbage_collector_while_they_run(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from rintik_lite import gctune, services

    seen: list[tuple[int, int, int]] = []
    record = services.record_read

    def spy(read: services.ReadBatch, *args: Any) -> services.BatchResult:
        seen.append(gc.get_threshold())
        return record(read, *args)

    monkeypatch.setattr(services, "record_read", spy)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "n.jsonl").write_text(envelope(instance("create.end", 0)) + "\n")
    config = config_file(tmp_path, sqlite_url)
    before = gc.get_threshold()
    assert before != gctune.THRESHOLDS
    result = runner.invoke(app, ["replay", str(tmp_path / "in"), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert seen == [gctune.THRESHOLDS]  # raised while it ran
    assert gc.get_threshold() == before  # and put back: nothing leaks into this process


# Every command that opens the database, as CliRunner runs it in this process; `{inventory}`
# and `{notifications}` are files the test writes. Those ending in error exit after opening.
OPENING_COMMANDS = [
    ["replay", "{notifications}"],
    ["usage", "--project", "p-1"],
    ["events", "failed"],
    ["events", "retry"],
    ["db", "upgrade"],
    ["db", "rebuild-ledger"],
    ["price", "set", "flavor", "m1.small", "--hourly", "0.02"],
    ["price", "list"],
    ["price", "missing"],
    ["invoice", "close"],
    ["invoice", "list"],
    ["invoice", "show", "1"],
    ["invoice", "pay", "1"],
    ["invoice", "unpay", "1"],
    ["import", "{inventory}"],
    ["config", "check"],
    ["run"],  # the broker cannot be reached: exit 2 once the database is checked
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("args", OPENING_COMMANDS, ids=" ".join)
def test_a_command_leaves_no_connection_open(tmp_path: Path, kind: str, args: list[str]) -> None:
    """In a real process exit closes them; run in-process, what a command left open stayed
    open until a cyclic collection (it kept `db restore` from taking the file)."""
    watched = Watched(kind, tmp_path)
    notifications = tmp_path / "n.jsonl"
    notifications.write_text(envelope(instance("create.end", 0)) + "\n")
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"instances": []}))
    files = {"notifications": str(notifications), "inventory": str(inventory)}
    env = {
        "RINTIK_DATABASE_URL": watched.url,
        "RINTIK_BROKER_URL": f"amqp://127.0.0.1:{free_port()}//",
    }
    # Made, and bound as a command before would leave it: some commands read the billing
    # rules from the bound database before they open their own.
    db.open_database(watched.url)
    db.close_binding()
    with no_cyclic_gc():
        result = runner.invoke(app, [arg.format(**files) for arg in args], env=env)
        assert result.exit_code in (0, 1, 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert watched.left_open() == []


def test_invoice_commands_rate_with_their_own_database_settings(tmp_path: Path) -> None:
    """In-process, `database` stays bound to the last database opened: a command that read
    its rules before opening its own took that one's tax and currency (set over the API)."""
    from rintik_lite import invoices

    other = f"sqlite:///{tmp_path / 'other.db'}"
    db.open_database(other)
    invoices.set_billing_setting("currency", "EUR", settings_for(other), datetime.now(UTC))
    invoices.set_billing_setting("tax_percent", "20", settings_for(other), datetime.now(UTC))
    db.close_binding()  # as a command ends: `database` is still bound to it
    (tmp_path / "in").mkdir()
    messages = [instance("create.end", 0), instance("delete.end", 5, deleted=5)]
    (tmp_path / "in" / "n.jsonl").write_text("".join(envelope(m) + "\n" for m in messages))
    config = config_file(tmp_path, f"sqlite:///{tmp_path / 'mine.db'}")
    replayed = runner.invoke(app, ["replay", str(tmp_path / "in"), "--config", str(config)])
    assert replayed.exit_code == 0, replayed.output
    db.open_database(other)
    db.close_binding()
    args = ["--period", "2026-10", "--config", str(config), "--json"]
    closed = runner.invoke(app, ["invoice", "close", *args])
    assert closed.exit_code == 0, closed.output
    db.open_database(other)
    db.close_binding()
    listed = runner.invoke(app, ["invoice", "list", *args])
    assert listed.exit_code == 0, listed.output
    docs = json.loads(listed.stdout)
    assert len(docs) == 1
    assert (docs[0]["currency"], docs[0]["tax_percent"]) == ("USD", "0")
