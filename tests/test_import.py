"""`rintik-lite import FILE` and `rintik_lite.importer`: an inventory of existing resources
becomes exists notifications, recorded once, on real SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rintik_lite import importer, services
from rintik_lite.cli import app
from rintik_lite.models import Event, Interval
from tests.billing import trace
from tests.conftest import record

P1, P2 = "tenant-1", "tenant-2"
INVENTORY: dict[str, Any] = {
    "instances": [
        {
            "tenant_id": P1,
            "instance_id": "i-9",
            "name": "web",
            "flavor_id": "id-m1.small",
            "start_date": "2026-09-14T08:30:00Z",
        }
    ],
    "volumes": [
        {
            "tenant_id": P1,
            "volume_id": "v-9",
            "volume_name": "data",
            "volume_type_id": "vt-ssd",
            "space_allocation_gb": 10,
            "start_date": "2026-09-15T00:00:00.000000",
        }
    ],
    "images": [
        {
            "tenant_id": P2,
            "image_id": "g-9",
            "name": "ubuntu",
            "space_allocation_gb": 2.25,
            "start_date": "2026-10-01",
        }
    ],
}
runner = CliRunner()


def run(tmp_path: Path, db_url: str, *args: str, code: int = 0) -> str:
    config = tmp_path / "rintik.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    result = runner.invoke(app, ["import", *args, "--config", str(config)])
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout if code == 0 else result.stderr


def inventory_file(tmp_path: Path, doc: Any = INVENTORY) -> str:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(doc))
    return str(path)


def spans(project_id: str) -> list[tuple[str, str, str | None, Any]]:
    return [
        (r["entity_id"], r["start"], r["end"], r.get("size")) for r in services.usage(project_id)
    ]


def test_importing_twice_changes_nothing(tmp_path: Path, db_url: str) -> None:
    path = inventory_file(tmp_path)
    first = json.loads(run(tmp_path, db_url, path, "--json"))
    assert first == {"resources": 3, "applied": 3, "duplicate": 0}
    ledger = (spans(P1), spans(P2))
    assert ledger == (
        [
            ("i-9", "2026-09-14T08:30:00Z", None, None),
            ("v-9", "2026-09-15T00:00:00Z", None, 10),
        ],
        [("g-9", "2026-10-01T00:00:00Z", None, 3)],  # 2.25 GB is billed as 3
    )
    assert run(tmp_path, db_url, path) == "3 resources: 0 recorded, 3 already imported\n"
    assert (spans(P1), spans(P2)) == ledger
    assert Event.select().where(Event.source == "import").count() == 3
    assert [e.event_type for e in Event.select().order_by(Event.event_type)] == [
        "compute.instance.exists",
        "image.update",
        "volume.exists",
    ]


def test_billing_start_moves_earlier_creation_times_up(tmp_path: Path, db_url: str) -> None:
    path = inventory_file(tmp_path)
    run(tmp_path, db_url, path, "--billing-start", "2026-10-01T00:00:00Z")
    assert [(entity, start) for entity, start, _, _ in spans(P1) + spans(P2)] == [
        ("i-9", "2026-10-01T00:00:00Z"),
        ("v-9", "2026-10-01T00:00:00Z"),
        ("g-9", "2026-10-01T00:00:00Z"),
    ]


def test_a_resource_the_ledger_knows_keeps_its_history(tmp_path: Path, db_url: str) -> None:
    record(trace.volume("create.end", trace.utc(2026, 10, 3), project=P1, volume_id="v-9", size=10))
    doc = {"volumes": INVENTORY["volumes"]}
    assert json.loads(run(tmp_path, db_url, inventory_file(tmp_path, doc), "--json")) == {
        "resources": 1,
        "applied": 1,
        "duplicate": 0,
    }
    # The collector saw its creation on October 3: the inventory's earlier date changes
    # nothing, and neither does the same size.
    assert spans(P1) == [("v-9", "2026-10-03T00:00:00Z", None, 10)]
    assert Interval.select().count() == 1


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "error: cannot read {path}: No such file or directory\n"),
        ("{not json", "error: {path} is not JSON: Expecting property name enclosed in double "
         "quotes: line 1 column 2 (char 1)\n"),
        ('{"volumes": [{"tenant_id": "t"}]}', "error: volumes[0].volume_id is required\n"),
        ('{"images": [{"tenant_id": "t", "image_id": "g", "name": null, '
         '"space_allocation_gb": -1, "start_date": "2026-10-01"}]}',
         "error: images[0].space_allocation_gb must be between 0 and 2147483647 GB\n"),
        ("[]", "error: the inventory must be a JSON object, not array\n"),
    ],
)  # fmt: skip
def test_a_bad_file_is_one_line_and_exit_2(
    tmp_path: Path, db_url: str, content: str | None, error: str
) -> None:
    path = tmp_path / "inventory.json"
    if content is not None:
        path.write_text(content)
    assert run(tmp_path, db_url, str(path), code=2) == error.format(path=path)
    assert Event.select().count() == 0


def test_message_ids_do_not_depend_on_the_time_of_the_import() -> None:
    items = importer.read_inventory(INVENTORY)
    first = importer.messages(items, datetime(2026, 11, 1, tzinfo=UTC))
    later = importer.messages(items, datetime(2026, 12, 1, 6, tzinfo=UTC))
    assert [m["message_id"] for m in first] == [m["message_id"] for m in later]
    assert len({m["message_id"] for m in first}) == 3
    assert [m["timestamp"] for m in later] == ["2026-12-01 06:00:00"] * 3
    assert first[1]["payload"] == {
        "volume_id": "v-9",
        "tenant_id": P1,
        "display_name": "data",
        "volume_type": "vt-ssd",
        "size": 10,
        "created_at": "2026-09-15T00:00:00Z",
        "launched_at": "2026-09-15T00:00:00Z",
    }
    moved = importer.messages(
        items, datetime(2026, 11, 1, tzinfo=UTC), billing_start=datetime(2026, 10, 1, tzinfo=UTC)
    )
    assert moved[0]["payload"]["launched_at"] == "2026-10-01T00:00:00Z"
    assert moved[0]["message_id"] != first[0]["message_id"]
    assert moved[2]["message_id"] == first[2]["message_id"]  # already after billing_start
