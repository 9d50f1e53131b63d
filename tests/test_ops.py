"""Operating it: `db backup` / `db restore`, `config check`, and the logs.

Real SQLite files, a real writer process beside the backup, the real RabbitMQ for the
broker checks.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from typer.testing import CliRunner

from rintik_lite.cli import app
from rintik_lite.db import SCHEMA_VERSION
from tests.billing import trace
from tests.conftest import ROOT, Broker, envelope
from tests.test_cli import free_port, rintik

runner = CliRunner()


def counts(path: Path) -> tuple[int, int, int]:
    # closing(): sqlite3's own `with` ends a transaction, not the connection, and one left
    # open (until a cyclic garbage collection) keeps `db restore` from taking the file.
    with closing(sqlite3.connect(path)) as connection:
        return tuple(
            connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("event", "entity", "interval")
        )


def create(instance_id: str) -> str:
    message = trace.instance(
        "create.end", trace.utc(2026, 10, 1), project="p-1", instance_id=instance_id
    )
    return envelope(message)


def replay(config_env: dict[str, str], folder: Path, *ids: str) -> None:
    folder.mkdir(exist_ok=True)
    for instance_id in ids:
        (folder / f"{instance_id}.json").write_text(create(instance_id))
    done = runner.invoke(app, ["replay", str(folder)], env=config_env)
    assert done.exit_code == 0, done.output
    for file in folder.iterdir():
        file.unlink()


# --- backup and restore ---------------------------------------------------------------------

WRITER = """
import sys, time
from datetime import UTC, datetime
from rintik_lite import services
from rintik_lite.db import open_database
from tests.test_ops import create
open_database(sys.argv[1])
end, n = time.monotonic() + float(sys.argv[2]), 0
print("writing", flush=True)
while time.monotonic() < end:
    n += 1  # one transaction: 5 events, 5 resources, 5 intervals
    batch = [services.Incoming(create(f"i-{n}-{k}")) for k in range(5)]
    services.record_messages(batch, datetime.now(UTC))
print(n, flush=True)
"""


def test_backup_is_consistent_while_another_process_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    env = {"RINTIK_DATABASE_URL": url}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, "4"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "writing\n"
        seen = []
        for i in range(3):
            target = tmp_path / f"backup-{i}.db"
            done = rintik("db", "backup", str(target), env=env)
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith(f"backed up to {target}: ")
            assert f"schema version {SCHEMA_VERSION}" in done.stdout
            assert target.stat().st_mode & 0o777 == 0o600
            with closing(sqlite3.connect(target)) as copy:
                assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
            events, entities, intervals = counts(target)
            assert events == entities == intervals  # never half a transaction
            assert events % 5 == 0
            seen.append(events)
        writer.wait(30)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, writer.stderr.read() if writer.stderr else ""
    assert seen[0] > 0 and seen == sorted(seen) and seen[-1] > seen[0], seen
    assert not list(tmp_path.glob("backup-*.db-*"))  # self-contained: no -wal / -shm


def test_restore_replaces_the_database_and_keeps_the_replaced_one(tmp_path: Path) -> None:
    live = tmp_path / "rintik.db"
    env = {"RINTIK_DATABASE_URL": f"sqlite:///{live}"}
    replay(env, tmp_path / "in", "i-1", "i-2")
    backup = tmp_path / "monday.db"
    assert runner.invoke(app, ["db", "backup", str(backup)], env=env).exit_code == 0
    again = runner.invoke(app, ["db", "backup", str(backup)], env=env)
    assert again.exit_code == 2
    assert again.stderr == f"error: {backup} exists: a backup never overwrites; choose a new name\n"
    replay(env, tmp_path / "in", "i-3", "i-4", "i-5")
    assert counts(live) == (5, 5, 5)

    done = runner.invoke(app, ["db", "restore", str(backup)], env=env)
    assert done.exit_code == 0, done.output
    (kept,) = tmp_path.glob("rintik.db.before-restore-*")
    assert done.stdout == (
        f"the replaced database is kept as {kept}\n"
        f"restored {live} from {backup}: schema version {SCHEMA_VERSION}, 2 events\n"
    )
    assert counts(live) == (2, 2, 2) and counts(kept) == (5, 5, 5)
    assert live.stat().st_mode & 0o777 == 0o600 and kept.stat().st_mode & 0o777 == 0o600
    usage = runner.invoke(app, ["usage", "--project", "p-1", "--json"], env=env)
    assert [row["entity_id"] for row in json.loads(usage.stdout)] == ["i-1", "i-2"]
    with closing(sqlite3.connect(live)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_restore_is_refused_while_the_database_is_open(tmp_path: Path) -> None:
    live = tmp_path / "rintik.db"
    env = {"RINTIK_DATABASE_URL": f"sqlite:///{live}"}
    replay(env, tmp_path / "in", "i-1")
    backup = tmp_path / "b.db"
    assert runner.invoke(app, ["db", "backup", str(backup)], env=env).exit_code == 0
    replay(env, tmp_path / "in", "i-2")
    reader = sqlite3.connect(live)  # what `run` or the TUI holds
    try:
        reader.execute("SELECT COUNT(*) FROM event").fetchone()
        done = runner.invoke(app, ["db", "restore", str(backup)], env=env)
        assert done.exit_code == 2
        assert done.stderr == (
            f"error: {live} is open in another process: stop `rintik-lite run` (and the TUI) "
            "before restoring\n"
        )
    finally:
        reader.close()
    assert counts(live) == (2, 2, 2)
    assert not list(tmp_path.glob("rintik.db.before-restore-*"))


def test_restore_checks_the_backup(tmp_path: Path) -> None:
    env = {"RINTIK_DATABASE_URL": f"sqlite:///{tmp_path / 'rintik.db'}"}
    junk = tmp_path / "junk.db"
    junk.write_text("not a database at all, " * 100)
    done = runner.invoke(app, ["db", "restore", str(junk)], env=env)
    assert done.exit_code == 2 and "is not a rintik-lite database" in done.stderr
    newer = tmp_path / "newer.db"
    replay({"RINTIK_DATABASE_URL": f"sqlite:///{newer}"}, tmp_path / "in", "i-1")
    with closing(sqlite3.connect(newer)) as connection, connection:
        connection.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    done = runner.invoke(app, ["db", "restore", str(newer)], env=env)
    assert done.exit_code == 2 and "upgrade rintik-lite first" in done.stderr
    missing = runner.invoke(app, ["db", "restore", str(tmp_path / "nope.db")], env=env)
    assert missing.stderr == f"error: backup {tmp_path / 'nope.db'} does not exist\n"


def test_postgresql_is_backed_up_with_pg_dump(tmp_path: Path) -> None:
    env = {"RINTIK_DATABASE_URL": "postgresql://rintik:s3cret@db.example:5432/rintik"}
    for command in (["db", "backup", str(tmp_path / "x")], ["db", "restore", str(tmp_path)]):
        done = runner.invoke(app, command, env=env)
        assert done.exit_code == 2
        assert "pg_dump --format=custom --file rintik.dump" in done.stderr
        assert "pg_restore --clean --if-exists" in done.stderr
        assert "s3cret" not in done.stderr and "rintik:***@db.example" in done.stderr
    assert not (tmp_path / "x").exists()


# --- config check -----------------------------------------------------------------------------


def check(config: Path) -> tuple[int, list[str]]:
    done = runner.invoke(app, ["config", "check", "--config", str(config)], env={})
    return done.exit_code, done.stdout.splitlines()


def write_config(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def broker_section(broker: Broker, exchanges: list[str], durable: bool = False) -> str:
    return (
        f'[broker]\nurl = "{broker.url}"\nqueue = "{broker.queue}"\n'
        f"exchanges = {json.dumps(exchanges)}\ndurable_exchanges = {str(durable).lower()}\n"
    )


def declare_exchanges(broker: Broker) -> list[str]:
    """The services' exchanges, declared as oslo.messaging does when it first publishes."""
    for service in broker.exchanges:
        broker.publish(service, json.loads(json.loads(create("i-x"))["oslo.message"]))
    return list(broker.exchanges.values())


def good_config(tmp_path: Path, broker: Broker, sqlite_url: str) -> Path:
    """A settings file every check passes: a private key, the exchanges declared."""
    return write_config(
        tmp_path / "rintik.toml",
        f'[database]\nurl = "{sqlite_url}"\n[auth]\nprivate_key = "a-long-random-token"\n'
        + broker_section(broker, declare_exchanges(broker)),
    )


def test_config_check_all_well(tmp_path: Path, broker: Broker, sqlite_url: str) -> None:
    config = good_config(tmp_path, broker, sqlite_url)
    code, lines = check(config)
    assert code == 0, lines
    assert [line.split(":")[0] for line in lines] == [
        "ok   settings",
        f"ok   permissions of {config}",
        f"ok   permissions of {tmp_path / 'rintik.db'}",
        "ok   database",
        "ok   broker",
        "ok   exchanges",
        "ok   queue",
    ]
    assert lines[3].endswith(f"schema version {SCHEMA_VERSION}")
    assert lines[4] == "ok   broker: connected to amqp://guest:***@127.0.0.1:5672//"


def test_config_check_reads_its_own_settings_whatever_is_bound(
    tmp_path: Path, broker: Broker, sqlite_url: str
) -> None:
    """In-process, `database` stays bound to the last database opened; the settings check
    read its tax and currency (and crashed on one without the table). It reads the file's."""
    from rintik_lite import db

    other = tmp_path / "other" / "unmigrated.db"
    other.parent.mkdir()
    db.open_database(f"sqlite:///{other}", migrate=False)  # no billing_setting table
    db.close_binding()
    config = good_config(tmp_path, broker, sqlite_url)
    code, lines = check(config)
    assert code == 0, lines
    assert lines[0].startswith("ok   settings: read from ")


def test_config_check_says_what_is_wrong_and_how_to_fix_it(
    tmp_path: Path, broker: Broker, sqlite_url: str
) -> None:
    database = tmp_path / "rintik.db"
    database.chmod(0o644)
    exchanges = [*declare_exchanges(broker), f"{broker.prefix}-absent"]
    closed = free_port()
    config = write_config(
        tmp_path / "rintik.toml",
        f'[database]\nurl = "{sqlite_url}"\n'
        + broker_section(broker, exchanges, durable=True)
        + f'[keystone]\nauth_url = "http://127.0.0.1:{closed}/v3"\n'
        'username = "rintik"\npassword = "pw"\n',
        mode=0o644,
    )
    code, lines = check(config)
    assert code == 1
    text = "\n".join(lines)
    assert "warn settings: " in text and "auth.private_key is the default 'change-me'" in text
    assert (
        f"warn permissions of {config}: the configuration file is mode 0644, readable by other "
        f"users, and it holds the secrets: chmod 600 {config}"
    ) in lines
    assert f"warn permissions of {database}: the SQLite database is mode 0644" in text
    nova = broker.exchanges["nova"]
    assert f"fail exchange {nova}: RabbitMQ refuses our declaration" in text
    assert "set [broker] durable_exchanges = false" in text
    assert f"warn exchanges: {broker.prefix}-absent not declared yet" in text
    assert lines[-1].startswith("fail keystone: ") and f"127.0.0.1:{closed}" in lines[-1]
    assert "pw" not in text.replace("pw\n", "")  # the password is never shown


def test_config_check_with_nothing_reachable(tmp_path: Path) -> None:
    closed = free_port()
    config = write_config(
        tmp_path / "rintik.toml",
        f'[database]\nurl = "sqlite:///{tmp_path}/no/such/folder/r.db"\n'
        f'[broker]\nurl = "amqp://guest:s3cret@127.0.0.1:{closed}//"\n',
    )
    code, lines = check(config)
    assert code == 1
    assert f"fail database: folder {tmp_path}/no/such/folder does not exist: create it" in lines
    (broker_line,) = [line for line in lines if line.startswith("fail broker: ")]
    assert f"cannot connect to amqp://guest:***@127.0.0.1:{closed}//" in broker_line
    assert "transport_url" in broker_line and "s3cret" not in "\n".join(lines)
    bad = write_config(tmp_path / "bad.toml", "[api]\nport = 'eighty'\n")
    assert check(bad) == (
        1,
        [
            f"fail settings: bad value for api.port (from {bad}): 'eighty' is not a "
            "non-negative integer; fix it and run `rintik-lite config check` again"
        ],
    )


def test_a_fresh_sqlite_database_is_ok_and_not_created(tmp_path: Path, broker: Broker) -> None:
    config = write_config(
        tmp_path / "rintik.toml",
        f'[database]\nurl = "sqlite:///{tmp_path}/new.db"\n[auth]\nprivate_key = "k-9"\n'
        + broker_section(broker, declare_exchanges(broker)),
    )
    code, lines = check(config)
    assert code == 0, lines
    assert "no file yet; `rintik-lite run` creates it (mode 0600)" in lines[2]
    assert not (tmp_path / "new.db").exists()


# --- logs -------------------------------------------------------------------------------------

LOGGING = """
import sys
from datetime import UTC, datetime
from rintik_lite import services
from rintik_lite.cli import setup_logging
from rintik_lite.db import open_database
from rintik_lite.settings import defaults
from tests.test_ops import create
url, level = sys.argv[1:]
setup_logging(defaults().replace(log__format="json", log__level=level), None)
open_database(url)
body = create("i-1")
batch = [services.Incoming(body)] * 2 + [services.Incoming("{")]
services.record_messages(batch, datetime.now(UTC))
"""


def test_json_logs_with_one_line_per_event_at_debug(tmp_path: Path) -> None:
    def run(level: str) -> list[dict[str, str]]:
        url = f"sqlite:///{tmp_path / level}.db"
        done = subprocess.run(
            [sys.executable, "-c", LOGGING, url, level],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("RINTIK_")},
        )
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stderr.splitlines()]

    records = [r for r in run("DEBUG") if r["logger"] == "rintik_lite.services"]
    assert {r["level"] for r in records} == {"DEBUG"}
    assert {"time", "level", "logger", "message", "thread"} <= set(records[0])
    applied, duplicate, quarantined = sorted(
        (r["message"] for r in records), key=lambda m: m.split(":")[1]
    )
    assert applied.startswith("event compute.instance.create.end ")
    assert applied.endswith(": applied to i-1") and duplicate.endswith(": duplicate")
    assert quarantined.startswith("event ? from amqp: quarantined: body is not JSON")
    assert [r for r in run("INFO") if r["logger"] == "rintik_lite.services"] == []


def test_config_check_fails_an_in_memory_database(tmp_path: Path) -> None:
    closed = free_port()
    config = write_config(
        tmp_path / "rintik.toml",
        '[database]\nurl = "sqlite:///:memory:"\n'
        f'[broker]\nurl = "amqp://guest:guest@127.0.0.1:{closed}//"\n',
    )
    code, lines = check(config)
    assert code == 1
    assert (
        "fail database: sqlite:///:memory: is an in-memory database: `rintik-lite run` refuses "
        "it (its threads cannot share it, and it is lost at exit); give a file"
    ) in lines
