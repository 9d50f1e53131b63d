"""The Almanach v1 API: Almanach's paths, bodies, status codes and field names.

Served under `/v1/` and without the prefix. Reads return the ledger's intervals in
Almanach's field names (`services.interval_dict`). Writes never touch the ledger directly:
each is translated into the notification the cloud would have sent (nova's legacy
`compute.instance.*`, cinder's `volume.*` and `volume_type.create`), with a fresh message
id and the body's date as its time, and applied by `services.record_api_message`, the same
code the collector uses; the event is stored with source "api".

Differences from Almanach, on purpose:

* bodies are checked strictly: an unknown field, a missing one, a wrong type or a bad date
  is a 400 naming it (Almanach ignored unknown fields and answered some bad dates with 500);
* a write about an id the ledger does not hold as that type is a 404 (create excepted);
* the ledger's rules decide intervals: a rebuild changes the OS in place (Almanach opened a
  new row), a duplicate or stale create never opens a second row;
* `PUT /entity/instance/<id>` changes the open interval through an update event at
  `start_date` (default now): name, OS and metadata in place, a flavor splits it there.
  `end_date` is refused with 400 (an open interval ends with a delete). An update at the very
  instant of another event of the same instance is ordered by the ledger's fixed tie-break,
  so pick a later instant.
* `PUT /entity/instance/<id>?start=&end=` corrects the closed interval with exactly that
  start and end (404 when there is none) by recording a correction event: the ledger is
  re-derived from events, and the correction is re-applied to that interval whenever it is.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import bottle
import peewee

from rintik_lite import services
from rintik_lite.api import ledger
from rintik_lite.api.changes import Unchanged
from rintik_lite.api.errors import (
    JSON,
    Field,
    bad_request,
    empty,
    json_text,
    not_found,
    read_fields,
    read_id,
    read_json_object,
    read_query,
    reply,
)
from rintik_lite.api.openapi import Operation
from rintik_lite.ledger.notifications import CORRECTION_EVENT, format_time

PUBLISHER = "rintik-lite.api"
WRITE_ATTEMPTS = 3

#: The encoded answers of the list routes (instances, volumes, entities of a project in a
#: window), by what was asked, while nothing was committed since they were read.
INTERVAL_LISTS: Unchanged[bytes] = Unchanged(2048)

PERIOD = {
    "start": Field("date", required=True, description="Start of the window."),
    "end": Field("date", description="End of the window; default: open-ended."),
}
INSTANCE_CREATE = {
    "id": Field("id", required=True, description="Instance UUID."),
    "created_at": Field("date", required=True, description="When it started running."),
    "name": Field("text", required=True, nullable=True),
    "flavor": Field("text", required=True, description="Flavor name."),
    "os_type": Field("text", nullable=True),
    "os_distro": Field("text", nullable=True),
    "os_version": Field("text", nullable=True),
}
DELETE = {"date": Field("date", required=True, description="When it was deleted.")}
INSTANCE_RESIZE = {
    "date": Field("date", required=True),
    "flavor": Field("text", required=True, description="The new flavor name."),
}
INSTANCE_REBUILD = {
    "distro": Field("text", required=True, nullable=True),
    "version": Field("text", required=True, nullable=True),
    "os_type": Field("text", required=True, nullable=True),
    "rebuild_date": Field("date", required=True),
}
VOLUME_CREATE = {
    "volume_id": Field("id", required=True),
    "start": Field("date", required=True),
    "volume_type": Field("id", required=True, nullable=True, description="Volume type id."),
    "size": Field("size", required=True),
    "volume_name": Field("text", nullable=True),
    "attached_to": Field("ids", nullable=True, description="Instance ids."),
}
VOLUME_RESIZE = {"size": Field("size", required=True), "date": Field("date", required=True)}
VOLUME_ATTACHMENTS = {
    "date": Field("date", required=True),
    "attachments": Field(
        "ids", required=True, description="Every instance the volume is attached to after."
    ),
}
CLOSED_WINDOW = {
    "start": Field(
        "date",
        description="With `end`: the start of the closed interval to "
        "correct (Almanach's edit of an inactive entity).",
    ),
    "end": Field("date", description="With `start`: the end of the closed interval."),
}
ENTITY_CORRECTION = {
    "name": Field("text"),
    "flavor": Field("text"),
    "os": Field("os"),
    "metadata": Field("metadata"),
}
ENTITY_UPDATE = {
    "name": Field("text"),
    "flavor": Field("text"),
    "os": Field("os"),
    "metadata": Field("metadata"),
    "start_date": Field("date", description="When the change took effect; default now."),
}
VOLUME_TYPE_CREATE = {
    "type_id": Field("id", required=True),
    "type_name": Field("text", required=True, min_length=1),
}


def _op(method: str, rule: str, handler: str, summary: str, **more: Any) -> Operation:
    return Operation(method, rule, handler, summary, **more)


def _links(expression: str, **targets: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """OpenAPI links: the id just created, as the path parameter of these handlers."""
    return {
        handler: {parameter: expression}
        for parameter, handlers in targets.items()
        for handler in handlers
    }


OPERATIONS = (
    _op("GET", "/project/<project_id>/instances", "list_instances", "Instance intervals "
        "overlapping the window.", response="Entities", query=PERIOD),
    _op("GET", "/project/<project_id>/volumes", "list_volumes", "Volume intervals "
        "overlapping the window.", response="Entities", query=PERIOD),
    _op("GET", "/project/<project_id>/entities", "list_entities", "Intervals of every "
        "resource type overlapping the window.", response="Entities", query=PERIOD),
    _op("POST", "/project/<project_id>/instance", "create_instance", "An instance was "
        "created.", status=201, body=INSTANCE_CREATE, links=_links(
            "$request.body#/id", instance_id=("delete_instance", "resize_instance",
            "rebuild_instance", "update_instance_entity"), entity_id=("get_entity",
            "entity_exists", "entity_history"))),
    _op("DELETE", "/instance/<instance_id>", "delete_instance", "An instance was deleted.",
        status=202, body=DELETE),
    _op("PUT", "/instance/<instance_id>/resize", "resize_instance", "An instance changed "
        "flavor.", body=INSTANCE_RESIZE),
    _op("PUT", "/instance/<instance_id>/rebuild", "rebuild_instance", "An instance was "
        "rebuilt with another OS.", body=INSTANCE_REBUILD),
    _op("POST", "/project/<project_id>/volume", "create_volume", "A volume was created.",
        status=201, body=VOLUME_CREATE, links=_links(
            "$request.body#/volume_id", volume_id=("delete_volume", "resize_volume",
            "attach_volume", "detach_volume"), entity_id=("get_entity", "entity_history"))),
    _op("DELETE", "/volume/<volume_id>", "delete_volume", "A volume was deleted.",
        status=202, body=DELETE),
    _op("PUT", "/volume/<volume_id>/resize", "resize_volume", "A volume changed size.",
        body=VOLUME_RESIZE),
    _op("PUT", "/volume/<volume_id>/attach", "attach_volume", "A volume was attached; "
        "`attachments` lists every instance it is attached to now.", body=VOLUME_ATTACHMENTS),
    _op("PUT", "/volume/<volume_id>/detach", "detach_volume", "A volume was detached; "
        "`attachments` lists the instances it is still attached to.", body=VOLUME_ATTACHMENTS),
    _op("PUT", "/entity/instance/<instance_id>", "update_instance_entity", "Change the open "
        "interval of an instance (name, flavor, os, metadata) from `start_date` on.",
        response="Entity", body=ENTITY_UPDATE, query=CLOSED_WINDOW,
        description="With `?start=&end=` (Almanach's edit of an inactive entity) it corrects "
        "the name, flavor, os or metadata of the closed interval with exactly that start and "
        "end instead (404 when there is none); `start_date` is then refused."),
    _op("HEAD", "/entity/<entity_id>", "entity_exists", "200 when the ledger has intervals "
        "of this id, else 404."),
    _op("GET", "/entity/<entity_id>", "get_entity", "Every interval of one resource.",
        response="Entities"),
    _op("GET", "/volume_types", "list_volume_types", "Known volume types.",
        response="VolumeTypes"),
    _op("GET", "/volume_type/<type_id>", "get_volume_type", "One volume type.",
        response="VolumeType"),
    _op("POST", "/volume_type", "create_volume_type", "Name a volume type.", status=201,
        body=VOLUME_TYPE_CREATE, links=_links(
            "$request.body#/type_id", type_id=("get_volume_type", "delete_volume_type"))),
    _op("DELETE", "/volume_type/<type_id>", "delete_volume_type", "Forget a volume type's "
        "name.", status=202),
)  # fmt: skip


def message(event_type: str, payload: dict[str, Any], time: datetime) -> dict[str, Any]:
    """A notification as the cloud would have sent it, timed at `time`."""
    return {
        "message_id": str(uuid.uuid4()),
        "publisher_id": PUBLISHER,
        "event_type": event_type,
        "priority": "INFO",
        "payload": payload,
        "timestamp": format_time(time),
    }


def _image_meta(os_type: Any, distro: Any, version: Any) -> dict[str, str]:
    meta = {"os_type": os_type, "os_distro": distro, "os_version": version}
    return {k: v for k, v in meta.items() if v is not None}


def _attachments(instance_ids: list[str]) -> dict[str, Any]:
    return {
        "status": "in-use" if instance_ids else "available",
        "volume_attachment": [
            {"instance_uuid": i, "attach_status": "attached"} for i in sorted(set(instance_ids))
        ],
    }


class AlmanachRoutes:
    """Handlers of OPERATIONS; each checks its input, then reads or records one event."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        max_body_bytes: int,
        metadata_whitelist: Sequence[str] = (),
    ) -> None:
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        self.metadata_whitelist = tuple(metadata_whitelist)

    def _body(self, spec: dict[str, Field]) -> dict[str, Any]:
        return read_fields(read_json_object(self.max_body_bytes), spec)

    def _record(self, event_type: str, payload: dict[str, Any], time: datetime) -> None:
        doc = message(event_type, payload, time)
        for attempt in range(WRITE_ATTEMPTS):
            try:
                services.record_api_message(doc, self.clock(), self.metadata_whitelist)
                return
            except peewee.IntegrityError:
                # Another writer (a request, the collector) inserted the same new resource
                # first; the transaction rolled back, and a retry sees its row.
                if attempt == WRITE_ATTEMPTS - 1:
                    raise

    # --- reads ---------------------------------------------------------------------------

    def _list(self, project_id: str, types: list[str] | None) -> bytes:
        """The project's intervals in the window, encoded: kept (on SQLite) and answered
        again until anything is committed to the database (`INTERVAL_LISTS`)."""
        project_id = read_id(project_id, "project_id")
        period = read_query(PERIOD)
        start, end = period["start"], period.get("end")
        generation = INTERVAL_LISTS.start()
        slot = json_text([project_id, format_time(start), end and format_time(end), types]).encode()
        body = INTERVAL_LISTS.get(slot, generation)
        if body is None:
            body = json_text(services.usage(project_id, start, end, types)).encode()
            INTERVAL_LISTS.add(slot, body, generation)
        bottle.response.status = 200
        bottle.response.content_type = JSON
        return body

    def list_instances(self, project_id: str) -> bytes:
        return self._list(project_id, ["instance"])

    def list_volumes(self, project_id: str) -> bytes:
        return self._list(project_id, ["volume"])

    def list_entities(self, project_id: str) -> bytes:
        return self._list(project_id, None)

    def entity_exists(self, entity_id: str) -> str:
        entity_id = read_id(entity_id, "entity_id")
        if not ledger.has_intervals(entity_id):
            raise not_found(f"entity {entity_id} is not in the ledger")
        return empty(200)

    def get_entity(self, entity_id: str) -> str:
        entity_id = read_id(entity_id, "entity_id")
        rows = services.entity_rows(entity_id)
        if not rows:
            raise not_found(f"entity {entity_id} is not in the ledger")
        return reply(rows)

    def list_volume_types(self) -> str:
        return reply(ledger.volume_types())

    def get_volume_type(self, type_id: str) -> str:
        type_id = read_id(type_id, "type_id")
        doc = ledger.volume_type(type_id)
        if doc is None:
            raise not_found(f"volume type {type_id} is unknown")
        return reply(doc)

    # --- instances -----------------------------------------------------------------------

    def create_instance(self, project_id: str) -> str:
        project_id = read_id(project_id, "project_id")
        body = self._body(INSTANCE_CREATE)
        created = body["created_at"]
        payload = {
            "instance_id": body["id"],
            "tenant_id": project_id,
            "display_name": body["name"],
            "instance_type": body["flavor"],
            "state": "active",
            "created_at": format_time(created),
            "launched_at": format_time(created),
            "image_meta": _image_meta(
                body.get("os_type"), body.get("os_distro"), body.get("os_version")
            ),
        }
        self._record("compute.instance.create.end", payload, created)
        return empty(201)

    def delete_instance(self, instance_id: str) -> str:
        instance_id = read_id(instance_id, "instance_id")
        body = self._body(DELETE)
        entity = ledger.find_entity(instance_id, "instance")
        payload = {
            "instance_id": instance_id,
            "tenant_id": entity.project_id,
            "state": "deleted",
            "deleted_at": format_time(body["date"]),
        }
        self._record("compute.instance.delete.end", payload, body["date"])
        return empty(202)

    def resize_instance(self, instance_id: str) -> str:
        instance_id = read_id(instance_id, "instance_id")
        body = self._body(INSTANCE_RESIZE)
        entity = ledger.find_entity(instance_id, "instance")
        payload = {
            "instance_id": instance_id,
            "tenant_id": entity.project_id,
            "instance_type": body["flavor"],
            "state": "active",
            "launched_at": format_time(body["date"]),  # nova resets it when the flavor runs
        }
        self._record("compute.instance.resize.confirm.end", payload, body["date"])
        return empty(200)

    def rebuild_instance(self, instance_id: str) -> str:
        instance_id = read_id(instance_id, "instance_id")
        body = self._body(INSTANCE_REBUILD)
        entity = ledger.find_entity(instance_id, "instance")
        payload = {
            "instance_id": instance_id,
            "tenant_id": entity.project_id,
            "state": "active",
            "launched_at": format_time(body["rebuild_date"]),
            "image_meta": _image_meta(body["os_type"], body["distro"], body["version"]),
        }
        self._record("compute.instance.rebuild.end", payload, body["rebuild_date"])
        return empty(200)

    def update_instance_entity(self, instance_id: str) -> str:
        instance_id = read_id(instance_id, "instance_id")
        window = read_query(CLOSED_WINDOW)
        if window:
            return self._correct_closed_interval(instance_id, window)
        doc = read_json_object(self.max_body_bytes)
        if "end_date" in doc:
            raise bad_request(
                "end_date: an open interval ends when the instance is deleted "
                "(DELETE /instance/<id>) or changes flavor"
            )
        body = read_fields(doc, ENTITY_UPDATE)
        entity = ledger.find_entity(instance_id, "instance")
        row = ledger.open_interval(instance_id)
        if row is None:
            raise not_found(f"instance {instance_id} has no open interval")
        changes = {k: v for k, v in body.items() if k != "start_date" and v is not None}
        if changes:
            launched = ledger.first_start(instance_id) or row.start
            payload: dict[str, Any] = {
                "instance_id": instance_id,
                "tenant_id": entity.project_id,
                "state": "active",
                "launched_at": format_time(launched),
            }
            if "name" in changes:
                payload["display_name"] = changes["name"]
            if "flavor" in changes:
                payload["instance_type"] = changes["flavor"]
            if "os" in changes:
                os = changes["os"]
                payload["image_meta"] = _image_meta(os["os_type"], os["distro"], os["version"])
            if "metadata" in changes:
                payload["metadata"] = changes["metadata"]
            self._record("compute.instance.update", payload, body.get("start_date") or self.clock())
            row = ledger.open_interval(instance_id) or row
        return reply(services.interval_dict(row))

    def _correct_closed_interval(self, instance_id: str, window: dict[str, Any]) -> str:
        if "start" not in window or "end" not in window:
            raise bad_request("start and end go together: the closed interval to correct")
        body = read_fields(read_json_object(self.max_body_bytes), ENTITY_CORRECTION)
        ledger.find_entity(instance_id, "instance")  # 404 unless the ledger has it
        start, end = window["start"], window["end"]

        def matching() -> Any:
            return next(
                (
                    r
                    for r in ledger.closed_intervals(instance_id)
                    if (r.start, r.end) == (start, end)
                ),
                None,
            )

        if matching() is None:
            raise not_found(
                f"instance {instance_id} has no closed interval from "
                f"{format_time(start)} to {format_time(end)}"
            )
        payload: dict[str, Any] = {
            "instance_id": instance_id,
            "start": format_time(start),
            "end": format_time(end),
        }
        if body.get("name") is not None:
            payload["display_name"] = body["name"]
        if body.get("flavor") is not None:
            payload["instance_type"] = body["flavor"]
        if body.get("os") is not None:
            os = body["os"]
            payload["image_meta"] = _image_meta(os["os_type"], os["distro"], os["version"])
        if body.get("metadata") is not None:
            payload["metadata"] = body["metadata"]
        if len(payload) > 3:
            self._record(CORRECTION_EVENT, payload, self.clock())
        return reply(services.interval_dict(matching()))

    # --- volumes -------------------------------------------------------------------------

    def create_volume(self, project_id: str) -> str:
        project_id = read_id(project_id, "project_id")
        body = self._body(VOLUME_CREATE)
        start = body["start"]
        payload = {
            "volume_id": body["volume_id"],
            "tenant_id": project_id,
            "display_name": body.get("volume_name"),
            "size": body["size"],
            "volume_type": body["volume_type"],
            "created_at": format_time(start),
            "launched_at": format_time(start),
            **_attachments(body.get("attached_to") or []),
        }
        self._record("volume.create.end", payload, start)
        return empty(201)

    def delete_volume(self, volume_id: str) -> str:
        volume_id = read_id(volume_id, "volume_id")
        body = self._body(DELETE)
        entity = ledger.find_entity(volume_id, "volume")
        payload = {"volume_id": volume_id, "tenant_id": entity.project_id, "status": "deleting"}
        self._record("volume.delete.end", payload, body["date"])
        return empty(202)

    def resize_volume(self, volume_id: str) -> str:
        volume_id = read_id(volume_id, "volume_id")
        body = self._body(VOLUME_RESIZE)
        entity = ledger.find_entity(volume_id, "volume")
        payload = {"volume_id": volume_id, "tenant_id": entity.project_id, "size": body["size"]}
        self._record("volume.resize.end", payload, body["date"])
        return empty(200)

    def _attachments(self, volume_id: str, event_type: str) -> str:
        volume_id = read_id(volume_id, "volume_id")
        body = self._body(VOLUME_ATTACHMENTS)
        entity = ledger.find_entity(volume_id, "volume")
        payload = {
            "volume_id": volume_id,
            "tenant_id": entity.project_id,
            **_attachments(body["attachments"]),
        }
        self._record(event_type, payload, body["date"])
        return empty(200)

    def attach_volume(self, volume_id: str) -> str:
        return self._attachments(volume_id, "volume.attach.end")

    def detach_volume(self, volume_id: str) -> str:
        return self._attachments(volume_id, "volume.detach.end")

    # --- volume types --------------------------------------------------------------------

    def create_volume_type(self) -> str:
        body = self._body(VOLUME_TYPE_CREATE)
        now = self.clock()
        payload = {
            "volume_types": {
                "id": body["type_id"],
                "name": body["type_name"],
                "created_at": format_time(now),
            }
        }
        self._record("volume_type.create", payload, now)
        return empty(201)

    def delete_volume_type(self, type_id: str) -> str:
        type_id = read_id(type_id, "type_id")
        if not ledger.delete_volume_type(type_id):
            raise not_found(f"volume type {type_id} is unknown")
        return empty(202)
