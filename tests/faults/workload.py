"""A deterministic stream of notifications for the fault tests: instances and volumes of a
few projects through October 2026 (creates, renames, resizes, attaches, deletes), roughly in
time order, with some messages published twice as a cloud sometimes does.

`reference(messages)` is what one uninterrupted run makes of them: fed to record_messages
in one go. Every fault test compares its ledger and invoices with it.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rintik_lite import invoices, services
from rintik_lite.billing.rating import RatingRules
from rintik_lite.models import Event, Invoice, InvoiceLine, Quarantine
from tests.conftest import envelope, notification
from tests.test_services import ts

MONTH_HOURS = 740.0
#: After October 2026, so every period of the stream has ended.
CLOSE_NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
RULES = RatingRules(rounding="hour_ceil", decimal_places=2, tax_percent=Decimal(11), currency="USD")
FLAVORS = ("m1.small", "m1.medium", "m1.large")

Message = tuple[str, dict[str, Any]]  # (service, inner message)


def _instance_payload(
    instance_id: str, project: str, flavor: str, name: str, launched: float, deleted: float | None
) -> dict[str, Any]:
    return {
        "instance_id": instance_id,
        "tenant_id": project,
        "display_name": name,
        "instance_type": flavor,
        "instance_flavor_id": f"id-{flavor}",
        "vcpus": 1 + FLAVORS.index(flavor),
        "memory_mb": 512 << FLAVORS.index(flavor),
        "disk_gb": 10,
        "state": "deleted" if deleted is not None else "active",
        "launched_at": ts(launched),
        "created_at": ts(launched),
        "deleted_at": ts(deleted) if deleted is not None else "",
        "image_meta": {"base_image_ref": "img-1"},
    }


def _volume_payload(
    volume_id: str, project: str, size: int, attached: str | None, created: float
) -> dict[str, Any]:
    return {
        "volume_id": volume_id,
        "tenant_id": project,
        "display_name": f"data-{volume_id}",
        "size": size,
        "volume_type": "vt-ssd",
        "status": "in-use" if attached else "available",
        "created_at": ts(created),
        "launched_at": ts(created),
        "volume_attachment": (
            [{"instance_uuid": attached, "attach_status": "attached"}] if attached else []
        ),
    }


def _times(rng: random.Random, count: int) -> list[float]:
    start = rng.uniform(0, MONTH_HOURS / 3)
    return sorted({round(rng.uniform(start, MONTH_HOURS), 4) for _ in range(count)})


def stream(
    total: int = 20_000,
    instances: int = 200,
    volumes: int = 100,
    projects: int = 8,
    seed: int = 8,
    repeat_share: float = 0.02,
    jitter_hours: float = 2.0,
) -> list[Message]:
    """`total` messages (a share of them published twice), deterministic for a seed."""
    rng = random.Random(seed)
    project_ids = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(projects)]
    per_resource = int(total * (1 - repeat_share)) // (instances + volumes)
    timed: list[tuple[float, Message]] = []

    def message_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128)))

    def add(service: str, event_type: str, payload: dict[str, Any], hours: float) -> None:
        publisher = "compute.host-1" if service == "nova" else "volume.host-1"
        inner = notification(
            event_type, payload, ts(hours), message_id=message_id(), publisher_id=publisher
        )
        inner["_unique_id"] = message_id().replace("-", "")
        # roughly in time order, as a cloud sends them; a little out of order
        timed.append((hours + rng.uniform(0, jitter_hours), (service, inner)))

    for n in range(instances):
        instance_id = f"i-{n:04d}"
        project = project_ids[n % projects]
        times = _times(rng, per_resource)
        flavor, launched, name = FLAVORS[n % 3], times[0], f"vm-{n}"
        deleted = times[-1] if rng.random() < 0.5 else None
        payload = _instance_payload(instance_id, project, flavor, name, launched, None)
        add("nova", "compute.instance.create.end", payload, times[0])
        for hours in times[1:-1] if deleted is not None else times[1:]:
            if rng.random() < 0.1:
                flavor, launched = rng.choice(FLAVORS), hours
                event = "compute.instance.resize.confirm.end"
            else:
                if rng.random() < 0.2:
                    name = f"vm-{n}-{rng.randrange(100)}"
                event = "compute.instance.update"
            payload = _instance_payload(instance_id, project, flavor, name, launched, None)
            add("nova", event, payload, hours)
        if deleted is not None:
            payload = _instance_payload(instance_id, project, flavor, name, launched, deleted)
            add("nova", "compute.instance.delete.end", payload, deleted)
    for n in range(volumes):
        volume_id = f"v-{n:04d}"
        project = project_ids[n % projects]
        times = _times(rng, per_resource)
        size, attached, created = 10 * (1 + n % 4), None, times[0]
        deleted = times[-1] if rng.random() < 0.4 else None
        add("openstack", "volume.create.end",
            _volume_payload(volume_id, project, size, None, created), times[0])  # fmt: skip
        for hours in times[1:-1] if deleted is not None else times[1:]:
            roll = rng.random()
            if roll < 0.08:
                size += 10
                event = "volume.resize.end"
            elif roll < 0.2:
                attached = None if attached else f"i-{rng.randrange(instances):04d}"
                event = "volume.attach.end" if attached else "volume.detach.end"
            else:
                event = "volume.update.end"
            add("openstack", event, _volume_payload(volume_id, project, size, attached, created),
                hours)  # fmt: skip
        if deleted is not None:
            add("openstack", "volume.delete.end",
                _volume_payload(volume_id, project, size, None, created), deleted)  # fmt: skip
    ordered = [m for _, m in sorted(timed, key=lambda t: t[0])]
    while len(ordered) < total:  # the cloud publishes some twice: a later copy
        at = rng.randrange(len(ordered))
        ordered.insert(rng.randrange(at, len(ordered) + 1), ordered[at])
    return ordered[:total]


def distinct(messages: list[Message]) -> int:
    return len({m["message_id"] for _, m in messages})


def project_ids(messages: list[Message]) -> list[str]:
    return sorted({m["payload"]["tenant_id"] for _, m in messages})


def feed(messages: list[Message], batch: int | None = None) -> services.BatchResult:
    """Record the messages through the collector's code path (one transaction by default)."""
    incoming = [services.Incoming(envelope(m)) for _, m in messages]
    total = services.BatchResult()
    size = batch or len(incoming)
    for i in range(0, len(incoming), size):
        total.add(services.record_messages(incoming[i : i + size], CLOSE_NOW))
    return total


def set_prices() -> None:
    for flavor, hourly in zip(FLAVORS, ("0.021", "0.042", "0.084"), strict=True):
        invoices.set_price("flavor", flavor, hourly, currency="USD", now=CLOSE_NOW)
    invoices.set_price("volume", "vt-ssd", "0.0002", currency="USD", now=CLOSE_NOW)


def ledger(projects: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every project's intervals, as `rintik-lite usage` shows them."""
    return {p: services.usage(p) for p in projects}


def closed_invoices() -> list[dict[str, Any]]:
    """Every closed invoice with its frozen lines, without row ids and timestamps."""
    rows = []
    for invoice in Invoice.select().where(Invoice.number.is_null(False)).order_by(Invoice.number):
        lines = [
            (
                line.entity_id,
                str(line.start),
                str(line.end),
                str(line.hours),
                line.quantity,
                str(line.amount),
                line.description,
            )
            for line in InvoiceLine.select()
            .where(InvoiceLine.invoice == invoice.id)
            .order_by(InvoiceLine.entity_id, InvoiceLine.start)
        ]
        rows.append(
            {
                "number": invoice.number,
                "project_id": invoice.project_id,
                "period": invoice.period,
                "state": invoice.state,
                "total": str(invoice.total),
                "lines": lines,
            }
        )
    return rows


def counts() -> dict[str, int]:
    return {
        "events": Event.select().count(),
        "distinct_keys": Event.select(Event.key).distinct().count(),
        "quarantined": Quarantine.select().count(),
    }
