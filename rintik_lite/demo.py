"""`rintik-lite demo`: the whole appliance on a simulated lab cloud, no RabbitMQ, no OpenStack.

It is `rintik-lite run` (the same Runtime: collector, API, scheduler threads) with two
changes: the broker is kombu's in-process `memory://` transport, and a simulator publishes
on it what Nova, Cinder, Neutron, Glance and Keystone would publish, as oslo.messaging's
`messagingv2` driver does: the JSON envelope, a topic exchange per service (`nova`,
`openstack` for Cinder, `neutron`, `glance`, `keystone`), routing key `notifications.info`.
The collector reads them with the code that reads a real cloud.

1. `LabCloud(seed)` simulates five projects for the 60 days before today 00:00 UTC:
   instances booted, resized and deleted; volumes created, attached, extended, detached and
   deleted; nightly snapshots; image uploads; floating IPs; routers with a gateway. The
   same seed on the same day gives the same notifications (ids included), so a second run
   on the same database adds nothing but duplicates, and two databases get the same ledger.
2. The collector ingests that history; every ended month is then closed (invoiced), with
   the demo's prices (set only in a database that has none).
3. Then the runtime runs as `run` does, and the simulator publishes a live event every few
   seconds, until Ctrl-C or `--duration`.

Every event is published by a host named `demo-...`: the demo refuses a database holding
events from anywhere else, so it never mixes a simulated cloud into a real ledger.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import os
import random
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from kombu import Connection, Exchange, Producer
from kombu.transport import memory

from rintik_lite.collector import declare_queue
from rintik_lite.db import redact_url, sqlite_path
from rintik_lite.errors import SettingsError
from rintik_lite.settings import SETTINGS, Settings, defaults

log = logging.getLogger(__name__)

DEMO_DATABASE_FILE = "rintik-demo.db"
DEMO_CONFIG_FILE = "rintik-demo.toml"
DEMO_TOKEN = "demo"  # noqa: S105 - printed on start; the API listens on loopback
HISTORY_DAYS = 60
LIVE_SECONDS = (2.0, 5.0)  # a live event every 2 to 5 seconds
CONFIG_MARK = "# Written by `rintik-lite demo`"
#: Hosts of the simulated cloud; events from any other publisher mean a real ledger.
DEMO_HOST_MARK = ".demo-"

Echo = Callable[[str], None]
Message = dict[str, Any]


# --- the in-process broker ------------------------------------------------------------------


class _Channel(memory.Channel):  # type: ignore[misc]
    """kombu's memory channel, acknowledging as AMQP does: `basic_ack(multiple=True)` acks
    every unacknowledged message up to this one. (kombu's virtual channels ack only the one
    tag, so the collector's one-ack-per-batch would leave the rest unacknowledged and
    consumption would stop at the prefetch limit.)"""

    def basic_ack(self, delivery_tag: Any, multiple: bool = False) -> None:
        if not multiple:
            super().basic_ack(delivery_tag)
            return
        qos = self.qos
        for tag in list(qos._delivered):  # in delivery order
            if tag not in qos._dirty:
                qos.ack(tag)
            if tag == delivery_tag:
                break


class _Transport(memory.Transport):  # type: ignore[misc]
    Channel = _Channel


def memory_connection() -> Connection:
    """A connection to the process's in-memory broker (every connection shares its state)."""
    return Connection(
        "memory://", transport=_Transport, transport_options={"polling_interval": 0.1}
    )


# --- the simulated cloud ------------------------------------------------------------------


@dataclass(frozen=True)
class Flavor:
    name: str
    flavor_id: str
    vcpus: int
    memory_mb: int
    disk_gb: int


FLAVORS = {
    f.name: f
    for f in (
        Flavor("m1.tiny", "1", 1, 512, 1),
        Flavor("m1.small", "2", 1, 2048, 20),
        Flavor("m1.medium", "3", 2, 4096, 40),
        Flavor("m1.large", "4", 4, 8192, 80),
        Flavor("g1.xlarge", "5", 8, 32768, 160),
    )
}
VOLUME_TYPES = {  # name -> id (fixed, so prices by name and by id both hold across runs)
    "standard": "6a5c1d0e-3b0f-4f43-9d51-2f3c9e0b6c11",
    "ssd": "c3e4a8d2-7f19-4b5e-8e2a-91d6f04b7a52",
}
BASE_IMAGES = {
    "ubuntu-24.04": ("9b1e5f0c-2d4a-4c7e-bb31-5a0f3c6d7e81", "linux", "ubuntu", "24.04"),
    "debian-12": ("4f7a2c9e-8b3d-4e1f-a6c5-0d9e8f7a6b52", "linux", "debian", "12"),
    "cirros-0.6": ("e2d1c0b9-a8f7-4e6d-9c5b-4a3f2e1d0c93", "linux", "cirros", "0.6"),
}
PUBLIC_NETWORK = "0f5e7d3c-1a2b-4c6d-8e9f-a1b2c3d4e5f6"
#: Prices set in a database that has none: (kind, key, hourly, monthly cap or None).
PRICES = (
    ("flavor", "m1.tiny", "0.006", "3.50"),
    ("flavor", "m1.small", "0.024", "15.00"),
    ("flavor", "m1.medium", "0.048", "30.00"),
    ("flavor", "m1.large", "0.096", "60.00"),
    ("flavor", "g1.xlarge", "0.85", None),
    ("volume", "standard", "0.00006", None),
    ("volume", "ssd", "0.00017", None),
    ("snapshot", "default", "0.00004", None),
    ("image", "default", "0.00003", None),
    ("floating_ip", "default", "0.005", None),
    ("router", "default", "0.003", None),
)


@dataclass(frozen=True)
class Profile:
    """How one project uses the cloud."""

    name: str
    steady: tuple[tuple[str, str], ...]  # (name, flavor) of long-running instances
    churn_per_day: float  # short-lived instances booted per day, on average
    churn_hours: tuple[float, float]  # their lifetime, in hours
    churn_flavors: tuple[str, ...]
    office_hours: bool = False  # churn only on weekdays, 08:00-17:00 UTC
    data_volume_gb: int = 0  # a volume attached to the first steady instance
    nightly_snapshots: bool = False
    floating_ips: int = 0
    images_per_month: float = 0.0
    resizes: int = 0  # resizes of steady instances over the history


PROFILES = (
    Profile(
        "acme-web",
        (("web-1", "m1.small"), ("web-2", "m1.small"), ("db-1", "m1.medium")),
        0.3,
        (2, 30),
        ("m1.small",),
        data_volume_gb=100,
        nightly_snapshots=True,
        floating_ips=2,
        resizes=1,
    ),
    Profile(
        "data-science",
        (("notebook", "m1.large"),),
        0.6,
        (3, 40),
        ("g1.xlarge", "m1.large"),
        data_volume_gb=500,
        images_per_month=2,
    ),
    Profile(
        "student-labs",
        (),
        3.0,
        (1, 6),
        ("m1.tiny", "m1.small"),
        office_hours=True,
        floating_ips=1,
    ),
    Profile("ci-runners", (("ci-controller", "m1.small"),), 2.5, (0.2, 1.5), ("m1.medium",)),
    Profile(
        "ops-monitoring",
        (("prometheus", "m1.small"),),
        0.0,
        (1, 1),
        ("m1.small",),
        data_volume_gb=50,
        floating_ips=1,
        resizes=1,
    ),
)


@dataclass
class Server:
    server_id: str
    project: Project
    name: str
    flavor: Flavor
    image: str
    host: str
    launched: datetime
    fixed_ip: str
    steady: bool = False
    volumes: list[Volume] = field(default_factory=list)


@dataclass
class Volume:
    volume_id: str
    project: Project
    name: str
    size: int
    type_id: str
    created: datetime
    attached_to: Server | None = None


@dataclass
class Snapshot:
    snapshot_id: str
    project: Project
    volume: Volume
    created: datetime


@dataclass
class Image:
    image_id: str
    project: Project
    name: str
    size_bytes: int
    created: datetime


@dataclass
class FloatingIp:
    fip_id: str
    project: Project
    address: str
    created: datetime


@dataclass
class Project:
    project_id: str
    profile: Profile
    user_id: str
    servers: list[Server] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    floating_ips: list[FloatingIp] = field(default_factory=list)
    router_id: str | None = None
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def name(self) -> str:
        return self.profile.name


def oslo_time(at: datetime) -> str:
    """oslo's `str(utcnow())`: naive UTC, space-separated, microseconds."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def cinder_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def neutron_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LabCloud:
    """The simulated cloud: its state, and the notifications its changes publish.

    Changes are scheduled on a heap (a boot schedules its delete); `advance(until)` applies
    them in time order and collects `(exchange, message)` pairs in `outbox`. `history()`
    runs the seeded past; `live(now)` makes one change now, with fresh ids.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.ids = self.rng  # seeded in history; fresh ids in live mode
        self.live_mode = False
        self.projects: list[Project] = []
        self.outbox: list[tuple[datetime, int, str, Message]] = []
        self._heap: list[tuple[datetime, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._addresses = itertools.count(10)

    # -- ids and scheduling ---------------------------------------------------------------

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.ids.getrandbits(128), version=4))

    def hex_id(self) -> str:
        return uuid.UUID(int=self.ids.getrandbits(128), version=4).hex

    def at(self, when: datetime, change: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), change, args))

    def advance(self, until: datetime) -> None:
        """Apply every scheduled change before `until`, in time order."""
        while self._heap and self._heap[0][0] < until:
            when, _, change, args = heapq.heappop(self._heap)
            change(when, *args)

    # -- publishing ----------------------------------------------------------------------

    def emit(
        self,
        exchange: str,
        publisher: str,
        event_type: str,
        payload: Message,
        at: datetime,
        project: Project | None = None,
    ) -> None:
        """Queue one notification as oslo.messaging's Notifier + messagingv2 build it."""
        message: Message = {
            "message_id": self.new_id(),
            "publisher_id": publisher,
            "event_type": event_type,
            "priority": "INFO",
            "payload": payload,
            "timestamp": oslo_time(at),
        }
        if project is not None:  # services with a RequestContext send it, redacted
            message.update(
                {
                    "_context_request_id": f"req-{self.new_id()}",
                    "_context_user_id": project.user_id,
                    "_context_project_id": project.project_id,
                    "_context_project_name": project.name,
                    "_context_roles": ["member", "reader"],
                    "_context_is_admin": False,
                    "_context_read_only": False,
                    "_context_show_deleted": False,
                }
            )
        message["_unique_id"] = self.hex_id()
        heapq.heappush(self.outbox, (at, next(self._seq), exchange, message))

    # -- the past ------------------------------------------------------------------------

    def history(self, start: datetime, end: datetime) -> list[tuple[str, Message]]:
        """The notifications of [start, end), in time order; the cloud is left as it is at
        `end`, with its later changes still scheduled."""
        for name, type_id in VOLUME_TYPES.items():
            self.emit(
                "openstack",
                "volumeType.demo-controller",
                "volume_type.create",
                {
                    "volume_types": {
                        "id": type_id,
                        "name": name,
                        "description": f"{name} volumes",
                        "is_public": True,
                        "extra_specs": {"volume_backend_name": f"lvm-{name}"},
                        "qos_specs_id": None,
                        "created_at": cinder_time(start),
                        "updated_at": None,
                        "deleted": False,
                        "deleted_at": None,
                    }
                },
                start,
            )
        for profile in PROFILES:
            project = Project(self.hex_id(), profile, self.hex_id())
            self.projects.append(project)
            created = start + timedelta(minutes=self.rng.randint(5, 120))
            self.at(created, self.create_project, project)
            self.at(created + timedelta(minutes=30), self.set_up, project, end - created)
            for day in range(int((end - start) / timedelta(days=1)) + 1):
                self.at(start + timedelta(days=day, hours=0.5), self.day, project)
        self.advance(end)
        return self.take(end)

    def take(self, until: datetime) -> list[tuple[str, Message]]:
        """The notifications due before `until`, in time order; later ones wait (a boot's
        create.end comes a minute after its create.start)."""
        due: list[tuple[str, Message]] = []
        while self.outbox and self.outbox[0][0] < until:
            _, _, exchange, message = heapq.heappop(self.outbox)
            due.append((exchange, message))
        return due

    def set_up(self, at: datetime, project: Project, span: timedelta) -> None:
        p = project.profile
        if p.steady or p.floating_ips:
            self.create_router(at, project)
        for i, (name, flavor) in enumerate(p.steady):
            server = self.boot(at + timedelta(minutes=10 * i), project, flavor, name, steady=True)
            if i == 0 and p.data_volume_gb:
                volume = self.create_volume(
                    at + timedelta(minutes=10 * i + 5),
                    project,
                    p.data_volume_gb,
                    "ssd" if p.nightly_snapshots else "standard",
                    f"{name}-data",
                )
                self.at(at + timedelta(minutes=10 * i + 8), self.attach, volume, server)
        if p.data_volume_gb and p.resizes:
            self.at(at + span * 0.5, self.extend_first, project)
        for i in range(p.floating_ips):
            self.at(at + timedelta(minutes=40 + i), self.create_floating_ip, project)
        for _ in range(p.resizes):
            when = at + span * self.rng.uniform(0.3, 0.8)
            self.at(when, self.resize_one, project)

    def day(self, at: datetime, project: Project) -> None:
        p = project.profile
        weekday = at.weekday() < 5
        count = self._poisson(p.churn_per_day) if (weekday or not p.office_hours) else 0
        for _ in range(count):
            hour = self.rng.uniform(8, 16) if p.office_hours else self.rng.uniform(0, 23.5)
            boot_at = at.replace(hour=0, minute=0) + timedelta(hours=hour)
            self.at(boot_at, self.boot_short_lived, project)
        if p.nightly_snapshots:
            for volume in list(project.volumes):
                when = at.replace(hour=2, minute=0) + timedelta(minutes=self.rng.randint(0, 20))
                self.at(when, self.create_snapshot, volume, timedelta(days=7))
        if p.images_per_month and self.rng.random() < p.images_per_month / 30:
            self.at(at + timedelta(hours=self.rng.uniform(9, 18)), self.upload_image, project)

    def _poisson(self, mean: float) -> int:
        count, threshold, product = 0, pow(2.718281828459045, -mean), self.rng.random()
        while product > threshold:
            count += 1
            product *= self.rng.random()
        return count

    # -- changes -------------------------------------------------------------------------

    def create_project(self, at: datetime, project: Project) -> None:
        self.emit(
            "keystone",
            "identity.demo-controller",
            "identity.project.created",
            {
                "typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event",
                "id": f"openstack:{self.new_id()}",
                "eventType": "activity",
                "eventTime": at.isoformat(),
                "action": "created.project",
                "outcome": "success",
                "initiator": {
                    "typeURI": "service/security/account/user",
                    "id": "admin",
                    "host": {"agent": "python-openstackclient", "address": "10.0.0.2"},
                },
                "target": {
                    "typeURI": "data/security/project",
                    "id": f"openstack:{project.project_id}",
                    "name": project.name,
                },
                "observer": {"typeURI": "service/security", "id": "openstack:keystone"},
                "resource_info": project.project_id,
            },
            at,
        )

    def _nova_payload(
        self,
        server: Server,
        state: str,
        launched: datetime | None,
        deleted: datetime | None = None,
    ) -> Message:
        image_id, os_type, distro, version = BASE_IMAGES[server.image]
        f = server.flavor
        return {
            "tenant_id": server.project.project_id,
            "user_id": server.project.user_id,
            "instance_id": server.server_id,
            "display_name": server.name,
            "hostname": server.name,
            "reservation_id": f"r-{server.server_id[:8]}",
            "instance_type": f.name,
            "instance_type_id": int(f.flavor_id),
            "instance_flavor_id": f.flavor_id,
            "memory_mb": f.memory_mb,
            "disk_gb": f.disk_gb,
            "root_gb": f.disk_gb,
            "ephemeral_gb": 0,
            "vcpus": f.vcpus,
            "host": server.host,
            "node": server.host,
            "availability_zone": "nova",
            "architecture": "x86_64",
            "os_type": os_type,
            "image_ref_url": f"http://demo-controller:9292/images/{image_id}",
            "image_meta": {
                "base_image_ref": image_id,
                "os_type": os_type,
                "os_distro": distro,
                "os_version": version,
                "min_disk": "1",
                "container_format": "bare",
                "disk_format": "qcow2",
            },
            "metadata": {},
            "state": state,
            "state_description": "",
            "progress": "",
            "created_at": oslo_time(server.launched - timedelta(seconds=40)),
            "launched_at": oslo_time(launched) if launched else "",
            "terminated_at": oslo_time(deleted) if deleted else "",
            "deleted_at": oslo_time(deleted) if deleted else "",
            "fixed_ips": [
                {
                    "address": server.fixed_ip,
                    "type": "fixed",
                    "version": 4,
                    "label": f"{server.project.name}-net",
                    "meta": {},
                    "floating_ips": [],
                    "vif_mac": "fa:16:3e:"
                    + ":".join(server.server_id[i : i + 2] for i in (0, 2, 4)),
                }
            ],
        }

    def boot(
        self,
        at: datetime,
        project: Project,
        flavor: str,
        name: str,
        steady: bool = False,
    ) -> Server:
        n = next(self._addresses)
        server = Server(
            self.new_id(),
            project,
            name,
            FLAVORS[flavor],
            self.rng.choice(sorted(BASE_IMAGES)),
            f"demo-compute-{1 + n % 3:02d}",
            at + timedelta(seconds=35 + self.rng.randint(0, 30)),
            f"10.{1 + PROFILES.index(project.profile)}.{n // 250 % 250}.{n % 250 + 2}",
            steady,
        )
        project.servers.append(server)
        publisher = f"compute.{server.host}"
        self.emit(
            "nova",
            publisher,
            "compute.instance.create.start",
            self._nova_payload(server, "building", None),
            at,
            project,
        )
        self.emit(
            "nova",
            publisher,
            "compute.instance.create.end",
            self._nova_payload(server, "active", server.launched),
            server.launched + timedelta(seconds=1),
            project,
        )
        return server

    def boot_short_lived(self, at: datetime, project: Project) -> None:
        p = project.profile
        prefix = {"student-labs": "lab-vm", "ci-runners": "ci-job", "data-science": "train"}
        name = f"{prefix.get(p.name, 'tmp')}-{next(project.counter)}"
        server = self.boot(at, project, self.rng.choice(p.churn_flavors), name)
        if self.live_mode:
            life = timedelta(minutes=self.rng.uniform(1, 8))
        else:
            life = timedelta(hours=self.rng.uniform(*p.churn_hours))
        if p.name == "data-science" and self.rng.random() < 0.5:
            volume = self.create_volume(at + timedelta(minutes=2), project, 200, "standard", name)
            self.at(at + timedelta(minutes=3), self.attach, volume, server)
            self.at(at + life - timedelta(minutes=2), self.detach, volume)
            self.at(at + life - timedelta(minutes=1), self.delete_volume, volume)
        if p.floating_ips and self.rng.random() < 0.3:
            self.at(at + timedelta(minutes=1), self.create_floating_ip, project, life)
        self.at(at + life, self.delete, server)

    def resize_one(self, at: datetime, project: Project) -> None:
        steady = [s for s in project.servers if s.steady] or project.servers
        if not steady:
            return
        server = self.rng.choice(steady)
        order = ["m1.tiny", "m1.small", "m1.medium", "m1.large"]
        index = order.index(server.flavor.name) if server.flavor.name in order else 2
        self.resize(at, server, order[index + 1] if index + 1 < len(order) else "m1.medium")

    def resize(self, at: datetime, server: Server, flavor: str) -> None:
        server.flavor = FLAVORS[flavor]
        server.launched = at + timedelta(seconds=70)
        publisher = f"compute.{server.host}"
        self.emit(
            "nova",
            publisher,
            "compute.instance.resize.start",
            self._nova_payload(server, "active", at),
            at,
            server.project,
        )
        self.emit(
            "nova",
            publisher,
            "compute.instance.finish_resize.end",
            self._nova_payload(server, "resized", server.launched),
            server.launched + timedelta(seconds=1),
            server.project,
        )
        self.emit(
            "nova",
            publisher,
            "compute.instance.resize.confirm.end",
            self._nova_payload(server, "active", server.launched),
            server.launched + timedelta(minutes=5),
            server.project,
        )

    def delete(self, at: datetime, server: Server) -> None:
        if server not in server.project.servers:
            return
        for volume in list(server.volumes):
            self.detach(at - timedelta(seconds=20), volume)
        server.project.servers.remove(server)
        publisher = f"compute.{server.host}"
        self.emit(
            "nova",
            publisher,
            "compute.instance.delete.start",
            self._nova_payload(server, "active", server.launched),
            at,
            server.project,
        )
        gone = at + timedelta(seconds=4)
        self.emit(
            "nova",
            publisher,
            "compute.instance.delete.end",
            self._nova_payload(server, "deleted", server.launched, gone),
            gone + timedelta(seconds=1),
            server.project,
        )

    def _cinder_payload(self, volume: Volume, status: str, launched: bool = True) -> Message:
        attached = volume.attached_to
        return {
            "volume_id": volume.volume_id,
            "tenant_id": volume.project.project_id,
            "user_id": volume.project.user_id,
            "display_name": volume.name,
            "size": volume.size,
            "volume_type": volume.type_id,
            "status": status,
            "availability_zone": "nova",
            "host": "demo-volume-01@lvmdriver-1#lvmdriver-1",
            "created_at": cinder_time(volume.created),
            "launched_at": cinder_time(volume.created + timedelta(seconds=3)) if launched else "",
            "snapshot_id": None,
            "replication_status": None,
            "metadata": [],
            "glance_metadata": [],
            "volume_attachment": (
                [
                    {
                        "id": str(
                            uuid.uuid5(uuid.NAMESPACE_URL, volume.volume_id + attached.server_id)
                        ),
                        "volume_id": volume.volume_id,
                        "instance_uuid": attached.server_id,
                        "attached_host": attached.host,
                        "mountpoint": "/dev/vdb",
                        "attach_status": "attached",
                        "attach_mode": "rw",
                    }
                ]
                if attached is not None
                else []
            ),
        }

    def create_volume(
        self, at: datetime, project: Project, size: int, volume_type: str, name: str
    ) -> Volume:
        volume = Volume(self.new_id(), project, name, size, VOLUME_TYPES[volume_type], at)
        project.volumes.append(volume)
        publisher = "volume.demo-volume-01@lvmdriver-1"
        self.emit(
            "openstack",
            publisher,
            "volume.create.start",
            self._cinder_payload(volume, "creating", launched=False),
            at,
            project,
        )
        self.emit(
            "openstack",
            publisher,
            "volume.create.end",
            self._cinder_payload(volume, "available"),
            at + timedelta(seconds=4),
            project,
        )
        return volume

    def attach(self, at: datetime, volume: Volume, server: Server) -> None:
        if volume not in volume.project.volumes or server not in server.project.servers:
            return
        volume.attached_to = server
        server.volumes.append(volume)
        self.emit(
            "openstack",
            "volume.demo-volume-01@lvmdriver-1",
            "volume.attach.end",
            self._cinder_payload(volume, "in-use"),
            at,
            volume.project,
        )

    def detach(self, at: datetime, volume: Volume) -> None:
        server = volume.attached_to
        if server is None:
            return
        volume.attached_to = None
        server.volumes.remove(volume)
        self.emit(
            "openstack",
            "volume.demo-volume-01@lvmdriver-1",
            "volume.detach.end",
            self._cinder_payload(volume, "available"),
            at,
            volume.project,
        )

    def extend(self, at: datetime, volume: Volume, size: int) -> None:
        volume.size = size
        self.emit(
            "openstack",
            "volume.demo-volume-01@lvmdriver-1",
            "volume.resize.end",
            self._cinder_payload(volume, "in-use" if volume.attached_to else "available"),
            at,
            volume.project,
        )

    def extend_first(self, at: datetime, project: Project) -> None:
        if project.volumes:
            self.extend(at, project.volumes[0], project.volumes[0].size * 2)

    def delete_volume(self, at: datetime, volume: Volume) -> None:
        if volume not in volume.project.volumes:
            return
        self.detach(at - timedelta(seconds=10), volume)
        for snapshot in [s for s in volume.project.snapshots if s.volume is volume]:
            self.delete_snapshot(at - timedelta(seconds=5), snapshot)
        volume.project.volumes.remove(volume)
        self.emit(
            "openstack",
            "volume.demo-volume-01@lvmdriver-1",
            "volume.delete.end",
            self._cinder_payload(volume, "deleting"),
            at,
            volume.project,
        )

    def _snapshot_payload(self, snapshot: Snapshot, status: str) -> Message:
        return {
            "snapshot_id": snapshot.snapshot_id,
            "tenant_id": snapshot.project.project_id,
            "user_id": snapshot.project.user_id,
            "display_name": f"{snapshot.volume.name}-{snapshot.created:%Y%m%d}",
            "volume_id": snapshot.volume.volume_id,
            "volume_size": snapshot.volume.size,
            "status": status,
            "availability_zone": "nova",
            "created_at": cinder_time(snapshot.created),
            "deleted": "",
            "metadata": "",
        }

    def create_snapshot(self, at: datetime, volume: Volume, keep: timedelta | None) -> None:
        if volume not in volume.project.volumes:
            return
        snapshot = Snapshot(self.new_id(), volume.project, volume, at)
        volume.project.snapshots.append(snapshot)
        self.emit(
            "openstack",
            "snapshot.demo-volume-01@lvmdriver-1",
            "snapshot.create.end",
            self._snapshot_payload(snapshot, "available"),
            at + timedelta(seconds=30),
            volume.project,
        )
        if keep is not None:
            self.at(at + keep, self.delete_snapshot, snapshot)

    def delete_snapshot(self, at: datetime, snapshot: Snapshot) -> None:
        if snapshot not in snapshot.project.snapshots:
            return
        snapshot.project.snapshots.remove(snapshot)
        self.emit(
            "openstack",
            "snapshot.demo-volume-01@lvmdriver-1",
            "snapshot.delete.end",
            self._snapshot_payload(snapshot, "deleted"),
            at,
            snapshot.project,
        )

    def _image_payload(self, image: Image, status: str, at: datetime) -> Message:
        return {
            "id": image.image_id,
            "name": image.name,
            "owner": image.project.project_id,
            "status": status,
            "visibility": "private",
            "protected": False,
            "container_format": "bare",
            "disk_format": "qcow2",
            "min_disk": 0,
            "min_ram": 0,
            "size": image.size_bytes if status in ("active", "deleted") else None,
            "virtual_size": None,
            "checksum": None,
            "tags": [],
            "properties": {},
            "created_at": image.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "updated_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "deleted": status == "deleted",
            "deleted_at": at.strftime("%Y-%m-%dT%H:%M:%SZ") if status == "deleted" else None,
        }

    def upload_image(self, at: datetime, project: Project) -> None:
        size = self.rng.randint(300, 6000) * 2**20
        image = Image(
            self.new_id(), project, f"{project.name}-model-{next(project.counter)}", size, at
        )
        project.images.append(image)
        self.emit(
            "glance",
            "image.demo-controller",
            "image.create",
            self._image_payload(image, "queued", at),
            at,
        )
        done = at + timedelta(minutes=self.rng.randint(2, 9))
        self.emit(
            "glance",
            "image.demo-controller",
            "image.activate",
            self._image_payload(image, "active", done),
            done,
        )
        if not self.live_mode:
            self.at(at + timedelta(days=self.rng.uniform(5, 40)), self.delete_image, image)

    def delete_image(self, at: datetime, image: Image) -> None:
        if image not in image.project.images:
            return
        image.project.images.remove(image)
        self.emit(
            "glance",
            "image.demo-controller",
            "image.delete",
            self._image_payload(image, "deleted", at),
            at,
        )

    def create_router(self, at: datetime, project: Project) -> None:
        project.router_id = self.new_id()
        self.emit(
            "neutron",
            "network.demo-controller",
            "router.create.end",
            {
                "router": {
                    "id": project.router_id,
                    "name": f"{project.name}-router",
                    "tenant_id": project.project_id,
                    "project_id": project.project_id,
                    "admin_state_up": True,
                    "status": "ACTIVE",
                    "external_gateway_info": {
                        "network_id": PUBLIC_NETWORK,
                        "enable_snat": True,
                        "external_fixed_ips": [
                            {"subnet_id": PUBLIC_NETWORK, "ip_address": self._public_address()}
                        ],
                    },
                    "routes": [],
                    "distributed": False,
                    "ha": False,
                    "availability_zones": ["nova"],
                    "description": "",
                    "tags": [],
                    "revision_number": 3,
                    "created_at": neutron_time(at),
                    "updated_at": neutron_time(at),
                }
            },
            at,
            project,
        )

    def _public_address(self) -> str:
        return f"203.0.113.{self.rng.randint(2, 254)}"

    def create_floating_ip(
        self, at: datetime, project: Project, keep: timedelta | None = None
    ) -> None:
        fip = FloatingIp(self.new_id(), project, self._public_address(), at)
        project.floating_ips.append(fip)
        self.emit(
            "neutron",
            "network.demo-controller",
            "floatingip.create.end",
            {
                "floatingip": {
                    "id": fip.fip_id,
                    "tenant_id": project.project_id,
                    "project_id": project.project_id,
                    "floating_ip_address": fip.address,
                    "floating_network_id": PUBLIC_NETWORK,
                    "fixed_ip_address": None,
                    "port_id": None,
                    "router_id": None,
                    "status": "DOWN",
                    "description": "",
                    "dns_name": "",
                    "dns_domain": "",
                    "tags": [],
                    "revision_number": 0,
                    "created_at": neutron_time(at),
                    "updated_at": neutron_time(at),
                }
            },
            at,
            project,
        )
        if keep is not None:
            self.at(at + keep, self.delete_floating_ip, fip)

    def delete_floating_ip(self, at: datetime, fip: FloatingIp) -> None:
        if fip not in fip.project.floating_ips:
            return
        fip.project.floating_ips.remove(fip)
        self.emit(
            "neutron",
            "network.demo-controller",
            "floatingip.delete.end",
            {"floatingip_id": fip.fip_id},
            at,
            fip.project,
        )

    # -- the present ---------------------------------------------------------------------

    def go_live(self) -> None:
        """From now on: fresh ids (a rerun must not collide with the last run's live events)
        and short lifetimes (minutes, not hours)."""
        self.live_mode = True
        self.ids = random.Random(os.urandom(16))

    def live(self, now: datetime) -> str:
        """Make one change now (after the scheduled ones that are due); return what it was."""
        self.advance(now)
        project = self.rng.choice(self.projects)
        servers = project.servers
        choice = self.rng.choices(
            ["boot", "delete", "resize", "volume", "snapshot", "fip", "image"],
            weights=[35, 10, 10, 15, 12, 10, 8],
        )[0]
        if choice == "delete" and len(servers) > 1:
            victim = self.rng.choice([s for s in servers if not s.steady] or servers)
            self.delete(now, victim)
            return f"{project.name}: instance {victim.name} deleted"
        if choice == "resize" and servers:
            server = self.rng.choice(servers)
            flavor = self.rng.choice([f for f in FLAVORS if f != server.flavor.name])
            old = server.flavor.name
            self.resize(now, server, flavor)
            return f"{project.name}: instance {server.name} resized {old} -> {flavor}"
        if choice == "volume" and servers:
            server = self.rng.choice(servers)
            size = self.rng.choice([10, 20, 50, 100])
            volume = self.create_volume(
                now, project, size, self.rng.choice(sorted(VOLUME_TYPES)), f"{server.name}-vol"
            )
            self.attach(now + timedelta(seconds=8), volume, server)
            return f"{project.name}: {size} GB volume created and attached to {server.name}"
        if choice == "snapshot" and project.volumes:
            volume = self.rng.choice(project.volumes)
            self.create_snapshot(now, volume, timedelta(minutes=self.rng.uniform(2, 10)))
            return f"{project.name}: snapshot of volume {volume.name}"
        if choice == "fip":
            self.create_floating_ip(now, project, timedelta(minutes=self.rng.uniform(2, 10)))
            return f"{project.name}: floating IP allocated"
        if choice == "image":
            self.upload_image(now, project)
            return f"{project.name}: image uploaded"
        self.boot_short_lived(now, project)
        server = project.servers[-1]
        return f"{project.name}: instance {server.name} booted ({server.flavor.name})"


# --- publishing on the in-process broker --------------------------------------------------


class Publisher:
    """Publishes notifications as oslo.messaging's RabbitMQ driver does (see conftest's
    Broker.publish): the messagingv2 envelope, the service's topic exchange, routing key
    `notifications.info`, JSON, persistent."""

    def __init__(self, settings: Settings, connect: Callable[[], Connection]) -> None:
        self.settings = settings
        self.connect = connect
        durable = settings["broker.durable_exchanges"]
        self.exchanges = {
            name: Exchange(name, type="topic", durable=durable, auto_delete=False)
            for name in settings["broker.exchanges"]
        }

    def publish(self, messages: list[tuple[str, Message]]) -> int:
        if not messages:
            return 0
        with self.connect() as conn:
            channel = conn.channel()
            declare_queue(channel, self.settings)  # so nothing is published before it is bound
            producer = Producer(channel)
            for exchange, message in messages:
                body = json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(message)})
                producer.publish(
                    body,
                    exchange=self.exchanges[exchange],
                    routing_key=f"notifications.{message['priority'].lower()}",
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                )
        return len(messages)


class Simulator:
    """The simulator thread: one live change every few seconds, published when due."""

    def __init__(self, cloud: LabCloud, publisher: Publisher, echo: Echo) -> None:
        self.cloud = cloud
        self.publisher = publisher
        self.echo = echo
        self.published = 0

    def run(self, stop: threading.Event) -> None:
        self.cloud.go_live()
        while not stop.wait(self.cloud.rng.uniform(*LIVE_SECONDS)):
            now = datetime.now(UTC)
            what = self.cloud.live(now)
            self.published += self.publisher.publish(self.cloud.take(now + timedelta(seconds=1)))
            self.echo(f"{now:%H:%M:%S}  {what}")


# --- settings, the database, prices -------------------------------------------------------


def explicit_names(settings: Settings, environ: Mapping[str, str]) -> set[str]:
    """The settings that the configuration file or the environment set."""
    names: set[str] = set()
    if settings.source is not None:
        with settings.source.open("rb") as fh:
            document = tomllib.load(fh)
        names |= {
            f"{section}.{key}"
            for section, table in document.items()
            if isinstance(table, dict)
            for key in table
        }
    return names | {s.name for s in SETTINGS if s.env in environ}


def default_seed(database_url: str) -> int:
    """The seed of the simulated history when none is given: one derived from the demo's
    database (its file's absolute path; a server's URL without its password), so that
    running the demo again on the same database carries on the same cloud (its history
    adds nothing but duplicates) and another database gets another cloud."""
    path = sqlite_path(database_url)
    where = str(path.resolve()) if path is not None else redact_url(database_url)
    return 1 + int.from_bytes(hashlib.sha256(where.encode()).digest()[:8], "big") % 10**6


def demo_settings(
    settings: Settings, environ: Mapping[str, str] | None = None, folder: Path | None = None
) -> Settings:
    """The demo's settings: the in-process broker always; the demo database, token and a
    quiet log unless the configuration file (or the environment) sets them."""
    explicit = explicit_names(settings, os.environ if environ is None else environ)
    base = defaults()
    changes: dict[str, Any] = {
        "broker__url": "memory://",
        "broker__queue": base["broker.queue"],
        "broker__exchanges": base["broker.exchanges"],
        "broker__topics": base["broker.topics"],
        "broker__durable_exchanges": False,
    }
    if "database.url" not in explicit:
        path = ((folder or Path.cwd()) / DEMO_DATABASE_FILE).resolve()
        changes["database__url"] = f"sqlite:///{path}"
    if "auth.private_key" not in explicit:
        changes["auth__private_key"] = DEMO_TOKEN
    if "log.level" not in explicit:
        changes["log__level"] = "WARNING"  # the demo tells its own story on stdout
    return settings.replace(**changes)


def write_config(path: Path, settings: Settings) -> bool:
    """Write the demo's configuration file (0600: it holds the token) so that every other
    command, and the TUI, reach the demo's database and API. A file that the demo did not
    write is left alone (False)."""
    if path.exists() and not path.read_text(errors="replace").startswith(CONFIG_MARK):
        return False
    text = (
        f"{CONFIG_MARK}: its database and API, for every other command, e.g.\n"
        f"#   rintik-lite invoice list --config {path.name}\n"
        f"[database]\nurl = {json.dumps(settings['database.url'])}\n\n"
        f"[api]\nhost = {json.dumps(settings['api.host'])}\nport = {settings['api.port']}\n\n"
        f"[auth]\nprivate_key = {json.dumps(settings['auth.private_key'])}\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)
    return True


def refuse_foreign_events() -> None:
    """SettingsError when the database holds events the demo did not publish."""
    from rintik_lite.models import Event

    foreign = Event.select().where(
        Event.publisher_id.is_null() | ~Event.publisher_id.contains(DEMO_HOST_MARK)
    )
    if foreign.exists():
        raise SettingsError(
            "this database holds events that the demo did not make; the demo writes a "
            "simulated cloud into its database: give it another [database] url"
        )


def seed_prices(now: datetime, currency: str) -> int:
    """The demo's prices, only in a database that has none; returns how many were set."""
    from rintik_lite import invoices

    if invoices.list_prices():
        return 0
    for kind, key, hourly, monthly in PRICES:
        invoices.set_price(kind, key, hourly, monthly=monthly, currency=currency, now=now)
    return len(PRICES)


# --- the command --------------------------------------------------------------------------

INGEST_SECONDS = 180.0


def _print(line: str) -> None:
    print(line, flush=True)


def run(
    settings: Settings,
    seed: int,
    duration: float | None = None,
    config_path: Path | None = None,
    echo: Echo = _print,
) -> None:
    """Run the demo until the runtime's stop flag (SIGINT/SIGTERM) or `duration` seconds of
    live events. `settings` are the demo's (see `demo_settings`); `config_path` is what to
    pass to the other commands (None: write rintik-demo.toml here)."""
    import shlex

    from rintik_lite.db import close_database, open_database
    from rintik_lite.runtime import Runtime

    now = datetime.now(UTC)
    anchor = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = anchor - timedelta(days=HISTORY_DAYS)
    cloud = LabCloud(seed)
    publisher = Publisher(settings, memory_connection)
    simulator = Simulator(cloud, publisher, echo)
    runtime = Runtime(settings, memory_connection, [("simulator", simulator.run)])
    runtime.install_signal_handlers()
    try:
        runtime.api.start()  # binds now: a busy port is a one-line error before anything runs
        open_database(settings["database.url"], settings["database.busy_timeout_ms"])
        try:
            refuse_foreign_events()
            seed_prices(now, settings["billing.currency"])
        finally:
            close_database()
        if config_path is None:
            config_path = Path(DEMO_CONFIG_FILE)
            if not write_config(config_path, settings):
                echo(f"note: {config_path} was not written by the demo; left unchanged")
        config_arg = shlex.quote(str(config_path))
        history = cloud.history(start, anchor)
        echo(
            f"rintik-lite demo, seed {seed}: a simulated lab cloud on an in-process broker "
            "(no RabbitMQ, no OpenStack)"
        )
        echo(f"  database  {redact_url(settings['database.url'])}")
        echo(
            f"  history   {start:%Y-%m-%d} .. {anchor:%Y-%m-%d} 00:00 UTC: "
            f"{len(history)} notifications from {len(cloud.projects)} projects"
        )
        if not _ingest(runtime, publisher, history, echo):
            return
        runtime.collector.reopen_readers()  # the history's run stopped its own
        _close_months(settings, echo)
        runtime.start()
        token = settings["auth.private_key"]
        url = runtime.api.url
        echo(f"  API       {url}   token: {token}")
        echo(f"            curl -H 'X-Auth-Token: {token}' {url}/v1/projects")
        with_token = "   same token" if settings["api.metrics_require_token"] else ""
        echo(f"  metrics   {url}/metrics{with_token}")
        echo(f"  TUI       rintik-lite tui --config {config_arg}")
        echo(f"  CLI       rintik-lite invoice list --config {config_arg}")
        echo("live events every few seconds; Ctrl-C to stop")
        deadline = None if duration is None else time.monotonic() + duration
        while not runtime.stop.wait(0.2):
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        runtime.shutdown()
        runtime.api.stop()
    echo("stopped; the data stays in the database for the other commands and the TUI")


def _ingest(
    runtime: Any, publisher: Publisher, history: list[tuple[str, Message]], echo: Echo
) -> bool:
    """Run the collector until it has committed the whole history (False if stopped)."""
    from rintik_lite.errors import ServiceUnavailable

    status = runtime.collector.status
    want = status.totals.received + len(history)
    before = (status.totals.applied, status.totals.ignored, status.totals.duplicate)
    phase = threading.Event()
    thread = threading.Thread(
        target=runtime.collector.run, args=(phase,), name="collector", daemon=True
    )
    thread.start()
    began = time.monotonic()
    try:
        publisher.publish(history)
        while status.totals.received < want:
            if runtime.stop.wait(0.1):
                return False
            if time.monotonic() - began > INGEST_SECONDS:
                raise ServiceUnavailable(
                    f"the collector did not ingest the history within {INGEST_SECONDS:.0f} s: "
                    f"{status.database_error or status.broker_error or 'no progress'}"
                )
    finally:
        phase.set()
        thread.join(10)
    t = status.totals
    echo(
        f"  ingested  in {time.monotonic() - began:.1f} s by the collector: "
        f"{t.applied - before[0]} applied, {t.ignored - before[1]} ignored (change nothing "
        f"billable), {t.duplicate - before[2]} duplicate"
    )
    return True


def _close_months(settings: Settings, echo: Echo) -> None:
    from rintik_lite import invoices
    from rintik_lite.db import close_database

    try:
        closed = invoices.close_invoices(None, datetime.now(UTC), invoices.rules_from(settings))
        docs = invoices.list_invoices(datetime.now(UTC), invoices.rules_from(settings))
    finally:
        close_database()
    summary: dict[str, dict[str, Decimal]] = {}
    counts: dict[str, int] = {}
    for doc in docs:
        if doc["state"] == "in_progress":
            continue
        totals = summary.setdefault(doc["period"], {})
        totals[doc["currency"]] = totals.get(doc["currency"], Decimal(0)) + Decimal(doc["total"])
        counts[doc["period"]] = counts.get(doc["period"], 0) + 1
    parts = [
        f"{period}: {counts[period]} invoices, "
        + ", ".join(f"{amount} {currency}" for currency, amount in sorted(totals.items()))
        for period, totals in sorted(summary.items())
    ]
    echo(f"  invoiced  {len(closed)} closed now; " + ("; ".join(parts) or "none"))
