"""The collector: a kombu consumer that turns the cloud's notifications into the ledger.

It declares its own durable queue, binds it to each configured exchange with the routing key
`<topic>.info` (declaring the exchanges as oslo.messaging does: topic, not auto-delete,
durable only when the cloud sets `amqp_durable_queues`), and consumes in batches: a batch is
committed in one transaction, then acknowledged with one `basic.ack(multiple=True)`. Nothing
is acknowledged before it is committed; a message whose batch could not be committed stays
unacknowledged and is redelivered, and the event store's deduplication makes that harmless.

Two threads and `broker.readers` processes share the work: the consumer (the thread `run` is
called in) receives and batches the notifications, and acknowledges; a reader process
(`reading`) reads each batch (decodes and parses it: as much Python as recording it, which
in this process would hold the GIL the two threads share); a writer thread of the
collector's own commits the batches, one at a time, in the order received. While the writer
commits one batch the consumer receives the next and a reader reads it: SQLite's and
psycopg2's C code releases the GIL while it writes. Without readers (0, or one core) the
writer reads each batch before committing it. A reader that dies loses nothing: the writer
reads its batch itself, and the next batch starts another reader. Only the
consumer touches the broker connection (kombu's is not thread-safe): it acknowledges a batch
once the writer reports it committed, with `basic.ack(multiple=True)` on its last message,
which covers the earlier batches too as they were committed before it. On a plain `amqp://`
URL the connection reads the socket in blocks (`amqp_buffered`), not field by field, and
the deliveries whole in what it read are cut out of it without py-amqp's frame handling or
kombu's Message (`amqp_buffered.take_deliveries`); the rest goes through kombu as usual.

When the broker goes away it reconnects with exponential backoff; when the database cannot
be written it keeps the batch unacknowledged and retries with the same backoff. Either way
the cause is in `status()` for /healthz. A batch that fails on a bug is recorded again one
message at a time, and the message that still fails is quarantined (`services.record_read`):
the writer thread never dies with batches in its hands.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kombu import Connection, Consumer, Exchange, Queue, binding

from rintik_lite import amqp_buffered, reading, services
from rintik_lite.db import close_database, redact_url
from rintik_lite.errors import ServiceUnavailable
from rintik_lite.services import BatchResult, Incoming, ReadBatch
from rintik_lite.settings import Settings

log = logging.getLogger(__name__)


#: How often the consumer lets kombu send and check heartbeats (it asks for about once a
#: second; per message it was 2 % of the collector's samples).
HEARTBEAT_TICK_SECONDS = 1.0


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
            lambda: amqp_buffered.connection(
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
        # Batches go to the writer through `_handoff` (up to two wait while it commits
        # another) and come back through `_committed`; `_in_flight` counts the messages between.
        self._handoff: queue.Queue[_Batch | None] = queue.Queue(maxsize=MERGED_BATCHES)
        self._committed: queue.Queue[tuple[_Batch, BatchResult | None]] = queue.Queue()
        self._in_flight = 0
        self._generation = 0  # the broker connection a batch was received on
        self._writer: threading.Thread | None = None
        self._stop = threading.Event()
        # Made now, before `Runtime` starts its threads, so they are forked (`reading`).
        self._readers = reading.Readers(reading.usable_readers(settings["broker.readers"]))

    # -- lifecycle ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set. Never raises: errors are logged and retried. It
        stops its reader processes when it returns: to run again with readers, call
        `reopen_readers` first."""
        self._stop = stop
        self._writer = threading.Thread(
            target=self._write, name=f"{threading.current_thread().name}-writer", daemon=True
        )
        self._writer.start()
        try:
            while not stop.is_set():
                try:
                    self._consume(stop)
                except Exception as exc:  # broker gone, declaration refused, ...
                    # Unacknowledged: the broker redelivers them. What the writer still
                    # holds of this connection is committed but never acknowledged here.
                    self._generation += 1
                    self._batch.clear()
                    self.status.pending = self._in_flight
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
            self._handoff.put(None)  # the writer ends once it has done what it holds
            self._writer.join()
            self._readers.close()
            close_database()

    def reopen_readers(self) -> None:
        """New reader processes for the next `run`, when the last one stopped them (the
        demo ingests its history with one run, then starts the runtime's). Without them,
        a run reads in its consumer's thread. Starting them takes a moment (a fork server
        in a process with threads): the demo does it before it says it is ready."""
        if self._readers.closed:
            self._readers = reading.Readers(self._readers.readers)

    def _consume(self, stop: threading.Event) -> None:
        with self._connection_factory() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.channel()
            queue = declare_queue(channel, self.settings)
            # Three batches: one being committed and two waiting for the writer (committed
            # together next, `MERGED_BATCHES`), or being received.
            prefetch = max(1, self.settings["broker.batch_size"]) * 3
            consumer = Consumer(
                channel,
                queues=[queue],
                on_message=self._on_message,
                # A body kombu cannot decompress: batched as the others, to be quarantined.
                on_decode_error=self._on_undecodable,
                prefetch_count=prefetch,
                accept=None,
            )
            with consumer:
                self.status.connected = True
                self.status.broker_error = None
                self._backoff = 1.0
                log.info("consuming %s on %s", queue.name, redact_url(self.settings["broker.url"]))
                generation = self._generation
                next_tick = 0.0
                batch_size = max(1, self.settings["broker.batch_size"])
                link = conn.connection  # py-amqp's, whose buffer deliveries are cut from
                # Once round per message that py-amqp delivers (drain_events returns after
                # each), or per run of deliveries already whole in the socket buffer
                # (take_deliveries, up to the end of the batch): what needs no doing is not
                # done. Only a batch in flight can have been committed.
                while not stop.is_set():
                    room = batch_size - len(self._batch)
                    taken = amqp_buffered.take_deliveries(
                        link, channel, self._on_message, room if room > 0 else batch_size
                    )
                    if not taken:
                        with suppress(TimeoutError):  # socket.timeout: TimeoutError since 3.10
                            conn.drain_events(timeout=self._wait_seconds())
                    if self._in_flight:
                        self._acknowledge(generation)
                    if self._batch_due():
                        self._hand_off(generation, wait=False)
                    if (now := time.monotonic()) >= next_tick:
                        conn.heartbeat_check()  # kombu: "approximately every second"
                        next_tick = now + HEARTBEAT_TICK_SECONDS
                # Commit-then-ack what we hold before leaving.
                self._hand_off(generation, wait=True)
                while self._in_flight:
                    self._acknowledge(generation, wait=0.1)
                    conn.heartbeat_check()

    # -- batching -----------------------------------------------------------------------------

    def _on_message(self, message: Any) -> None:
        if not self._batch:
            self._batch_deadline = time.monotonic() + self.settings["broker.batch_seconds"]
        self._batch.append(message)
        self.status.pending = len(self._batch)
        self.status.last_message_at = self.clock()

    def _on_undecodable(self, message: Any, exc: Exception) -> None:
        """kombu's `on_decode_error`: `message.errors` holds why (see `_incoming`)."""
        self._on_message(message)

    def _wait_seconds(self) -> float:
        if self._in_flight:
            return 0.01  # back soon to acknowledge what the writer commits
        if not self._batch:
            return 0.5
        return max(0.0, min(0.5, self._batch_deadline - time.monotonic()))

    def _batch_due(self) -> bool:
        return bool(self._batch) and (
            len(self._batch) >= self.settings["broker.batch_size"]
            or time.monotonic() >= self._batch_deadline
        )

    def _hand_off(self, generation: int, wait: bool) -> None:
        """Give the batch to the writer; if two already wait, keep receiving (`wait`
        False: the prefetch limit stops the broker sending more) or wait (when leaving)."""
        # Only this thread puts: a queue not full now takes the batch without waiting.
        if not self._batch or (not wait and self._handoff.full()):
            return
        incoming = [_incoming(m) for m in self._batch]
        # Read by a reader process (or, without one, in the writer thread) while the writer
        # commits the batch before.
        read = self._readers.submit(incoming, self.settings["ledger.metadata_whitelist"])
        self._handoff.put(_Batch(generation, self._batch, read))
        self._in_flight += len(self._batch)
        self._batch = []

    def _acknowledge(self, generation: int, wait: float = 0) -> None:
        """Acknowledge every batch the writer has committed (received on this connection)."""
        while True:
            try:
                batch, result = self._committed.get(block=wait > 0, timeout=wait or None)
            except queue.Empty:
                break
            wait = 0
            self._in_flight -= len(batch.messages)
            if result is None or batch.generation != generation:
                continue  # not committed (stopping), or its connection is gone: redelivered
            batch.messages[-1].ack(multiple=True)
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
        self.status.pending = len(self._batch) + self._in_flight

    # -- the writer thread ------------------------------------------------------------------

    def _write(self) -> None:
        """Commit the batches handed off, in order, until given None: those already waiting
        when the writer is free (a backlog) in one transaction (`MERGED_BATCHES`)."""
        try:
            last = False
            while not last and (batch := self._handoff.get()) is not None:
                batches = [batch]
                while len(batches) < MERGED_BATCHES:
                    try:
                        waiting = self._handoff.get_nowait()
                    except queue.Empty:
                        break
                    if waiting is None:
                        last = True
                        break
                    batches.append(waiting)
                for merged in _merged(batches):
                    self._committed.put((merged, self._commit(merged)))
        finally:
            close_database()

    def _commit(self, batch: _Batch) -> BatchResult | None:
        """Commit one batch. On a database error retry with backoff (it stays
        unacknowledged meanwhile); give up, returning None, only when stopping. A bug that
        fails the batch is contained by `record_read` (message by message); whatever still
        escapes is retried the same way, so that the writer thread never dies with batches
        in its hands (the consumer would wait for it for ever)."""
        backoff = 0.5
        read = batch.read.result()
        while True:
            try:
                result = services.record_read(read, self.clock())
            except Exception as exc:  # services.DB_ERRORS, or a bug record_read let through
                self.status.database_error = f"{type(exc).__name__}: {exc}"
                log.error(
                    "cannot commit %d messages: %s; not acknowledged, retrying in %.1f s",
                    len(batch.messages),
                    self.status.database_error,
                    backoff,
                )
                close_database()  # reconnect on the next attempt
                if self._stop.wait(backoff):
                    return None  # unacknowledged: the broker will redeliver them
                backoff = min(backoff * 2, self.settings["broker.reconnect_max_seconds"])
            else:
                self.status.database_error = None
                return result


@dataclass(frozen=True)
class _Batch:
    """Messages received on one connection, and what they say, committed together."""

    generation: int
    messages: list[Any]
    read: reading.PendingRead | _Joined


#: Batches the writer commits in one transaction when it finds them waiting. Under a
#: backlog each transaction then holds up to this many batches, which share the pages they
#: write: recording the bench's 50,000 events 1,000 at a time wrote 14.0 KB of WAL an event,
#: 2,000 at a time 9.9 KB (bench/RESULTS.md, session 14). The prefetch stays three batches:
#: no more messages are held than before, only handed to the writer sooner.
MERGED_BATCHES = 2


class _Joined:
    """Batches read, as one: what `read_messages` gives for their messages together."""

    def __init__(self, reads: list[reading.PendingRead | _Joined]) -> None:
        self.reads = reads

    def result(self) -> ReadBatch:
        done = [read.result() for read in self.reads]
        return ReadBatch(
            sum(r.received for r in done),
            [p for r in done for p in r.parsed],
            [u for r in done for u in r.unreadable],
        )


def _merged(batches: list[_Batch]) -> list[_Batch]:
    """The batches, those received on the same connection one after another joined into one
    (acknowledging its last message acknowledges them all)."""
    merged: list[_Batch] = []
    for batch in batches:
        if merged and merged[-1].generation == batch.generation:
            last = merged.pop()
            batch = _Batch(
                batch.generation, last.messages + batch.messages, _Joined([last.read, batch.read])
            )
        merged.append(batch)
    return merged


def _incoming(message: Any) -> Incoming:
    """The message's body as sent. kombu's Message has already decompressed a body sent
    compressed (oslo's `kombu_compression`, header `compression`); one that does not
    decompress keeps the bytes received, and `errors` says why: it is quarantined with that
    reason, rather than raising out of the consumer (which would reconnect, be redelivered
    the same message, and stop there for ever)."""
    errors = getattr(message, "errors", None)
    if errors:
        compression = (message.headers or {}).get("compression")
        reason = f"body does not decompress ({compression}): {errors[0][1]}"
        return Incoming(message.body, "amqp", reason)
    return Incoming(message.body, "amqp")


def check_broker(settings: Settings, timeout: float = 5.0) -> None:
    """Connect to the broker once; ServiceUnavailable (one line, no password) if we cannot."""
    url = settings["broker.url"]
    try:
        with amqp_buffered.connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        raise ServiceUnavailable(
            f"broker {redact_url(url)} cannot be reached: {exc} (check [broker] url)"
        ) from None
