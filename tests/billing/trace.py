"""Notifications for billing tests, built as the OpenStack services put them on the bus.

Each builder returns the inner oslo.messaging message (`tests.conftest.record` wraps it in
the messagingv2 envelope); times are aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.conftest import notification


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def ts(at: datetime) -> str:
    """oslo's timestamp format: naive UTC with microseconds."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def instance(
    event: str,
    at: datetime,
    *,
    project: str,
    instance_id: str,
    flavor: str = "m1.small",
    flavor_id: str | None = None,
    launched: datetime | None = None,
    deleted: datetime | None = None,
    name: str = "web",
) -> dict[str, Any]:
    """A legacy nova `compute.instance.<event>`; `launched` defaults to `at`."""
    launched = launched or at
    payload = {
        "instance_id": instance_id,
        "tenant_id": project,
        "display_name": name,
        "instance_type": flavor,
        "instance_flavor_id": flavor_id or f"id-{flavor}",
        "vcpus": 1,
        "memory_mb": 512,
        "disk_gb": 1,
        "state": "deleted" if deleted is not None else "active",
        "launched_at": ts(launched),
        "created_at": ts(launched),
        "deleted_at": ts(deleted) if deleted is not None else "",
        "image_meta": {"base_image_ref": "img-1"},
    }
    return notification(f"compute.instance.{event}", payload, ts(at))


def volume(
    event: str,
    at: datetime,
    *,
    project: str,
    volume_id: str,
    size: int = 10,
    volume_type: str = "vt-ssd",
    attached: list[str] | None = None,
    created: datetime | None = None,
    name: str = "data",
) -> dict[str, Any]:
    """A cinder `volume.<event>`; `volume_type` is the type's id, as cinder sends it."""
    created = created or at
    payload = {
        "volume_id": volume_id,
        "tenant_id": project,
        "display_name": name,
        "size": size,
        "volume_type": volume_type,
        "status": "in-use" if attached else "available",
        "created_at": ts(created),
        "launched_at": ts(created),
        "volume_attachment": [
            {"instance_uuid": i, "attach_status": "attached"} for i in attached or []
        ],
    }
    return notification(f"volume.{event}", payload, ts(at), publisher_id="volume.host")


def volume_type(type_id: str, name: str, at: datetime) -> dict[str, Any]:
    return notification(
        "volume_type.create",
        {"volume_types": {"id": type_id, "name": name}},
        ts(at),
        publisher_id="volumeType",
    )


def snapshot(
    event: str,
    at: datetime,
    *,
    project: str,
    snapshot_id: str,
    size: int,
    created: datetime | None = None,
) -> dict[str, Any]:
    payload = {
        "snapshot_id": snapshot_id,
        "tenant_id": project,
        "display_name": "nightly",
        "volume_size": size,
        "volume_id": "v-src",
        "created_at": ts(created or at),
    }
    return notification(f"snapshot.{event}", payload, ts(at), publisher_id="snapshot.host")


def floating_ip(
    event: str, at: datetime, *, project: str, fip_id: str, address: str = "203.0.113.7"
) -> dict[str, Any]:
    if event == "delete.end":
        payload: dict[str, Any] = {"floatingip_id": fip_id}
    else:
        payload = {
            "floatingip": {
                "id": fip_id,
                "tenant_id": project,
                "floating_ip_address": address,
                "created_at": ts(at),
                "updated_at": ts(at),
            }
        }
    return notification(
        f"floatingip.{event}",
        payload,
        ts(at),
        publisher_id="network.host",
        context={"project_id": project},
    )


def router(
    event: str, at: datetime, *, project: str, router_id: str, name: str = "edge"
) -> dict[str, Any]:
    if event == "delete.end":
        payload: dict[str, Any] = {"router_id": router_id}
    else:
        payload = {
            "router": {
                "id": router_id,
                "tenant_id": project,
                "name": name,
                "external_gateway_info": {"network_id": "public"},
                "created_at": ts(at),
                "updated_at": ts(at),
            }
        }
    return notification(
        f"router.{event}",
        payload,
        ts(at),
        publisher_id="network.host",
        context={"project_id": project},
    )


def image(
    event: str, at: datetime, *, project: str, image_id: str, size_bytes: int
) -> dict[str, Any]:
    """A glance `image.<event>` (activate, delete); size in bytes, billed in whole GiB."""
    payload = {
        "id": image_id,
        "owner": project,
        "name": "ubuntu",
        "size": size_bytes,
        "created_at": ts(at),
        "updated_at": ts(at),
        "deleted_at": ts(at) if event == "delete" else None,
    }
    return notification(f"image.{event}", payload, ts(at), publisher_id="image.host")
