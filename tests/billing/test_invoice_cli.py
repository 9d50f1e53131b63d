"""`rintik-lite price ...` and `rintik-lite invoice ...`: CliRunner and real subprocesses.

The commands read the real clock, so every trace here lies in months that have ended by
the time the tests run (September and October 2026, or earlier).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rintik_lite.billing.periods import Period
from rintik_lite.cli import app
from rintik_lite.models import Invoice
from tests.billing import trace
from tests.billing.trace import utc
from tests.conftest import record

runner = CliRunner()
D = Decimal
NOW = datetime.now(UTC)


def config_file(tmp_path: Path, db_url: str, extra: str = "") -> Path:
    path = tmp_path / "rintik.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n{extra}')
    return path


def cli(config: Path, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args, "--config", str(config)])
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout if code == 0 else result.stderr


def rintik(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    executable = shutil.which("rintik-lite", path=str(Path(sys.executable).parent))
    command = [executable] if executable else [sys.executable, "-m", "rintik_lite"]
    return subprocess.Popen(
        [*command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


# --- the acceptance check: a month of notifications, an independent calculation ---------

PROJECTS = ["acme", "globex", "initech", "umbrella"]
START, END = utc(2026, 9, 18), utc(2026, 11, 10)
GIB = 2**30

# (kind, key, hourly, monthly, project) as given to `rintik-lite price set`
PRICES: list[tuple[str, str, str, str | None, str | None]] = [
    ("flavor", "id-m1.small", "0.021", None, None),  # by flavor id
    ("flavor", "m1.large", "0.0875", "30", None),  # by flavor name, capped
    ("flavor", "m1.small", "0.017", None, "initech"),  # project row, name key: still wins
    ("volume", "vt-ssd", "0.00041", "0.15", None),  # by volume type id, capped per GB
    ("volume", "hdd", "0.00013", None, None),  # by volume type name (vt-hdd is "hdd")
    ("snapshot", "default", "0.00007", None, None),
    ("image", "default", "0.00009", None, None),
    ("floating_ip", "default", "0.0055", None, None),
    ("router", "default", "0.012", None, None),
    ("router", "default", "0.004", None, "globex"),
]
FLAVORS = ["m1.small", "m1.large", "m1.tiny"]  # m1.tiny has no price: billed 0, flagged


@dataclass
class Segment:
    """One interval as the test knows it happened (not read back from the ledger)."""

    entity_id: str
    entity_type: str
    project: str
    start: datetime
    end: datetime | None
    keys: tuple[str, ...]  # price keys, id key first
    quantity: int


@dataclass
class Month:
    messages: list[dict[str, Any]] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)


def _month(seed: int) -> Month:
    """Random but reproducible activity of four projects around October 2026."""
    rng = random.Random(seed)
    month = Month()
    span = int((END - START).total_seconds())

    def at() -> datetime:
        return START + timedelta(seconds=rng.randrange(span))

    def history(first: datetime, changes: int) -> list[datetime]:
        times = sorted({first, *(at() for _ in range(changes))})
        return [t for t in times if t >= first]

    month.messages.append(trace.volume_type("vt-hdd", "hdd", START))
    for project in PROJECTS:
        for n in range(3):
            iid = f"i-{project}-{n}"
            times = history(at(), rng.randrange(3))
            deleted = rng.random() < 0.5
            flavors: list[str] = []
            for _ in times:  # a resize always changes the flavor
                flavors.append(rng.choice([f for f in FLAVORS if flavors[-1:] != [f]]))
            for i, (t, flavor) in enumerate(zip(times, flavors, strict=True)):
                event = "create.end" if i == 0 else "resize.confirm.end"
                month.messages.append(
                    trace.instance(event, t, project=project, instance_id=iid, flavor=flavor)
                )
            ends: list[datetime | None] = [*times[1:], None]
            if deleted:
                gone = times[-1] + timedelta(seconds=rng.randrange(1, 20 * 86400))
                month.messages.append(
                    trace.instance(
                        "delete.end",
                        gone,
                        project=project,
                        instance_id=iid,
                        flavor=flavors[-1],
                        launched=times[-1],
                        deleted=gone,
                    )
                )
                ends[-1] = gone
            for t, end, flavor in zip(times, ends, flavors, strict=True):
                keys = (f"id-{flavor}", flavor)
                month.segments.append(Segment(iid, "instance", project, t, end, keys, 1))
        for n in range(2):
            vid, vtype = f"v-{project}-{n}", rng.choice(["vt-ssd", "vt-hdd"])
            keys = (vtype, "hdd") if vtype == "vt-hdd" else (vtype,)
            size, attached = rng.choice([1, 5, 20, 100]), []
            times = history(at(), 3)
            for i, t in enumerate(times):
                if i == 0:
                    event = "create.end"
                elif rng.random() < 0.5:
                    event, size = "resize.end", size * 2
                else:
                    event, attached = ("detach.end", []) if attached else ("attach.end", ["i-x"])
                month.messages.append(
                    trace.volume(
                        event,
                        t,
                        project=project,
                        volume_id=vid,
                        size=size,
                        volume_type=vtype,
                        attached=attached,
                    )
                )
                if i:
                    month.segments[-1].end = t
                month.segments.append(Segment(vid, "volume", project, t, None, keys, size))
            if rng.random() < 0.5:
                gone = times[-1] + timedelta(seconds=rng.randrange(1, 10 * 86400))
                month.messages.append(
                    trace.volume("delete.end", gone, project=project, volume_id=vid, size=size)
                )
                month.segments[-1].end = gone
        # one each of the resources priced without a key, some deleted
        others: list[tuple[str, str, int, Any, Any]] = [
            (
                "snapshot",
                f"s-{project}",
                size,
                lambda e, t, p, x, g=size: trace.snapshot(e, t, project=p, snapshot_id=x, size=g),
                "delete.end",
            ),
            (
                "image",
                f"im-{project}",
                3,  # 2 GiB + 1 byte is billed as 3 GB
                lambda e, t, p, x: trace.image(e, t, project=p, image_id=x, size_bytes=2 * GIB + 1),
                "delete",
            ),
            (
                "floating_ip",
                f"f-{project}",
                1,
                lambda e, t, p, x: trace.floating_ip(e, t, project=p, fip_id=x),
                "delete.end",
            ),
            (
                "router",
                f"r-{project}",
                1,
                lambda e, t, p, x: trace.router(e, t, project=p, router_id=x),
                "delete.end",
            ),
        ]
        for entity_type, entity_id, quantity, build, delete in others:
            t = at()
            create = "activate" if entity_type == "image" else "create.end"
            month.messages.append(build(create, t, project, entity_id))
            end = None
            if rng.random() < 0.5:
                end = t + timedelta(seconds=rng.randrange(1, 15 * 86400))
                month.messages.append(build(delete, end, project, entity_id))
            segment = Segment(entity_id, entity_type, project, t, end, ("default",), quantity)
            month.segments.append(segment)
    return month


def _price_of(segment: Segment) -> tuple[Decimal, Decimal | None] | None:
    """Project rows first, then global rows; within each, the id key then the name key."""
    kind = {"instance": "flavor"}.get(segment.entity_type, segment.entity_type)
    for scope in (segment.project, None):
        for key in segment.keys:
            for k, pkey, hourly, monthly, project in PRICES:
                if (k, pkey, project) == (kind, key, scope):
                    return D(hourly), None if monthly is None else D(monthly)
    return None


def _expected(month: Month, project: str, period: Period, tax_percent: Decimal) -> dict[str, Any]:
    """The invoice by the rules, in plain arithmetic: clip, ceil hours, cap, round."""
    cent = D("0.01")
    lines = []
    for s in month.segments:
        if s.project != project:
            continue
        start = max(s.start, period.start)
        end = min(s.end or period.end, period.end)
        if end <= start:
            continue
        seconds = (end - start) // timedelta(seconds=1)  # the trace has whole seconds
        hours = -(-seconds // 3600)  # ceil, in integers
        price = _price_of(s)
        amount = D(0)
        if price is not None:
            per_unit = hours * price[0]
            if price[1] is not None and per_unit > price[1]:
                per_unit = price[1]
            amount = per_unit * s.quantity
        lines.append(
            (s.entity_id, start, end, D(hours), s.quantity, amount.quantize(cent, ROUND_HALF_UP))
        )
    subtotal = sum((line[5] for line in lines), D("0.00"))
    tax = (subtotal * tax_percent / 100).quantize(cent, ROUND_HALF_UP)
    return {"lines": sorted(lines), "subtotal": subtotal, "tax": tax, "total": subtotal + tax}


def test_a_month_of_notifications_closed_by_the_cli_matches_an_independent_calculation(
    tmp_path: Path, db_url: str
) -> None:
    config = config_file(tmp_path, db_url, '[billing]\ntax_percent = "8.25"\n')
    month = _month(seed=20261)
    record(*month.messages, now=NOW)
    for kind, key, hourly, monthly, project in PRICES:
        args = ["price", "set", kind, key, "--hourly", hourly]
        args += ["--monthly", monthly] if monthly else []
        args += ["--project", project] if project else []
        cli(config, *args)

    closed = json.loads(cli(config, "invoice", "close", "--json"))
    ended = [Period(2026, 9), Period(2026, 10)]
    used = {
        (s.project, str(period))
        for s in month.segments
        for period in ended
        if s.start < period.end and (s.end is None or s.end > period.start)
    }
    assert {(d["project_id"], d["period"]) for d in closed if d["period"] <= "2026-10"} == used
    assert sorted(d["number"] for d in closed) == list(range(1, len(closed) + 1))
    checked = 0
    for summary in closed:
        doc = json.loads(cli(config, "invoice", "show", str(summary["id"])))
        want = _expected(month, doc["project_id"], Period.parse(doc["period"]), D("8.25"))
        got = sorted(
            (
                line["entity_id"],
                datetime.fromisoformat(line["start"]),
                datetime.fromisoformat(line["end"]),
                D(line["hours"]),
                line["quantity"],
                D(line["amount"]),
            )
            for line in doc["lines"]
        )
        assert got == want["lines"], doc["project_id"]
        assert (D(doc["subtotal"]), D(doc["tax"]), D(doc["total"])) == (
            want["subtotal"],
            want["tax"],
            want["total"],
        )
        assert doc["state"] == "unpaid" and doc["currency"] == "USD"
        checked += len(doc["lines"])
    assert checked > 50  # the trace is not trivially small
    missing = json.loads(cli(config, "invoice", "show", str(closed[0]["id"])))["lines"]
    assert all(line["missing_price"] == ("m1.tiny" in line["description"]) for line in missing)


# --- concurrency: two processes close the same months at once ---------------------------


def test_two_processes_closing_at_once_close_each_invoice_exactly_once(
    tmp_path: Path, db_url: str
) -> None:
    projects = [f"p{n:02d}" for n in range(40)]
    record(
        *(
            trace.instance("create.end", utc(2026, 9, 20), project=p, instance_id=f"i-{p}")
            for p in projects
        ),
        now=NOW,
    )
    env = {"RINTIK_DATABASE_URL": db_url, "RINTIK_CONFIG": ""}
    first, second = (
        rintik("invoice", "close", "--json", env=env),
        rintik("invoice", "close", "--json", env=env),
    )
    outputs = [process.communicate(timeout=120) for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    closed = [doc for stdout, _ in outputs for doc in json.loads(stdout)]
    keys = [(d["project_id"], d["period"]) for d in closed]
    ended = [str(p) for p in (Period(2026, 9), Period(2026, 10))]
    assert len(keys) == len(set(keys))  # nothing closed twice
    assert set(keys) >= {(p, period) for p in projects for period in ended}
    numbers = sorted(d["number"] for d in closed)
    assert numbers == list(range(1, len(closed) + 1))  # unique and gapless
    rows = Invoice.select().where(Invoice.state == "unpaid")
    assert sorted(r.number for r in rows) == numbers


# --- the commands one by one -----------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    record(
        trace.instance("create.end", utc(2026, 10, 3, 10), project="proj-a", instance_id="i-1"),
        trace.floating_ip("create.end", utc(2026, 10, 30), project="proj-a", fip_id="f-1"),
        now=NOW,
    )
    return config_file(
        tmp_path,
        db_url,
        '[billing]\ncompany_name = "Rintik & Co"\ncompany_address = "1 Cloud Road\\nJakarta"\n',
    )


def test_price_set_list_and_missing(config: Path) -> None:
    out = cli(config, "price", "set", "flavor", "m1.small", "--hourly", "0.10", "--monthly", "50")
    assert out.strip() == "price 1: flavor m1.small: 0.10 USD/hour, capped at 50 a month"
    out = cli(
        config,
        *("price", "set", "flavor", "m1.small", "--hourly", "0.2", "--project", "proj-b"),
        *("--since", "2026-10-15T00:00:00Z", "--currency", "eur"),
    )
    assert out.strip() == (
        "price 2: flavor m1.small for project proj-b: 0.2 EUR/hour from 2026-10-15T00:00:00Z"
    )
    rows = json.loads(cli(config, "price", "list", "--json"))
    assert [(r["id"], r["hourly"], r["monthly"], r["since"]) for r in rows] == [
        (1, "0.10", "50", None),
        (2, "0.2", None, "2026-10-15T00:00:00Z"),
    ]
    assert "m1.small" in cli(config, "price", "list")
    missing = json.loads(cli(config, "price", "missing", "--period", "2026-10", "--json"))
    assert [(m["kind"], m["keys"], m["entities"]) for m in missing] == [
        ("floating_ip", ["default"], 1)
    ]
    assert "floating_ip" in cli(config, "price", "missing", "--period", "2026-10")


def test_invoice_close_list_show_pay_unpay(config: Path) -> None:
    cli(config, "price", "set", "flavor", "m1.small", "--hourly", "0.10")
    draft = cli(config, "invoice", "close", "--period", "2026-10", "--dry-run")
    # Oct 3 10:00 -> Nov 1 = 686 h x 0.10 = 68.60 (the floating IP has no price)
    assert draft.splitlines() == [
        "would close project proj-a, 2026-10, total 68.60 USD",
        "1 invoice would be closed",
    ]
    out = cli(config, "invoice", "close", "--period", "2026-10")
    assert out.splitlines() == [
        "closed invoice 1: project proj-a, 2026-10, total 68.60 USD",
        "1 invoice closed",
    ]
    assert cli(config, "invoice", "close", "--period", "2026-10").strip() == "0 invoices closed"
    listed = json.loads(cli(config, "invoice", "list", "--project", "proj-a", "--json"))
    october = next(d for d in listed if d["period"] == "2026-10")
    assert (october["number"], october["state"], october["total"]) == (1, "unpaid", "68.60")
    assert {d["state"] for d in listed if d["period"] != "2026-10"} == {"in_progress"}
    assert "proj-a" in cli(config, "invoice", "list", "--period", "2026-10")

    doc = json.loads(cli(config, "invoice", "show", str(october["id"]), "--format", "json"))
    assert set(doc) >= {"id", "number", "project_id", "period", "state", "currency"}
    assert set(doc) >= {"subtotal", "tax", "total", "lines"}
    assert set(doc["lines"][0]) >= {
        *("entity_id", "entity_type", "description", "start", "end", "hours", "quantity"),
        *("unit_price", "amount", "missing_price", "adjusts"),
    }
    csv_text = cli(config, "invoice", "show", str(october["id"]), "--format", "csv")
    assert csv_text.splitlines() == [
        "entity_type,entity_id,description,start,end,hours,quantity,unit_price,amount,"
        "missing_price,adjusts",
        "floating_ip,f-1,floating IP 203.0.113.7,2026-10-30T00:00:00Z,2026-11-01T00:00:00Z,"
        "48,1,0,0.00,true,",
        "instance,i-1,m1.small (instance web),2026-10-03T10:00:00Z,2026-11-01T00:00:00Z,"
        "686,1,0.10,68.60,false,",
    ]
    page = cli(config, "invoice", "show", str(october["id"]), "--format", "html")
    assert "<h1>Invoice 1</h1>" in page
    assert "Rintik &amp; Co" in page and "1 Cloud Road<br>Jakarta" in page
    assert "68.60" in page and "(no price)" in page and "$" not in page

    assert cli(config, "invoice", "pay", str(october["id"])).strip() == (
        f"invoice {october['id']} (number 1) is finished"
    )
    unpaid = json.loads(cli(config, "invoice", "unpay", str(october["id"]), "--json"))
    assert (unpaid["state"], unpaid["paid_at"]) == ("unpaid", None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["invoice", "close", "--period", "2026-13"], "error: --period: invalid period '2026-13'"),
        (["invoice", "list", "--period", "Oct"], "error: --period: invalid period 'Oct'"),
        (["invoice", "show", "9999"], "error: invoice 9999 does not exist"),
        (["invoice", "show", "x1"], "error: invoice id must be a whole number, got 'x1'"),
        (["invoice", "pay", "9999"], "error: invoice 9999 does not exist"),
        (["invoice", "show", "1", "--format", "pdf"], "error: --format: 'pdf' is not one of"),
        (
            ["price", "set", "flavor", "m1", "--hourly", "1,5"],
            "error: --hourly: '1,5' is not a decimal number",
        ),
        (
            ["price", "set", "flavor", "m1", "--hourly", "1", "--monthly", "lots"],
            "error: --monthly: 'lots' is not a decimal number",
        ),
        (["price", "set", "gpu", "a100", "--hourly", "1"], "error: unknown price kind 'gpu'"),
        (
            ["price", "set", "flavor", "m1", "--hourly", "1", "--since", "soon"],
            "error: --since: 'soon' is not an ISO 8601 date and time",
        ),
        (["price", "list", "--kind", "gpu"], "error: unknown price kind 'gpu'"),
        (
            ["invoice", "close", "--period", "2999-01"],
            "error: period 2999-01 has not ended: it can be closed from 2999-02-01T00:00:00Z",
        ),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    config: Path, args: list[str], message: str
) -> None:
    error = cli(config, *args, code=2)
    assert error.startswith(message)
    assert error.count("\n") == 1  # one line, no traceback


def test_open_invoice_cannot_be_paid(config: Path) -> None:
    listed = json.loads(cli(config, "invoice", "list", "--json"))
    running = next(d for d in listed if d["state"] == "in_progress")
    error = cli(config, "invoice", "pay", str(running["id"]), code=2)
    assert (
        error
        == f"error: invoice {running['id']} is in progress: it cannot be paid before it is closed\n"
    )
