"""The collector: a kombu consumer that turns the cloud's notifications into the ledger.

It declares its own durable queue, binds it to each configured exchange with the routing key
`<topic>.info` (declaring the exchanges as oslo.messaging does: topic, not auto-delete,
durable only when the cloud sets `amqp_durable_queues`), and consumes in batches: a batch is
committed in one transaction, then acknowledged with one `basic.ack(multiple=True)`. Nothing
is acknowledged before it is committed; a message whose batch could not be committed stays
unacknowledged and is redelivered, and the event store's deduplication makes that harmless.

When the broker goes away it reconnects with exponential backoff; when the database cannot
be written it keeps the batch unacknowledged and retries with the same backoff. Either way
the cause is in `status()` for /healthz.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import peewee
from kombu import Connection, Consumer, Exchange, Queue, binding
from kombu.compression import decompress

from rintik_lite import services
from rintik_lite.db import close_database, redact_url
from rintik_lite.errors import ServiceUnavailable
from rintik_lite.services import BatchResult, Incoming
from rintik_lite.settings import Settings

log = logging.getLogger(__name__)

# Errors after which the same batch may well commit later: a lock, a read-only or full disk, a
# lost PostgreSQL connection, or a competing consumer that stored the same event first.
DB_ERRORS = (
    peewee.OperationalError,
    peewee.InterfaceError,
    peewee.InternalError,
    peewee.IntegrityError,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class CollectorStatus:
    """What /healthz, /metrics and the TUI header show of the collector."""

    connected: bool = False
    broker_error: str | None = None
    database_error: str | None = None
    last_message_at: datetime | None = None
    last_commit_at: datetime | None = None
    pending: int = 0
    totals: BatchResult = field(default_factory=BatchResult)


def declare_queue(channel: Any, settings: Settings) -> Queue:
    """Declare our queue and bind it to every exchange x `<topic>.info`."""
    exchanges = [
        Exchange(
            name, type="topic", durable=settings["broker.durable_exchanges"], auto_delete=False
        )
        for name in settings["broker.exchanges"]
    ]
    bindings = [
        binding(exchange, routing_key=f"{topic}.info")
        for exchange in exchanges
        for topic in settings["broker.topics"]
    ]
    queue = Queue(settings["broker.queue"], bindings=bindings, durable=True, auto_delete=False)
    queue(channel).declare()
    return queue


class Collector:
    """start / loop / stop: `run(stop)` consumes until `stop` is set, then flushes."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        connection_factory: Callable[[], Connection] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._connection_factory = connection_factory or (
            lambda: Connection(
                settings["broker.url"],
                connect_timeout=5,
                heartbeat=30,
                # shown by RabbitMQ's management UI and `rabbitmqctl list_connections`
                transport_options={
                    "client_properties": {
                        "connection_name": f"rintik-lite collector ({settings['broker.queue']})"
                    }
                },
            )
        )
        self.status = CollectorStatus()
        self._lock = threading.Lock()
        self._batch: list[Any] = []
        self._batch_deadline = 0.0
        self._backoff = 1.0

    # -- lifecycle ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set. Never raises: errors are logged and retried."""
        try:
            while not stop.is_set():
                try:
                    self._consume(stop)
                except Exception as exc:  # broker gone, declaration refused, ...
                    self._batch.clear()  # unacknowledged: the broker redelivers them
                    self.status.connected = False
                    self.status.broker_error = f"{type(exc).__name__}: {exc}"
                    log.warning(
                        "broker %s: %s; retrying in %.0f s",
                        redact_url(self.settings["broker.url"]),
                        self.status.broker_error,
                        self._backoff,
                    )
                    stop.wait(self._backoff)
                    self._backoff = min(
                        self._backoff * 2, self.settings["broker.reconnect_max_seconds"]
                    )
        finally:
            self.status.connected = False
            close_database()

    def _consume(self, stop: threading.Event) -> None:
        with self._connection_factory() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.channel()
            queue = declare_queue(channel, self.settings)
            prefetch = max(1, self.settings["broker.batch_size"]) * 2
            consumer = Consumer(
                channel,
                queues=[queue],
                on_message=self._on_message,
                prefetch_count=prefetch,
                accept=None,
            )
            with consumer:
                self.status.connected = True
                self.status.broker_error = None
                self._backoff = 1.0
                log.info("consuming %s on %s", queue.name, redact_url(self.settings["broker.url"]))
                while not stop.is_set():
                    with suppress(TimeoutError):  # socket.timeout is TimeoutError since 3.10
                        conn.drain_events(timeout=self._wait_seconds())
                    if self._batch_due():
                        self._flush(stop)
                    conn.heartbeat_check()
                self._flush(stop)  # commit-then-ack what we hold before leaving

    # -- batching -----------------------------------------------------------------------------

    def _on_message(self, message: Any) -> None:
        if not self._batch:
            self._batch_deadline = time.monotonic() + self.settings["broker.batch_seconds"]
        self._batch.append(message)
        self.status.pending = len(self._batch)
        self.status.last_message_at = self.clock()

    def _wait_seconds(self) -> float:
        if not self._batch:
            return 0.5
        return max(0.0, min(0.5, self._batch_deadline - time.monotonic()))

    def _batch_due(self) -> bool:
        return bool(self._batch) and (
            len(self._batch) >= self.settings["broker.batch_size"]
            or time.monotonic() >= self._batch_deadline
        )

    def _flush(self, stop: threading.Event) -> None:
        """Commit the batch, then acknowledge it. On a database error keep it unacknowledged
        and retry with backoff; give up (leaving it to redelivery) only when stopping."""
        if not self._batch:
            return
        incoming = [Incoming(_body(m), "amqp") for m in self._batch]
        backoff = 0.5
        while True:
            try:
                result = services.record_messages(
                    incoming, self.clock(), self.settings["ledger.metadata_whitelist"]
                )
                break
            except DB_ERRORS as exc:
                self.status.database_error = f"{type(exc).__name__}: {exc}"
                log.error(
                    "cannot commit %d messages: %s; not acknowledged, retrying in %.1f s",
                    len(incoming),
                    self.status.database_error,
                    backoff,
                )
                close_database()  # reconnect on the next attempt
                if stop.wait(backoff):
                    self._batch.clear()  # unacknowledged: the broker will redeliver them
                    self.status.pending = 0
                    return
                backoff = min(backoff * 2, self.settings["broker.reconnect_max_seconds"])
        self._batch[-1].ack(multiple=True)
        self._batch.clear()
        self.status.pending = 0
        self.status.database_error = None
        self.status.last_commit_at = self.clock()
        self.status.totals.add(result)
        log.info(
            "batch: %d received, %d applied, %d ignored, %d duplicate, %d quarantined",
            result.received,
            result.applied,
            result.ignored,
            result.duplicate,
            result.quarantined,
        )


def _body(message: Any) -> bytes | str:
    """The raw body, decompressed if oslo's `kombu_compression` was set."""
    body: bytes | str = message.body
    compression = (message.headers or {}).get("compression")
    if compression:
        body = decompress(body, compression)
    return body


def check_broker(settings: Settings, timeout: float = 5.0) -> None:
    """Connect to the broker once; ServiceUnavailable (one line, no password) if we cannot."""
    url = settings["broker.url"]
    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        raise ServiceUnavailable(
            f"broker {redact_url(url)} cannot be reached: {exc} (check [broker] url)"
        ) from None
