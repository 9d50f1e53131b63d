"""The ledger use cases on real SQLite and PostgreSQL: store, deduplicate, quarantine, fold."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import peewee
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rintik_lite import jsontext, services
from rintik_lite.db import close_database, connect, database, open_database, write_transaction
from rintik_lite.ledger.intervals import LedgerState
from rintik_lite.models import (
    V1_TABLES,
    Entity,
    Event,
    Project,
    Quarantine,
    VolumeType,
    quarantine_digest,
)
from tests.conftest import NOW, envelope, notification, record, refuse_events_of, reset_postgres

P1 = "7c150a59fe714e6f9263774af9688f0e"
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def ts(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S.%f")


def iso(hours: float) -> str:
    value = T0 + timedelta(hours=hours)
    return (
        value.strftime("%Y-%m-%dT%H:%M:%S")
        + (f".{value.microsecond:06d}" if value.microsecond else "")
        + "Z"
    )


def instance(
    event: str,
    hours: float,
    instance_id: str = "i-1",
    flavor: str = "m1.small",
    launched: float = 0,
    deleted: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    payload = {
        "instance_id": instance_id,
        "tenant_id": P1,
        "display_name": "web",
        "instance_type": flavor,
        "instance_flavor_id": f"id-{flavor}",
        "vcpus": 1,
        "memory_mb": 512,
        "disk_gb": 1,
        "state": "deleted" if deleted is not None else "active",
        "launched_at": ts(launched),
        "created_at": ts(launched),
        "deleted_at": ts(deleted) if deleted is not None else "",
        "image_meta": {"base_image_ref": "img-1"},
        **extra,
    }
    return notification(f"compute.instance.{event}", payload, ts(hours))


def volume(
    event: str,
    hours: float,
    volume_id: str = "v-1",
    size: int = 10,
    attached: list[str] | None = None,
    volume_type: str = "vt-ssd",
) -> dict[str, Any]:
    payload = {
        "volume_id": volume_id,
        "tenant_id": P1,
        "display_name": "data",
        "size": size,
        "volume_type": volume_type,
        "status": "in-use" if attached else "available",
        "created_at": ts(0),
        "launched_at": ts(0),
        "volume_attachment": [
            {"instance_uuid": i, "attach_status": "attached"} for i in attached or []
        ],
    }
    return notification(f"volume.{event}", payload, ts(hours), publisher_id="volume.host")


def spans(project: str = P1) -> list[tuple[str, str, str | None]]:
    return [(r["entity_id"], r["start"], r["end"]) for r in services.usage(project)]


def test_instance_lifecycle_and_volume_attach(db_url: str) -> None:
    result = record(
        instance("create.end", 0.01, launched=0),
        volume("create.end", 1),
        volume("attach.end", 2, attached=["i-1"]),
        instance("resize.confirm.end", 3, flavor="m1.large", launched=3),
        volume("detach.end", 4),
        instance("delete.end", 5, flavor="m1.large", launched=3, deleted=5),
    )
    assert (result.received, result.applied, result.quarantined) == (6, 6, 0)
    rows = services.usage(P1)
    assert [(r["entity_id"], r["start"], r["end"]) for r in rows] == [
        ("i-1", iso(0), iso(3)),
        ("v-1", iso(0), iso(2)),
        ("v-1", iso(2), iso(4)),
        ("i-1", iso(3), iso(5)),
        ("v-1", iso(4), None),
    ]
    assert [r["flavor"] for r in rows if r["entity_type"] == "instance"] == ["m1.small", "m1.large"]
    assert [r["attached_to"] for r in rows if r["entity_type"] == "volume"] == [[], ["i-1"], []]
    assert rows[0]["os"] == {"os_type": None, "distro": None, "version": None}
    assert rows[0]["image_id"] == "img-1" and rows[0]["vcpus"] == 1


def test_usage_window_returns_overlapping_intervals_only(db_url: str) -> None:
    record(
        instance("create.end", 0, launched=0),
        instance("resize.confirm.end", 10, flavor="m1.large", launched=10),
    )
    assert spans() == [("i-1", iso(0), iso(10)), ("i-1", iso(10), None)]
    after = T0 + timedelta(hours=11)
    assert [r["start"] for r in services.usage(P1, start=after)] == [iso(10)]
    before = T0 + timedelta(hours=5)
    assert [r["end"] for r in services.usage(P1, end=before)] == [iso(10)]


def test_same_message_twice_is_a_no_op(db_url: str) -> None:
    message = instance("create.end", 0)
    first = record(message)
    second = record(message, instance("update", 1))
    assert (first.applied, second.duplicate, second.applied) == (1, 1, 1)
    assert Event.select().count() == 2
    assert spans() == [("i-1", iso(0), None)]


def test_last_event_time_is_when_the_newest_event_was_received(db_url: str) -> None:
    assert services.last_event_time() is None
    record(instance("create.end", 0), now=NOW)
    later = NOW + timedelta(minutes=5)
    update = instance("update", 1)
    record(update, now=later)
    assert record(update, now=later + timedelta(minutes=5)).duplicate == 1  # not stored again
    assert services.last_event_time() == later


def test_a_body_without_message_id_is_deduplicated_by_its_hash(db_url: str) -> None:
    message = instance("create.end", 0)
    del message["message_id"]
    body = envelope(message)
    assert record(body).applied == 1
    again = record(body)
    assert (again.duplicate, again.applied) == (1, 0)
    assert Event.get().key.startswith("sha256:")


def test_bad_messages_are_quarantined_with_their_reason_and_the_rest_applied(db_url: str) -> None:
    bad_size = volume("create.end", 1)
    bad_size["payload"]["size"] = "ten"
    no_id = instance("create.end", 0, instance_id="")
    result = record(
        "{not json",
        json.dumps({"oslo.version": "9.0", "oslo.message": "{}"}),
        bad_size,
        no_id,
        instance("create.end", 0, instance_id="i-good"),
        notification("compute.instance.shutdown.end", {"instance_id": "x"}, ts(1)),
    )
    assert (result.received, result.applied, result.ignored, result.quarantined) == (6, 1, 1, 4)
    reasons = [q["reason"] for q in services.quarantined()]
    assert reasons[0].startswith("body is not JSON")
    assert reasons[1] == "unsupported oslo.version '9.0' (expected 2.x)"
    assert reasons[2] == "payload.size is not a whole number: 'ten'"
    assert reasons[3] == "payload.instance_id is missing"
    assert next(q["body"] for q in services.quarantined()) == "{not json"
    assert spans() == [("i-good", iso(0), None)]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("web\x00", "the name contains a NUL character"),
        ("w" * 256, "the name is longer than 255 characters"),
        ("caf\udce9", "the name is not valid Unicode text"),  # a lone surrogate
    ],
)
def test_an_attribute_that_cannot_be_stored_quarantines_its_message(
    db_url: str, name: str, reason: str
) -> None:
    # The body is sent with the name \u-escaped, so the body itself is storable text.
    result = record(
        instance("create.end", 0, instance_id="i-bad", display_name=name),
        instance("create.end", 0, instance_id="i-good", display_name="café " + "w" * 249),
    )
    assert (result.applied, result.quarantined) == (1, 1)
    assert [q["reason"] for q in services.quarantined()] == [reason]
    assert spans() == [("i-good", iso(0), None)]


def test_an_id_known_as_another_resource_type_is_quarantined(db_url: str) -> None:
    record(volume("create.end", 0, volume_id="shared-id"))
    body = envelope(instance("create.end", 1, instance_id="shared-id")).encode()
    result = services.record_messages([services.Incoming(body, "replay")], NOW)
    assert result.quarantined == 1
    (kept,) = services.quarantined()
    assert kept["reason"] == "entity shared-id is a volume in the ledger, not a instance"
    # Read before recording, it is kept as it came: its body, its source, its event type.
    assert (kept["body"], kept["source"]) == (body.decode(), "replay")
    assert kept["event_type"] == "compute.instance.create.end"
    assert [r["entity_type"] for r in services.usage(P1)] == ["volume"]


def test_retry_applies_a_fixed_message_and_keeps_a_still_bad_one(db_url: str) -> None:
    record("{still bad")
    # A message that failed on a bug now fixed: its body is fine today.
    Quarantine.create(
        received_at=NOW,
        source="amqp",
        event_type="compute.instance.create.end",
        reason="internal error: KeyError('x')",
        body=envelope(instance("create.end", 0)),
    )
    result = services.retry_quarantined(NOW + timedelta(minutes=5))
    assert (result.received, result.applied, result.quarantined) == (2, 1, 1)
    left = services.quarantined()
    assert [(q["body"], q["attempts"]) for q in left] == [("{still bad", 2)]
    assert spans() == [("i-1", iso(0), None)]


def test_a_message_quarantined_again_is_one_entry_counting_each_time(db_url: str) -> None:
    """Redelivered after a crash, replayed twice, or twice in one batch: the same body is
    kept once, `attempts` counting every time it came, with its newest reason."""
    record(volume("create.end", 0, volume_id="shared-id"))
    clash = instance("create.end", 1, instance_id="shared-id")
    first = record("{not json", clash, "{other", now=NOW)
    assert first.quarantined == 3
    # What cannot be read is set aside first, then what the ledger refuses.
    assert first.reasons[2] == "entity shared-id is a volume in the ledger, not a instance"
    later = NOW + timedelta(hours=1)
    again = record(clash, "{not json", "{not json", now=later)
    assert (again.received, again.quarantined) == (3, 3)
    kept = services.quarantined()
    assert [(q["body"], q["attempts"]) for q in kept] == [
        ("{not json", 3),
        ("{other", 1),
        (envelope(clash), 2),
    ]
    assert {q["received_at"] for q in kept} == {services.format_time(NOW)}  # the first time
    # Retried, each is counted on its own row (one that applies leaves: the test above).
    retried = services.retry_quarantined(later)
    assert (retried.received, retried.quarantined) == (3, 3)
    assert [(q["id"], q["attempts"]) for q in services.quarantined()] == [
        (kept[0]["id"], 4),
        (kept[1]["id"], 2),
        (kept[2]["id"], 3),
    ]


def test_a_message_quarantined_for_another_reason_keeps_the_newest(db_url: str) -> None:
    record(volume("create.end", 0, volume_id="shared-id"))
    clash = instance("create.end", 1, instance_id="shared-id")
    record(clash)
    (kept,) = services.quarantined()
    assert kept["reason"] == "entity shared-id is a volume in the ledger, not a instance"
    Entity.update(entity_type="image").where(Entity.entity_id == "shared-id").execute()
    record(clash, now=NOW + timedelta(hours=1))
    assert [(q["id"], q["attempts"], q["reason"]) for q in services.quarantined()] == [
        (kept["id"], 2, "entity shared-id is a image in the ledger, not a instance")
    ]


def test_a_late_create_after_its_delete_never_reopens(db_url: str) -> None:
    record(instance("delete.end", 5, launched=1, deleted=5))
    assert spans() == [("i-1", iso(1), iso(5))]
    record(instance("create.end", 1, launched=1))
    record(instance("update", 6, launched=1))
    assert spans() == [("i-1", iso(1), iso(5))]


def test_an_old_event_arriving_late_refolds_the_resource(db_url: str) -> None:
    record(
        instance("create.end", 0),
        instance("delete.end", 9, flavor="m1.large", launched=4, deleted=9),
    )
    assert spans() == [("i-1", iso(0), iso(9))]
    record(instance("resize.confirm.end", 4, flavor="m1.large", launched=4))
    assert spans() == [("i-1", iso(0), iso(4)), ("i-1", iso(4), iso(9))]


def test_exists_opens_an_interval_for_a_resource_never_seen(db_url: str) -> None:
    record(instance("exists", 30, launched=2))
    record(instance("exists", 31, launched=2))
    assert spans() == [("i-1", iso(2), None)]


def test_neutron_delete_takes_the_project_from_the_ledger(db_url: str) -> None:
    create = notification(
        "floatingip.create.end",
        {"floatingip": {"id": "fip-1", "tenant_id": P1, "floating_ip_address": "203.0.113.5"}},
        ts(1),
        publisher_id="network.host",
    )
    delete = notification(
        "floatingip.delete.end", {"floatingip_id": "fip-1"}, ts(3), publisher_id="network.host"
    )
    record(delete)  # arrives first: no project, no interval yet
    assert spans() == []
    assert Entity.get_by_id("fip-1").project_id is None
    record(create)
    rows = services.usage(P1)
    assert [(r["start"], r["end"], r["address"]) for r in rows] == [(iso(1), iso(3), "203.0.113.5")]
    assert Entity.get_by_id("fip-1").project_id == P1  # the stored resource's too


def test_volume_type_names_come_from_volume_type_create_in_any_order(db_url: str) -> None:
    record(volume("create.end", 0, volume_type="vt-1"))
    assert services.usage(P1)[0]["volume_type"] == "vt-1"  # unknown yet: the id
    type_create = notification(
        "volume_type.create",
        {"volume_types": {"id": "vt-1", "name": "ssd"}},
        ts(0),
        publisher_id="volumeType",
    )
    record(type_create)
    record(type_create)
    assert services.usage(P1)[0]["volume_type"] == "ssd"
    assert [(t.type_id, t.name) for t in VolumeType.select()] == [("vt-1", "ssd")]


def test_keystone_projects_are_registered(db_url: str) -> None:
    payload = {"resource_info": "proj-9", "eventTime": "2026-10-01T00:00:00+00:00"}
    record(notification("identity.project.created", payload, ts(0), publisher_id="identity.x"))
    deleted = dict(payload, eventTime="2026-10-02T00:00:00+00:00")
    record(notification("identity.project.deleted", deleted, ts(24), publisher_id="identity.x"))
    project = Project.get()
    assert (project.project_id, project.created_at, project.deleted_at) == (
        "proj-9",
        T0,
        T0 + timedelta(days=1),
    )


def test_a_bug_that_fails_a_batch_quarantines_only_the_message_that_raises(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch is recorded again one message at a time: the others are applied as they
    would have been, and the one whose recording raises is kept with the error."""

    def broken(seen: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(services, "_apply_volume_type", broken)
    type_create = notification(
        "volume_type.create", {"volume_types": {"id": "vt-1", "name": "ssd"}}, ts(0)
    )
    result = record(instance("create.end", 0), type_create, b"not json", volume("create.end", 1))
    assert (result.received, result.applied, result.quarantined) == (4, 2, 2)
    assert [q["reason"] for q in services.quarantined()] == [
        "body is not JSON: Expecting value: line 1 column 1 (char 0)",
        "internal error: RuntimeError('a bug')",
    ]
    assert services.quarantined()[1]["event_type"] == "volume_type.create"
    assert [r["entity_id"] for r in services.usage(P1)] == ["i-1", "v-1"]
    assert Event.select().count() == 2


def test_a_message_the_database_always_refuses_is_quarantined_and_its_batch_applied(
    db_url: str,
) -> None:
    """An IntegrityError that the same message raises however often it is tried (here a
    trigger of the database's own) fails its batch; retried as a whole, the batch would
    fail for ever. It is recorded one message at a time instead: the refused message is
    quarantined with the database's reason, the others are applied."""
    refuse_events_of("v-1")
    result = record(
        instance("create.end", 0), volume("create.end", 1), volume("create.end", 2, "v-2")
    )
    assert (result.received, result.applied, result.quarantined) == (3, 2, 1)
    [refused] = services.quarantined()
    assert refused["event_type"] == "volume.create.end"
    assert refused["reason"].startswith("refused by the database: IntegrityError: ")
    assert "refused by the test trigger" in refused["reason"]
    assert json.loads(refused["body"])["oslo.message"]
    assert sorted(r["entity_id"] for r in services.usage(P1)) == ["i-1", "v-2"]
    assert Event.select().count() == 2


@pytest.mark.parametrize("inside", [False, True], ids=["its own transaction", "the caller's"])
def test_a_batch_breaking_a_constraint_is_recorded_one_message_at_a_time(
    db_url: str, inside: bool
) -> None:
    """A unique index added by hand allows one event of v-1: the batch holding two breaks
    it, and is recorded again one message at a time, the second quarantined with the
    database's reason. In its own transaction the batch's writes are all or nothing
    (`db._ALL_OR_NOTHING`: SQLite rolls the transaction back itself); inside its caller's
    (the importer's), its savepoint alone is rolled back, and the caller's transaction
    goes on (`db.whole_transaction`)."""
    database.execute_sql(
        'CREATE UNIQUE INDEX "one_v1_event" ON "event" ("entity_id") WHERE "entity_id" = \'v-1\''
    )
    batch = (instance("create.end", 0), volume("create.end", 1), volume("delete.end", 2))
    if inside:
        with write_transaction():
            Project.create(project_id="before", updated_at=NOW)
            result = record(*batch)
            Project.create(project_id="after", updated_at=NOW)
        assert [p.project_id for p in Project.select().order_by(Project.project_id)] == [
            "after",
            "before",
        ]
    else:
        result = record(*batch)
    assert (result.received, result.applied, result.quarantined) == (3, 2, 1)
    [refused] = services.quarantined()
    assert refused["event_type"] == "volume.delete.end"
    assert refused["reason"].startswith("refused by the database: IntegrityError: ")
    assert sorted(r["entity_id"] for r in services.usage(P1)) == ["i-1", "v-1"]
    assert Event.select().count() == 2


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    url = reset_postgres()
    open_database(url)
    yield url
    close_database()


def another_consumer_commits(
    url: str, monkeypatch: pytest.MonkeyPatch, table: str, sql: str, params: tuple[Any, ...]
) -> list[str]:
    """Make a second consumer on PostgreSQL commit `sql` right after this one's first
    lookup of `table` (the race a second collector makes); the list says once it did."""
    real = services._select_rows_in
    raced: list[str] = []

    def racing(columns: Any, looked_up: str, *args: Any) -> Any:
        found = real(columns, looked_up, *args)
        if looked_up == table and not raced:  # the other collector commits it right now
            raced.append(table)
            other = connect(url)
            other.execute_sql(sql, params)
            other.close()
        return found

    monkeypatch.setattr(services, "_select_rows_in", racing)
    return raced


def test_a_message_stored_meanwhile_by_another_consumer_is_a_duplicate_not_an_error(
    postgresql_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The other IntegrityError: a second collector on PostgreSQL committed the same event
    between this batch's deduplication and its insert (on SQLite, writers take turns, so
    this cannot happen). Recorded again, the event is found stored: a duplicate, and
    nothing is quarantined."""
    message = instance("create.end", 0)
    body = envelope(message)
    raced = another_consumer_commits(
        postgresql_url,
        monkeypatch,
        "event",
        'INSERT INTO "event" ("key", "event_type", "source", "received_at", "body") '
        "VALUES (%s, %s, %s, %s, %s)",
        (message["message_id"], message["event_type"], "amqp", NOW, body),
    )
    result = record(body)
    assert raced == ["event"]
    assert "the database refused a batch of 1 messages" in caplog.text  # the race happened
    assert (result.received, result.duplicate, result.quarantined) == (1, 1, 0)
    assert services.quarantined() == []
    assert Event.select().count() == 1


def test_a_message_quarantined_meanwhile_by_another_consumer_is_counted_on_its_row(
    postgresql_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Two collectors on PostgreSQL quarantine the same bad message at once (a
    redelivery): the other commits its row between this batch's lookup and its insert,
    which the unique digest refuses. Recorded again, the row is found and counted on."""
    body = "{not json"
    raced = another_consumer_commits(
        postgresql_url,
        monkeypatch,
        "quarantine",
        'INSERT INTO "quarantine" ("received_at", "source", "reason", "body", "attempts", '
        '"digest") VALUES (%s, %s, %s, %s, %s, %s)',
        (NOW, "amqp", "body is not JSON", body, 1, quarantine_digest(body)),
    )
    result = record(body)
    assert raced == ["quarantine"]
    assert "the database refused a batch of 1 messages" in caplog.text  # the race happened
    assert (result.received, result.quarantined) == (1, 1)
    assert [(q["body"], q["attempts"]) for q in services.quarantined()] == [(body, 2)]


def test_a_database_error_fails_the_whole_batch_for_the_caller_to_retry(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked(seen: Any) -> None:
        raise peewee.OperationalError("database is locked")

    monkeypatch.setattr(services, "_apply_volume_type", locked)
    type_create = notification(
        "volume_type.create", {"volume_types": {"id": "vt-1", "name": "ssd"}}, ts(0)
    )
    with pytest.raises(peewee.OperationalError):
        record(instance("create.end", 0), type_create)
    assert Event.select().count() == 0 and services.quarantined() == []


# --- order and repetition do not matter, on the real database -------------------------------


def _clear() -> None:
    for model in V1_TABLES:
        model.delete().execute()


def _ledger() -> list[dict[str, Any]]:
    return sorted((services.usage(P1)), key=lambda r: (r["entity_id"], r["start"]))


def _trace(draw: st.DrawFn) -> list[dict[str, Any]]:
    hours = sorted(draw(st.lists(st.integers(1, 400), min_size=2, max_size=10, unique=True)))
    messages = [instance("create.end", 0, launched=0), volume("create.end", 0)]
    flavor = "m1.small"
    for h in hours[:-1]:
        kind = draw(st.sampled_from(["resize", "attach", "detach", "vresize", "update", "exists"]))
        if kind == "resize":
            flavor = draw(st.sampled_from(["m1.small", "m1.large", "m1.xlarge"]))
            messages.append(instance("resize.confirm.end", h, flavor=flavor, launched=h))
        elif kind == "attach":
            messages.append(volume("attach.end", h, attached=["i-1"]))
        elif kind == "detach":
            messages.append(volume("detach.end", h))
        elif kind == "vresize":
            messages.append(volume("resize.end", h, size=draw(st.sampled_from([10, 20, 40]))))
        else:
            messages.append(instance(kind, h, flavor=flavor))
    if draw(st.booleans()):
        messages.append(instance("delete.end", hours[-1], flavor=flavor, deleted=hours[-1]))
    messages.append(volume("delete.end", hours[-1] + 1))
    return messages


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_order_any_repeats_any_batching_gives_the_same_ledger(
    db_url: str, data: st.DataObject
) -> None:
    trace = data.draw(st.composite(lambda draw: _trace(draw))())
    _clear()
    record(*trace)
    expected = _ledger()
    _clear()
    repeated = trace + data.draw(st.lists(st.sampled_from(trace), max_size=len(trace)))
    shuffled = data.draw(st.permutations(repeated))
    cut = sorted(data.draw(st.lists(st.integers(0, len(shuffled)), max_size=4)))
    for lo, hi in zip([0, *cut], [*cut, len(shuffled)], strict=True):
        if hi > lo:
            if data.draw(st.booleans()):  # this batch decodes the stored states, unkept
                services.SAVED_STATES.clear()
            record(*shuffled[lo:hi])
    assert _ledger() == expected
    assert Event.select().count() == len(trace)
    database.close()


def test_a_state_kept_by_its_text_is_the_state_that_text_decodes_to(db_url: str) -> None:
    # The next batch takes a stored state from SAVED_STATES instead of decoding its text:
    # exact only while decoding gives back the state that was encoded.
    record(instance("create.end", 0, launched=0), volume("create.end", 0))
    record(volume("attach.end", 2, attached=["i-1"]), instance("update", 2))
    record(
        instance("resize.confirm.end", 3, flavor="m1.large", launched=3),
        instance("delete.end", 5, flavor="m1.large", launched=3, deleted=5),
    )
    texts = [text for (text,) in database.execute_sql('SELECT "state" FROM "entity"')]
    assert len(texts) == 2
    for text in texts:
        kept = services.SAVED_STATES.get(text)
        assert kept is not None
        assert kept == LedgerState.from_json(jsontext.loads(text))
        assert jsontext.dumps(kept.to_json()) == text
