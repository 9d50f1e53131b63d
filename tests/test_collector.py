"""The collector against the real RabbitMQ: published exactly as oslo.messaging does."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import pytest
from kombu import Connection, Exchange

from rintik_lite import reading, services
from rintik_lite.collector import MERGED_BATCHES, Collector, _Batch, _merged, declare_queue
from rintik_lite.db import sqlite_path
from rintik_lite.ledger.notifications import format_time
from rintik_lite.models import Event
from rintik_lite.reading import PendingRead
from tests.conftest import Broker, envelope, notification, refuse_events_of
from tests.test_services import P1, instance, iso, volume


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@contextmanager
def running(collector: Collector) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: collector.status.connected)
        yield stop
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "collector did not stop"


def test_envelope_and_flat_messages_become_the_ledger(broker: Broker, db_url: str) -> None:
    collector = Collector(broker.settings(db_url))
    with running(collector):
        broker.publish("nova", instance("create.end", 0))
        broker.publish("openstack", volume("create.end", 1), v2=False)  # the 1.0 flat form
        broker.publish("openstack", volume("attach.end", 2, attached=["i-1"]))
        broker.publish("nova", instance("delete.end", 5, deleted=5))
        wait_for(lambda: collector.status.totals.applied == 4)
    assert [(r["entity_id"], r["start"], r["end"]) for r in services.usage(P1)] == [
        ("i-1", iso(0), iso(5)),
        ("v-1", iso(0), iso(2)),
        ("v-1", iso(2), None),
    ]
    assert broker.queue_depth() == 0  # all acknowledged, after the commit


def test_redelivered_and_bad_messages(broker: Broker, db_url: str) -> None:
    collector = Collector(broker.settings(db_url))
    message = instance("create.end", 0)
    with running(collector):
        broker.publish("nova", message)
        broker.publish("nova", message)  # a redelivery or a duplicate publish
        with broker.connection.channel() as channel:
            exchange = Exchange(broker.exchanges["glance"], type="topic", durable=False)
            from kombu import Producer

            Producer(channel).publish(
                "not json at all",
                exchange=exchange,
                declare=[exchange],
                routing_key="notifications.info",
                content_type="application/json",
            )
        wait_for(lambda: collector.status.totals.received == 3)
    totals = collector.status.totals
    assert (totals.applied, totals.duplicate, totals.quarantined) == (1, 1, 1)
    assert services.quarantined()[0]["body"] == "not json at all"
    assert broker.queue_depth() == 0


def test_compressed_bodies_are_read_and_one_that_does_not_decompress_is_quarantined(
    broker: Broker, db_url: str
) -> None:
    """oslo's `kombu_compression` (gzip or bz2) compresses the body and names it in the
    `compression` header: the ledger gets what was sent. A body that does not decompress is
    quarantined with the reason, acknowledged after the commit, and the messages after it
    are applied: it does not stop the collector."""
    collector = Collector(broker.settings(db_url))
    with running(collector):
        broker.publish("nova", instance("create.end", 0), compression="gzip")
        broker.publish("openstack", volume("create.end", 1), compression="bzip2")
        broker.publish(
            "nova", {}, body=b"\x1f\x8b not gzip", headers={"compression": "application/x-gzip"}
        )
        broker.publish("nova", instance("delete.end", 5, deleted=5))
        wait_for(lambda: collector.status.totals.received == 4)
    totals = collector.status.totals
    assert (totals.applied, totals.quarantined) == (3, 1)
    assert [(r["entity_id"], r["start"], r["end"]) for r in services.usage(P1)] == [
        ("i-1", iso(0), iso(5)),
        ("v-1", iso(0), None),
    ]
    [bad] = services.quarantined()
    assert bad["reason"].startswith("body does not decompress (application/x-gzip): ")
    assert bad["body"].endswith(" not gzip") and bad["source"] == "amqp"
    assert broker.queue_depth() == 0


def test_a_message_whose_recording_fails_is_quarantined_and_the_rest_of_its_batch_applied(
    broker: Broker, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that fails a whole batch (not the database: the same batch would fail again)
    must not stop the writer or hold the batch for ever: its messages are recorded one by
    one, the one that still fails is quarantined with the error, the others are applied,
    all are acknowledged, and the collector goes on."""

    def broken(seen: Any) -> None:
        raise RuntimeError("a bug in applying volume types")

    monkeypatch.setattr(services, "_apply_volume_type", broken)
    collector = Collector(broker.settings(db_url, broker__batch_seconds=0.5))
    type_create = notification(
        "volume_type.create", {"volume_types": {"id": "vt-1", "name": "ssd"}}, iso(0)
    )
    with running(collector):
        broker.publish("nova", instance("create.end", 0))
        broker.publish("openstack", type_create)
        broker.publish("openstack", volume("create.end", 1))
        wait_for(lambda: collector.status.totals.received == 3)
        broker.publish("nova", instance("delete.end", 5, deleted=5))
        wait_for(lambda: collector.status.totals.received == 4)
    totals = collector.status.totals
    assert (totals.applied, totals.quarantined) == (3, 1)
    assert [(r["entity_id"], r["end"]) for r in services.usage(P1)] == [
        ("i-1", iso(5)),
        ("v-1", None),
    ]
    [bad] = services.quarantined()
    assert bad["event_type"] == "volume_type.create"
    assert bad["reason"] == "internal error: RuntimeError('a bug in applying volume types')"
    assert {e.event_type for e in Event.select()} == {
        "compute.instance.create.end",
        "volume.create.end",
        "compute.instance.delete.end",
    }
    assert broker.queue_depth() == 0


def test_a_message_the_database_always_refuses_does_not_hold_back_the_queue(
    broker: Broker, db_url: str
) -> None:
    """An IntegrityError that comes back however often the batch is retried (a trigger of
    the database's own here) would hold the batch unacknowledged, and every batch after
    it, for ever. The refused message is quarantined with the database's reason, the rest
    is applied, everything is acknowledged, and the collector goes on."""
    refuse_events_of("v-1")
    collector = Collector(broker.settings(db_url, broker__batch_seconds=0.5))
    with running(collector):
        broker.publish("nova", instance("create.end", 0))
        broker.publish("openstack", volume("create.end", 1))
        broker.publish("openstack", volume("create.end", 2, "v-2"))
        wait_for(lambda: collector.status.totals.received == 3)
        broker.publish("nova", instance("delete.end", 5, deleted=5))
        wait_for(lambda: collector.status.totals.received == 4)
    totals = collector.status.totals
    assert (totals.applied, totals.quarantined) == (3, 1)
    assert collector.status.database_error is None
    [refused] = services.quarantined()
    assert refused["event_type"] == "volume.create.end"
    assert refused["reason"].startswith("refused by the database: IntegrityError: ")
    assert [(r["entity_id"], r["end"]) for r in services.usage(P1)] == [
        ("i-1", iso(5)),
        ("v-2", None),
    ]
    assert broker.queue_depth() == 0


def test_nothing_is_acknowledged_before_it_is_committed(broker: Broker, sqlite_url: str) -> None:
    """Another process holds the SQLite write lock: the batch cannot commit, so it is held
    unacknowledged and retried; once the lock is released it commits, then is acked."""
    collector = Collector(broker.settings(sqlite_url, database__busy_timeout_ms=50))
    path = sqlite_path(sqlite_url)
    assert path is not None
    locker = sqlite3.connect(path, isolation_level=None)
    with running(collector):
        locker.execute("BEGIN IMMEDIATE")
        broker.publish("nova", instance("create.end", 0))
        wait_for(lambda: collector.status.database_error is not None)
        assert "locked" in (collector.status.database_error or "")
        assert Event.select().count() == 0
        assert collector.status.pending == 1
        assert collector.status.totals.received == 0
        locker.execute("ROLLBACK")
        wait_for(lambda: collector.status.totals.applied == 1)
    locker.close()
    assert collector.status.database_error is None
    assert Event.select().count() == 1
    assert broker.queue_depth() == 0


def test_batches_waiting_for_a_busy_writer_are_committed_together(
    broker: Broker, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog: while the writer commits a batch, the next ones are received and wait;
    it then commits those (up to `MERGED_BATCHES`) in one transaction, acknowledged after
    it, with the same ledger as batch by batch."""
    settings = broker.settings(db_url, broker__batch_size=10)
    with Connection(broker.url) as conn:
        declare_queue(conn.channel(), settings)
    for n in range(60):
        broker.publish("nova", instance("update", n, instance_id=f"i-{n % 7}"))
    wait_for(lambda: broker.queue_depth() == 60)
    sizes: list[int] = []
    record = services.record_read

    def slow(batch: services.ReadBatch, now: datetime) -> services.BatchResult:
        sizes.append(batch.received)
        time.sleep(0.3)  # slower than receiving: the next batches wait for the writer
        return record(batch, now)

    monkeypatch.setattr(services, "record_read", slow)
    collector = Collector(settings)
    with running(collector):
        wait_for(lambda: collector.status.totals.received == 60)
    assert sum(sizes) == 60
    assert max(sizes) == 10 * MERGED_BATCHES > 10 and sizes.count(max(sizes)) >= 2
    assert collector.status.totals.applied == 60
    assert Event.select().count() == 60
    wait_for(lambda: broker.queue_depth() == 0)


def test_only_batches_of_the_same_connection_are_joined() -> None:
    """A batch received on a connection since lost is never acknowledged (the broker
    redelivers it): it must not share an acknowledgement with one of the new connection."""
    bodies = [envelope(instance("update", n)) for n in range(6)]
    messages = [services.Incoming(body, "amqp") for body in bodies]

    def batch(generation: int, part: slice) -> _Batch:
        return _Batch(generation, list(bodies[part]), PendingRead(messages[part], [], None))

    joined = _merged([batch(1, slice(0, 2)), batch(1, slice(2, 4)), batch(2, slice(4, 6))])
    assert [(b.generation, b.messages) for b in joined] == [(1, bodies[:4]), (2, bodies[4:])]
    assert joined[0].read.result() == services.read_messages(messages[:4], [])
    assert joined[1].read.result() == services.read_messages(messages[4:], [])


def test_unacknowledged_messages_are_redelivered_after_a_stop(broker: Broker, db_url: str) -> None:
    settings = broker.settings(db_url)
    with Connection(broker.url) as conn:
        declare_queue(conn.channel(), settings)
    for hours in range(5):
        broker.publish("nova", instance("update", hours))
    # A consumer that dies holding the batch (no commit): the broker keeps every message.
    with Connection(broker.url) as conn:
        queue = declare_queue(conn.channel(), settings)
        held = [queue(conn.channel()).get(no_ack=False) for _ in range(5)]
        assert all(m is not None for m in held)
    wait_for(lambda: broker.queue_depth() == 5)
    collector = Collector(settings)
    with running(collector):
        wait_for(lambda: collector.status.totals.applied == 5)
    assert Event.select().count() == 5
    assert broker.queue_depth() == 0


def test_declares_exchanges_as_oslo_does_and_clash_is_reported(broker: Broker, db_url: str) -> None:
    # oslo declares non-durable topic exchanges; declaring ours durable would clash.
    broker.publish("nova", instance("create.end", 0))
    collector = Collector(
        broker.settings(db_url, broker__durable_exchanges=True, broker__reconnect_max_seconds=0.2)
    )
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    wait_for(lambda: collector.status.broker_error is not None)
    stop.set()
    thread.join(10)
    assert "PRECONDITION_FAILED" in (collector.status.broker_error or "")
    assert "durable" in (collector.status.broker_error or "")


def test_oslo_messaging_notifier_end_to_end(broker: Broker, db_url: str) -> None:
    """oslo.messaging's own Notifier (messagingv2, rabbit driver) publishes; we bill."""
    import oslo_messaging
    from oslo_config import cfg

    collector = Collector(broker.settings(db_url))
    url = broker.url.replace("amqp://", "rabbit://").rstrip("/") + "/"
    notifiers = {}
    transports = []
    for service in ("nova", "openstack"):
        oslo_messaging.set_transport_defaults(control_exchange=broker.exchanges[service])
        conf = cfg.ConfigOpts()
        conf([])
        transport = oslo_messaging.get_notification_transport(conf, url=url)
        transports.append(transport)
        notifiers[service] = oslo_messaging.Notifier(
            transport,
            publisher_id=f"{service}.host-1",
            driver="messagingv2",
            topics=["notifications"],
        )
    started = format_time(datetime.now(UTC))
    try:
        with running(collector):
            for service, message in [
                ("nova", instance("create.end", 0)),
                ("openstack", volume("create.end", 1)),
                ("nova", instance("resize.confirm.end", 3, flavor="m1.large", launched=3)),
                ("openstack", volume("attach.end", 4, attached=["i-1"])),
                ("openstack", volume("resize.end", 6, size=20, attached=["i-1"])),
                ("nova", instance("delete.end", 8, flavor="m1.large", launched=3, deleted=8)),
            ]:
                notifiers[service].info({}, message["event_type"], message["payload"])
            wait_for(lambda: collector.status.totals.applied == 6)
    finally:
        for transport in transports:
            transport.cleanup()
        oslo_messaging.set_transport_defaults(control_exchange="openstack")
        _purge_oslo_default_queue(broker)
    # Instance times come from the payload (launched_at, deleted_at); cinder's attach and
    # resize carry none, so theirs is the timestamp the Notifier stamped when it sent them.
    stamped = {e.event_type: format_time(e.event_time) for e in Event.select()}
    attach, resize = stamped["volume.attach.end"], stamped["volume.resize.end"]
    assert started <= attach < resize <= format_time(datetime.now(UTC))
    rows = services.usage(P1)
    assert [
        (r["entity_id"], r["start"], r["end"], r.get("flavor") or r.get("size")) for r in rows
    ] == [
        ("i-1", iso(0), iso(3), "m1.small"),
        ("v-1", iso(0), attach, 10),
        ("i-1", iso(3), iso(8), "m1.large"),
        ("v-1", attach, resize, 10),
        ("v-1", resize, None, 20),
    ]
    assert all(e.message_id for e in Event.select())


def _purge_oslo_default_queue(broker: Broker) -> None:
    """oslo's publisher binds a `notifications.info` queue to each exchange it uses; our
    exchanges are deleted after the test, so empty what it routed there."""
    with broker.connection.channel() as channel, suppress(Exception):
        channel.queue_purge("notifications.info")


def _close_from_the_broker(connection_name: str) -> None:
    """Cut our connection from RabbitMQ's side, as a broker restart or a network drop does."""
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    pids = [
        line.split("\t", 1)[0]
        for line in listing.stdout.splitlines()
        if f'"{connection_name}"' in line
    ]
    assert pids, f"no connection named {connection_name!r}"
    for pid in pids:
        subprocess.run(
            ["rabbitmqctl", "close_connection", pid, "test: broker cut"],
            capture_output=True,
            check=True,
            timeout=60,
        )


def test_reconnects_with_backoff_after_the_broker_drops_us(broker: Broker, db_url: str) -> None:
    collector = Collector(broker.settings(db_url))
    with running(collector):
        broker.publish("nova", instance("create.end", 0))
        wait_for(lambda: collector.status.totals.applied == 1)
        _close_from_the_broker(f"rintik-lite collector ({broker.queue})")
        wait_for(lambda: not collector.status.connected)
        assert collector.status.broker_error is not None
        broker.publish("nova", instance("update", 1))  # queued while we are away
        wait_for(lambda: collector.status.connected, seconds=30)
        wait_for(lambda: collector.status.totals.applied == 2)
    assert collector.status.broker_error is None
    assert Event.select().count() == 2
    assert broker.queue_depth() == 0


def test_a_reader_process_that_dies_loses_no_message(broker: Broker, db_url: str) -> None:
    """The collector's reader is killed while batches are in flight: its batch is read by
    the writer instead, a new reader takes the next ones, and every message is committed
    and acknowledged, none twice and none quarantined."""
    import multiprocessing
    import os
    import signal

    before = {p.pid for p in multiprocessing.active_children()}
    collector = Collector(broker.settings(db_url, broker__batch_size=20, broker__readers=1))
    readers = [p.pid for p in multiprocessing.active_children() if p.pid not in before]
    assert len(readers) == 1  # started with the collector, before its threads
    published = 0
    with running(collector):
        for hours in range(60):
            broker.publish("nova", instance("update", hours))
            broker.publish("openstack", volume("resize.end", hours, size=1 + hours))
            published += 2
        wait_for(lambda: collector.status.totals.received >= 20)
        for pid in readers:
            os.kill(pid, signal.SIGKILL)
        for hours in range(60, 120):
            broker.publish("nova", instance("update", hours))
            published += 1
        wait_for(lambda: collector.status.totals.received == published, 60)
        replaced = [p.pid for p in multiprocessing.active_children() if p.pid not in before]
    totals = collector.status.totals
    assert (totals.applied, totals.duplicate, totals.quarantined) == (published, 0, 0)
    assert Event.select().count() == published
    assert broker.queue_depth() == 0
    assert replaced and replaced != readers  # a new reader took the batches after


def test_a_collector_run_again_reads_with_reader_processes_again(
    broker: Broker, db_url: str
) -> None:
    """The demo ingests its history with one run of the collector, then runs it again: a
    run stops its reader processes when it ends, and `reopen_readers` gives the next run
    new ones."""
    import multiprocessing

    before = {p.pid for p in multiprocessing.active_children()}
    collector = Collector(broker.settings(db_url, broker__batch_size=20, broker__readers=1))
    first = [p.pid for p in multiprocessing.active_children() if p.pid not in before]
    assert len(first) == reading.usable_readers(1) == 1
    for round_ in range(2):
        if round_ == 1:
            assert collector._readers.closed  # the first run stopped its reader
            collector.reopen_readers()
        with running(collector):
            for hours in range(30):
                broker.publish("nova", instance("update", 30 * round_ + hours))
            wait_for(lambda r=round_: collector.status.totals.received == 30 * (r + 1), 60)
            readers = [p.pid for p in multiprocessing.active_children() if p.pid not in before]
            assert len(readers) == 1
            assert collector._readers.pool is not None and not collector._readers.closed
            if round_ == 1:
                assert readers != first  # new ones: the first run's ended with it
    assert [p.pid for p in multiprocessing.active_children() if p.pid not in before] == []
    assert (collector.status.totals.applied, Event.select().count()) == (60, 60)
