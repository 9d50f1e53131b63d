"""Shared fixtures: real SQLite files, the real PostgreSQL, the real RabbitMQ.

The services are reached on loopback only. When one cannot be reached the test run fails
(not skips): `tests/run.sh` starts them first.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import peewee
import pytest
from kombu import Connection, Exchange, Producer, Queue

from rintik_lite import services
from rintik_lite.db import close_database, database, is_sqlite, open_database
from rintik_lite.settings import Settings, defaults

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("RINTIK_CORPUS", ROOT.parent / "shared" / "notifications"))
POSTGRES_URL = os.environ.get(
    "RINTIK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BROKER_URL = os.environ.get("RINTIK_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


# Each pytest process works in a schema of its own, so that runs side by side never share
# tables; subprocesses reach it through the same URL.
SCHEMA = f"rintik_test_{os.getpid()}"


def postgres_url() -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{SCHEMA}"


def reset_postgres() -> str:
    """Empty this process's schema and return the URL that uses it."""
    from playhouse.db_url import connect

    db = connect(POSTGRES_URL)
    try:
        db.connect()
    except peewee.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} cannot be reached ({exc}); run tests/run.sh")
    db.execute_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    db.execute_sql(f"CREATE SCHEMA {SCHEMA}")
    db.close()
    return postgres_url()


@pytest.fixture(scope="session", autouse=True)
def _drop_postgres_schema() -> Iterator[None]:
    yield
    from playhouse.db_url import connect

    db = connect(POSTGRES_URL)
    try:
        db.connect()
        db.execute_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        db.close()
    except peewee.PeeweeException:
        pass  # the run already reported an unreachable database


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind, migrated, bound to `rintik_lite.db.database`."""
    url = f"sqlite:///{tmp_path / 'rintik.db'}" if request.param == "sqlite" else reset_postgres()
    open_database(url)
    yield url
    close_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'rintik.db'}"
    open_database(url)
    yield url
    close_database()


def settings_for(db_url: str, **changes: Any) -> Settings:
    return defaults().replace(database__url=db_url, **changes)


# --- notifications as oslo.messaging puts them on the wire ---------------------------------


def corpus_files(pattern: str = "*/*.json") -> list[Path]:
    if not CORPUS.is_dir():
        pytest.fail(f"the notification corpus is missing at {CORPUS}")
    return sorted(p for p in CORPUS.glob(pattern) if "raw_ref_form" not in p.parts)


def load_corpus(relative: str) -> dict[str, Any]:
    return json.loads((CORPUS / relative).read_text())


def envelope(message: dict[str, Any]) -> str:
    """The messagingv2 body: the message JSON-encoded as a string inside the envelope."""
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(message)})


def notification(
    event_type: str,
    payload: dict[str, Any],
    timestamp: str,
    *,
    message_id: str | None = None,
    publisher_id: str = "compute.host-1",
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An inner message dict exactly as oslo.messaging's Notifier builds it."""
    message = {
        "message_id": message_id or str(uuid.uuid4()),
        "publisher_id": publisher_id,
        "event_type": event_type,
        "priority": "INFO",
        "payload": payload,
        "timestamp": timestamp,
        "_unique_id": uuid.uuid4().hex,
    }
    for key, value in (context or {}).items():
        message[f"_context_{key}"] = value
    return message


def record(*bodies: str | bytes | dict[str, Any], now: datetime = NOW) -> services.BatchResult:
    """Feed bodies (dicts are sent as envelopes) through the collector's code path."""
    return services.record_messages(
        [services.Incoming(envelope(b) if isinstance(b, dict) else b) for b in bodies], now
    )


def refuse_events_of(entity_id: str) -> None:
    """Make the bound database itself refuse every event of `entity_id`, however often it
    is tried: a trigger raising a constraint error (an IntegrityError through either
    driver), as a constraint added by hand, or a bug breaking one, would."""
    if is_sqlite():
        database.execute_sql(
            "CREATE TRIGGER refuse_event BEFORE INSERT ON event "
            f"WHEN NEW.entity_id = '{entity_id}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
        )
        return
    database.execute_sql(
        "CREATE FUNCTION refuse_event() RETURNS trigger AS $$ BEGIN "
        f"IF NEW.entity_id = '{entity_id}' THEN "
        "RAISE EXCEPTION 'refused by the test trigger' USING ERRCODE = 'check_violation'; "
        "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
    )
    database.execute_sql(
        "CREATE TRIGGER refuse_event BEFORE INSERT ON event "
        "FOR EACH ROW EXECUTE FUNCTION refuse_event()"
    )


class Broker:
    """Our test's private exchanges on the real RabbitMQ, published to as oslo does."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"test-{uuid.uuid4().hex[:8]}"
        self.connection = Connection(url, connect_timeout=5)
        try:
            self.connection.ensure_connection(max_retries=1)
        except Exception as exc:
            pytest.fail(f"RabbitMQ at {url} cannot be reached ({exc}); run tests/run.sh")
        self.exchanges = {
            name: f"{self.prefix}-{name}"
            for name in ("nova", "openstack", "neutron", "glance", "keystone")
        }
        self.queue = f"{self.prefix}.rintik"

    def settings(self, db_url: str, **changes: Any) -> Settings:
        values: dict[str, Any] = {
            "broker__url": self.url,
            "broker__queue": self.queue,
            "broker__exchanges": list(self.exchanges.values()),
            "broker__batch_seconds": 0.1,
        }
        return settings_for(db_url, **{**values, **changes})

    def publish(
        self,
        service: str,
        message: dict[str, Any],
        *,
        v2: bool = True,
        topic: str = "notifications",
        body: bytes | None = None,
        **options: Any,
    ) -> None:
        """basic.publish as impl_rabbit's notify_send does it: topic exchange, not durable,
        routing key `<topic>.<priority>`, JSON body (the envelope for messagingv2),
        content type application/json, persistent. `body` replaces the JSON; `options`
        go to kombu's publish (`compression`, as oslo's `kombu_compression` sets it)."""
        exchange = Exchange(self.exchanges[service], type="topic", durable=False, auto_delete=False)
        if body is None:
            body = (envelope(message) if v2 else json.dumps(message)).encode()
        with self.connection.channel() as channel:
            Producer(channel).publish(
                body,
                **options,
                exchange=exchange,
                declare=[exchange],
                routing_key=f"{topic}.{message.get('priority', 'INFO').lower()}",
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
            )

    def queue_depth(self) -> int:
        with self.connection.channel() as channel:
            declared = Queue(self.queue, durable=True, channel=channel).queue_declare(passive=True)
            return int(declared.message_count)

    def close(self) -> None:
        with self.connection.channel() as channel, suppress(Exception):
            channel.queue_delete(self.queue)  # the test may never have declared it
        with self.connection.channel() as channel:
            for name in self.exchanges.values():
                with contextlib.suppress(Exception):
                    channel.exchange_delete(name)
        self.connection.release()


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = Broker(BROKER_URL)
    yield b
    b.close()


def ledger_rows(project_id: str) -> list[dict[str, Any]]:
    return services.usage(project_id)


__all__ = ["NOW", "database"]
