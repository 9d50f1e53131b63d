"""Projects: every project, its active resources, month-to-date cost and last event.

Type to filter (by name or id); the arrows, page keys and Enter drive the list while the
filter keeps the keyboard. The list comes in two steps: the projects first (the API's
`GET /v1/projects` query), then what costs a pass over the month's ledger (month-to-date
cost, last event), cached and reloaded every `cost_seconds`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from time import monotonic
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Input, Static

from rintik_lite.billing.rating import Totals
from rintik_lite.tui.header import CollectorBar
from rintik_lite.tui.messages import CostsLoaded, ProjectsLoaded
from rintik_lite.tui.project import ProjectScreen
from rintik_lite.tui.queries import ProjectSummary
from rintik_lite.tui.screen import LedgerScreen
from rintik_lite.tui.tables import Column, Row, VirtualTable, age, money

#: Rating the month again waits at least this many times the last pass took.
COST_SPACING = 5.0

#: Sortable columns, in the order ctrl+s cycles through them.
SORTS: tuple[str, ...] = ("name", "id", "active", "cost", "last")


@dataclass(frozen=True)
class Entry:
    """A project as the list shows it, how the filter finds it, and how it sorts."""

    row: Row
    haystack: str  # name and id, casefolded
    keys: dict[str, Any]


class ProjectsScreen(LedgerScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", priority=True),
        Binding("down", "move(1)", show=False, priority=True),
        Binding("up", "move(-1)", show=False, priority=True),
        Binding("pagedown", "page(1)", show=False, priority=True),
        Binding("pageup", "page(-1)", show=False, priority=True),
        Binding("ctrl+s", "sort", "Sort"),
        Binding("ctrl+r", "reverse", "Reverse"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.projects: list[ProjectSummary] = []
        self.costs: dict[str, Totals] = {}
        self.last_events: dict[str, datetime] = {}
        self.costs_at: datetime | None = None
        self.costs_pending = False
        self.costs_next = 0.0
        self.sort_by = "name"
        self.descending = False
        self.filter = ""
        self._entries: list[Entry] | None = None

    def compose(self) -> ComposeResult:
        yield CollectorBar("Projects")
        yield Input(placeholder="type to filter projects by name or id", id="filter")
        yield VirtualTable(self.columns(), id="projects")
        yield Static("loading projects…", id="projects-count")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.set_interval(self.tui.cost_seconds, self.refresh_costs)

    # --- loading ---------------------------------------------------------------------------

    reading = "list the projects"

    def read(self) -> ProjectsLoaded:
        return ProjectsLoaded(self.source.projects())

    def refresh_costs(self) -> None:
        """Rate the month again, unless a pass is running or the last one was too recent
        for its cost (at most a fifth of the time spent rating, on a big ledger)."""
        if not self.costs_pending and monotonic() >= self.costs_next:
            self.costs_pending = True
            self.load_costs()

    @work(thread=True, group="costs", exit_on_error=False)
    def load_costs(self) -> None:
        started = monotonic()
        try:
            costs, last_events = self.source.month_to_date(self.now())
        except Exception as exc:
            self.failed("rate this month's usage", exc)
            return
        finally:  # plain attributes: safe to set from the thread
            self.costs_next = monotonic() + COST_SPACING * (monotonic() - started)
            self.costs_pending = False
        self.post_message(CostsLoaded(costs, last_events))

    def on_projects_loaded(self, message: ProjectsLoaded) -> None:
        self.projects = message.projects
        self._entries = None
        self.show()
        if self.costs_at is None:  # the first costs: once the list is on screen
            self.refresh_costs()

    def on_costs_loaded(self, message: CostsLoaded) -> None:
        self.costs = message.costs
        self.last_events = message.last_events
        self.costs_at = self.now()
        self._entries = None
        self.show()

    # --- showing ---------------------------------------------------------------------------

    def columns(self) -> list[Column]:
        def label(key: str, text: str) -> str:
            if key != self.sort_by:
                return text
            return f"{text} {'▼' if self.descending else '▲'}"

        currency = self.source.currency
        return [
            Column("name", label("name", "NAME"), flex=3, least=10),
            Column("id", label("id", "ID"), flex=2, least=8, most=32),
            Column("active", label("active", "ACTIVE"), width=8, align="right"),
            Column("cost", label("cost", f"MTD {currency}"), width=12, align="right"),
            Column("last", label("last", "LAST EVENT"), width=10, align="right"),
        ]

    def entries(self) -> list[Entry]:
        """Each project's cells, filter text and sort keys, built once per load."""
        if self._entries is None:
            now = self.now()
            loaded = self.costs_at is not None
            entries = []
            for project in self.projects:
                pid = project.project_id
                totals = self.costs.get(pid)
                moment = self.last_events.get(pid)
                cells = (
                    project.name or "(no name)",
                    pid,
                    str(project.active),
                    money(totals.total) if totals else ("" if loaded else "…"),
                    age(moment, now),
                )
                keys = {
                    "name": ((project.name or "~").casefold(), pid),
                    "id": pid,
                    "active": (project.active, pid),
                    "cost": (totals.total if totals else Decimal(-1), pid),
                    "last": (moment.timestamp() if moment else 0.0, pid),
                }
                haystack = f"{(project.name or '').casefold()}\n{pid.casefold()}"
                entries.append(Entry(Row(pid, cells), haystack, keys))
            self._entries = entries
        return self._entries

    def matching(self) -> list[Entry]:
        """The projects whose name or id contains the filter (any case), sorted."""
        needle = self.filter.strip().casefold()
        entries = self.entries()
        if needle:
            entries = [e for e in entries if needle in e.haystack]
        sort_by = self.sort_by
        return sorted(entries, key=lambda e: e.keys[sort_by], reverse=self.descending)

    def show(self) -> None:
        rows = [entry.row for entry in self.matching()]
        table = self.query_one(VirtualTable)
        table.set_columns(self.columns())
        table.show(rows)
        shown = f"{len(rows):,} of {len(self.projects):,} projects"
        if self.filter.strip():
            shown += f" matching “{self.filter.strip()}”"
        self.query_one("#projects-count", Static).update(shown, layout=False)

    # --- actions ---------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter = event.value
        self.show()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""

    def action_move(self, delta: int) -> None:
        self.query_one(VirtualTable).move(delta)

    def action_page(self, direction: int) -> None:
        self.query_one(VirtualTable).page(direction)

    def action_sort(self) -> None:
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self.descending = self.sort_by in ("active", "cost", "last")
        self.show()

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self.show()

    def on_virtual_table_header_clicked(self, message: VirtualTable.HeaderClicked) -> None:
        if message.column == self.sort_by:
            self.descending = not self.descending
        else:
            self.sort_by = message.column
            self.descending = message.column in ("active", "cost", "last")
        self.show()

    def action_open(self) -> None:
        self.query_one(VirtualTable).select()

    def on_virtual_table_selected(self, message: VirtualTable.Selected) -> None:
        project = next((p for p in self.projects if p.project_id == message.key), None)
        if project is not None:
            self.app.push_screen(ProjectScreen(project.project_id, project.name))
