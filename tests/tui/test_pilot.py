"""Driving the TUI from the keyboard on the seeded cloud, and checking the database after."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, Select

from rintik_lite import invoice_export, invoices
from rintik_lite.billing.periods import Period
from rintik_lite.models import Invoice, Price, Quarantine
from rintik_lite.tui.confirm import ConfirmScreen
from rintik_lite.tui.events import EventsScreen
from rintik_lite.tui.help import HelpScreen
from rintik_lite.tui.invoice import InvoiceScreen
from rintik_lite.tui.price_form import PriceFormScreen
from rintik_lite.tui.prices import PricesScreen
from rintik_lite.tui.project import ProjectScreen
from rintik_lite.tui.projects import ProjectsScreen
from rintik_lite.tui.save_as import SaveAsScreen
from rintik_lite.tui.tables import LiveTable, VirtualTable
from tests.billing.trace import instance
from tests.conftest import NOW, record
from tests.tui.conftest import drive, keys, make_app, settle
from tests.tui.seed import ACME, GLOBEX, NAMELESS, OCTOBER, STAGING, project_created, settings


def listed(pilot: Pilot[None]) -> list[str]:
    """Project ids in the projects table, top to bottom."""
    return [row.key for row in pilot.app.screen.query_one(VirtualTable).rows]


def october_invoice(project_id: str) -> Invoice:
    return Invoice.get((Invoice.project_id == project_id) & (Invoice.period == str(OCTOBER)))


async def open_acme_october(pilot: Pilot[None]) -> None:
    """Find acme-prod by typing, open it, then its October invoice (under the running one)."""
    await keys(pilot, *"acme-p", "enter", "3", "down", "enter")
    assert isinstance(pilot.app.screen, InvoiceScreen)


def test_type_to_filter_then_open_a_project(seeded: str) -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        assert listed(pilot) == [ACME, STAGING, GLOBEX, NAMELESS]  # by name, nameless last
        await keys(pilot, *"GLOB")
        assert listed(pilot) == [GLOBEX]
        await keys(pilot, "escape")
        assert listed(pilot) == [ACME, STAGING, GLOBEX, NAMELESS]
        await keys(pilot, *"9e8d")  # part of an id
        assert listed(pilot) == [NAMELESS]
        await keys(pilot, "backspace", "backspace", "backspace", "backspace", *"glo", "enter")
        screen = pilot.app.screen
        assert isinstance(screen, ProjectScreen)
        assert screen.project_id == GLOBEX
        resources = screen.query_one("#resources-table", LiveTable)
        assert sorted(resources.get_column_at(0)) == ["fip", "instance", "router"]
        await keys(pilot, "3")
        rows = screen.query_one("#invoices-table", LiveTable)
        assert [rows.get_row_at(i)[:3] for i in range(rows.row_count)] == [
            ["running", "2026-11", "in progress"],
            ["#2", "2026-10", "finished"],
        ]
        await keys(pilot, "escape")
        assert isinstance(pilot.app.screen, ProjectsScreen)
        assert listed(pilot) == [GLOBEX]  # the filter is kept

    drive(make_app(seeded), scenario)


def test_sort_by_each_column(seeded: str) -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        await keys(pilot, "ctrl+s")  # id
        assert listed(pilot) == sorted([ACME, STAGING, GLOBEX, NAMELESS])
        await keys(pilot, "ctrl+s")  # active resources, most first
        assert listed(pilot)[0] == ACME
        await keys(pilot, "ctrl+s")  # month-to-date cost, highest first
        assert listed(pilot) == [ACME, GLOBEX, NAMELESS, STAGING]
        await keys(pilot, "ctrl+r")
        assert listed(pilot) == [STAGING, NAMELESS, GLOBEX, ACME]
        await keys(pilot, "ctrl+s")  # last event, newest first
        assert listed(pilot) == [NAMELESS, STAGING, ACME, GLOBEX]

    drive(make_app(seeded), scenario)


def test_mark_last_months_invoice_paid_then_roll_it_back(seeded: str) -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        await open_acme_october(pilot)
        await keys(pilot, "p")
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await keys(pilot, "n")  # no: nothing changes
        assert october_invoice(ACME).state == "unpaid"
        await keys(pilot, "p", "y")
        paid = october_invoice(ACME)
        assert (paid.state, paid.paid_at) == ("finished", NOW)
        assert "PAID" in str(pilot.app.screen.query_one("#invoice-title").render())
        await keys(pilot, "u", "y")
        rolled_back = october_invoice(ACME)
        assert (rolled_back.state, rolled_back.paid_at) == ("unpaid", None)

    drive(make_app(seeded), scenario)


def test_export_an_invoice_as_csv_and_html(seeded: str, tmp_path: Path) -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        await open_acme_october(pilot)
        for fmt in ("csv", "html"):
            await keys(pilot, fmt[0])
            dialog = pilot.app.screen
            assert isinstance(dialog, SaveAsScreen)
            assert dialog.query_one(Input).value.endswith(f"invoice-1-2026-10.{fmt}")
            dialog.query_one(Input).value = str(tmp_path / f"acme.{fmt}")
            await keys(pilot, "enter")

    drive(make_app(seeded), scenario)
    rules = invoices.rules_from(settings(seeded))
    doc = invoices.show_invoice(october_invoice(ACME).id, NOW, rules)
    assert (tmp_path / "acme.csv").read_text() == invoice_export.invoice_csv(doc)
    assert (tmp_path / "acme.html").read_text() == invoice_export.invoice_html(doc)


def test_set_a_missing_price(seeded: str) -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        await keys(pilot, "f3")
        screen = pilot.app.screen
        assert isinstance(screen, PricesScreen)
        assert screen.price_list is not None
        assert [m["keys"] for m in screen.price_list.missing] == [
            ["id-g1.gpu", "g1.gpu"],
            ["vt-hdd", "hdd"],
        ]
        await keys(pilot, "enter")  # on the first missing price: the GPU flavor
        form = pilot.app.screen
        assert isinstance(form, PriceFormScreen)
        assert form.query_one("#kind", Select).value == "flavor"
        assert form.query_one("#key", Input).value == "g1.gpu"
        await keys(pilot, *"1.25", "enter")
        assert isinstance(pilot.app.screen, ConfirmScreen)
        await keys(pilot, "y")
        assert isinstance(pilot.app.screen, PricesScreen)
        assert [m["keys"] for m in screen.price_list.missing] == [["vt-hdd", "hdd"]]

    drive(make_app(seeded), scenario)
    row = Price.get((Price.kind == "flavor") & (Price.key == "g1.gpu"))
    assert (str(row.hourly), row.monthly, row.project_id, row.currency, row.since) == (
        "1.25",
        None,
        None,
        "USD",
        None,
    )


def test_add_a_price_for_one_project(seeded: str) -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        await keys(pilot, "f3", "a")
        form = pilot.app.screen
        assert isinstance(form, PriceFormScreen)
        form.query_one("#kind", Select).value = "router"
        await settle(pilot)
        assert form.query_one("#key", Input).value == "default"
        form.query_one("#hourly", Input).value = "0.03"
        form.query_one("#project", Input).value = GLOBEX
        await keys(pilot, "tab", "enter", "y")

    drive(make_app(seeded), scenario)
    row = Price.get((Price.kind == "router") & Price.project_id.is_null(False))
    assert (row.key, str(row.hourly), row.project_id) == ("default", "0.03", GLOBEX)


def test_retry_the_quarantine(seeded: str) -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        await keys(pilot, "f4")
        assert isinstance(pilot.app.screen, EventsScreen)
        quarantine = pilot.app.screen.query_one("#quarantine-table", LiveTable)
        assert quarantine.row_count == 1
        await keys(pilot, "r", "y")

    drive(make_app(seeded), scenario)
    assert [q.attempts for q in Quarantine.select()] == [2]  # still not JSON


def test_a_new_instance_appears_live(seeded: str) -> None:
    hooli = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"

    async def scenario(pilot: Pilot[None]) -> None:
        await keys(pilot, *"hooli")
        assert listed(pilot) == []
        record(  # what a `run` next door commits
            project_created(hooli, "hooli", NOW),
            instance("create.end", NOW, project=hooli, instance_id="i-new", name="new"),
            now=NOW,
        )
        pilot.app.poll_collector()  # what the refresh timer does
        await settle(pilot)
        assert listed(pilot) == [hooli]
        assert pilot.app.collector is not None
        assert pilot.app.collector.events_last_minute == 3  # 40 s ago, and these two

    drive(make_app(seeded), scenario)


def test_help_screen_and_themes(seeded: str) -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        await keys(pilot, "f1")
        assert isinstance(pilot.app.screen, HelpScreen)
        await keys(pilot, "escape")
        assert isinstance(pilot.app.screen, ProjectsScreen)
        await keys(pilot, "ctrl+t")
        assert pilot.app.theme == "textual-light"
        await keys(pilot, "f4", "escape")
        assert isinstance(pilot.app.screen, ProjectsScreen)

    drive(make_app(seeded), scenario)


def test_the_running_invoice_matches_invoice_for(seeded: str) -> None:
    async def scenario(pilot: Pilot[None]) -> None:
        await keys(pilot, *"acme-p", "enter", "2", "enter")
        screen = pilot.app.screen
        assert isinstance(screen, InvoiceScreen)
        assert screen.invoice is not None
        rules = invoices.rules_from(settings(seeded))
        expected = invoices.invoice_for(ACME, Period(2026, 11), NOW, rules)
        assert screen.invoice == expected

    drive(make_app(seeded), scenario)
