"""peewee models only. Times are stored as naive UTC and read back as aware UTC."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import peewee

from rintik_lite.db import database


class UTCDateTimeField(peewee.DateTimeField):
    """An aware UTC datetime; stored naive, with microseconds always written."""

    formats = ["%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"]

    def db_value(self, value: Any) -> Any:
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            if isinstance(self.model._meta.database.obj, peewee.SqliteDatabase):
                return value.strftime("%Y-%m-%d %H:%M:%S.%f")
            return value
        return super().db_value(value)

    def python_value(self, value: Any) -> Any:
        value = super().python_value(value)
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value


class JSONField(peewee.TextField):
    """JSON in a text column, written with sorted keys so equal values store equal text."""

    def db_value(self, value: Any) -> Any:
        return None if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))

    def python_value(self, value: Any) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Event(BaseModel):
    """Every notification received, stored once (deduplicated on `key`)."""

    key = peewee.CharField(max_length=255, unique=True)  # message_id, else sha256 of the body
    message_id = peewee.CharField(max_length=255, null=True)
    event_type = peewee.CharField(max_length=255, index=True)
    publisher_id = peewee.CharField(max_length=255, null=True)
    source = peewee.CharField(max_length=16)  # amqp | replay | api | import
    event_time = UTCDateTimeField(null=True, index=True)
    received_at = UTCDateTimeField()
    body = peewee.TextField()
    entity_id = peewee.CharField(max_length=255, null=True, index=True)
    observation = JSONField(null=True)  # the normalized change it carries, if any


class Quarantine(BaseModel):
    """A message that could not be decoded or applied, kept with its reason."""

    received_at = UTCDateTimeField()
    source = peewee.CharField(max_length=16)
    event_type = peewee.CharField(max_length=255, null=True)
    reason = peewee.TextField()
    body = peewee.TextField()
    attempts = peewee.IntegerField(default=1)


class Entity(BaseModel):
    """One billable resource: its fold state, so that in-order events apply incrementally."""

    entity_id = peewee.CharField(max_length=255, primary_key=True)
    entity_type = peewee.CharField(max_length=32, index=True)
    project_id = peewee.CharField(max_length=255, null=True, index=True)
    deleted = peewee.BooleanField(default=False)
    last_key = peewee.CharField(max_length=512)  # sort key of the last observation applied
    state = JSONField()


class Interval(BaseModel):
    """The usage ledger: one row per resource interval (Almanach's entity rows)."""

    entity_id = peewee.CharField(max_length=255, index=True)
    entity_type = peewee.CharField(max_length=32)
    project_id = peewee.CharField(max_length=255)
    start = UTCDateTimeField()
    end = UTCDateTimeField(null=True)
    last_event = UTCDateTimeField()
    name = peewee.CharField(max_length=255, null=True)
    attributes = JSONField()  # flavor, flavor_id, vcpus, ..., volume_type_id, size, address

    class Meta:
        indexes = ((("project_id", "start"), False), (("end",), False))


class VolumeType(BaseModel):
    """Cinder volume type id -> name, as `volume_type.create` announces it."""

    type_id = peewee.CharField(max_length=255, primary_key=True)
    name = peewee.CharField(max_length=255)
    updated_at = UTCDateTimeField()


class Project(BaseModel):
    """Keystone projects seen on the bus (ids only; names come from Keystone lookups)."""

    project_id = peewee.CharField(max_length=255, primary_key=True)
    name = peewee.CharField(max_length=255, null=True)
    created_at = UTCDateTimeField(null=True)
    deleted_at = UTCDateTimeField(null=True)
    updated_at = UTCDateTimeField()


V1_TABLES: list[type[peewee.Model]] = [Event, Quarantine, Entity, Interval, VolumeType, Project]
