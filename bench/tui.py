"""Benchmark of `rintik-lite tui` on a big ledger: time to first paint, and to filter.

    python bench/tui.py [--projects 10000] [--intervals 1000000] [--db PATH] [--reuse]

Builds a SQLite ledger of N projects and M intervals (20 resources a project, each a chain
of intervals: resizes and re-attachments over the past two years, a third still running),
then runs the app headless at 120x40 and measures:

* first paint: app start to the projects list on screen (the API's projects query);
* costs: app start to month-to-date costs and last events on screen (a pass over this
  month's intervals, rated with the invoice rules, in a worker: the list is usable before);
* filter: one keystroke in the filter to the redrawn list (averaged, and the slowest),
  and re-showing the whole list (Escape empties the filter); while the month is being
  rated in the background, and after;
* putting the 10,000 rows on screen: our VirtualTable, and a Textual DataTable.

The database is filled with `sqlite3.executemany` straight into the ledger tables: this
bypasses the collector (notifications, dedup, folding) on purpose, for speed; the TUI only
reads those tables. Prints the figures, then one line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
FLAVORS = ("m1.tiny", "m1.small", "m1.medium", "m1.large", "g1.gpu")
WORDS = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell")


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def build(path: Path, projects: int, intervals: int, seed: int = 7) -> dict[str, Any]:
    """Create the schema (migrations), then bulk-insert the ledger rows."""
    from rintik_lite.db import close_database, open_database

    path.unlink(missing_ok=True)
    started = time.perf_counter()
    open_database(f"sqlite:///{path}")
    close_database()
    rng = random.Random(seed)
    per_project = 20
    chain = max(-(-intervals // (projects * per_project)), 1)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    created = stamp(NOW - timedelta(days=800))
    db.executemany(
        'INSERT INTO "project" (project_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)',
        (
            (f"{p:032x}", f"{WORDS[p % len(WORDS)]}-{p:05d}", created, created)
            for p in range(projects)
        ),
    )
    db.executemany(
        'INSERT INTO "volume_type" (type_id, name, updated_at) VALUES (?, ?, ?)',
        [("vt-ssd", "ssd", created), ("vt-hdd", "hdd", created)],
    )
    db.executemany(
        'INSERT INTO "price" (kind, "key", project_id, hourly, monthly, currency, since, '
        "created_at) VALUES (?, ?, NULL, ?, NULL, 'USD', NULL, ?)",
        [
            ("flavor", "m1.tiny", "0.005", created),
            ("flavor", "m1.small", "0.02", created),
            ("flavor", "m1.medium", "0.04", created),
            ("flavor", "m1.large", "0.08", created),
            ("volume", "ssd", "0.0002", created),
        ],
    )
    entities: list[tuple[Any, ...]] = []
    rows: list[tuple[Any, ...]] = []
    count = 0

    def flush() -> None:
        db.executemany(
            'INSERT INTO "entity" (entity_id, entity_type, project_id, deleted, last_key, '
            "state) VALUES (?, ?, ?, ?, '', '{}')",
            entities,
        )
        db.executemany(
            'INSERT INTO "interval" (entity_id, entity_type, project_id, start, "end", '
            "last_event, name, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        entities.clear()
        rows.clear()

    for p in range(projects):
        project = f"{p:032x}"
        for r in range(per_project):
            entity = f"{project}-{r:02d}"
            kind = "volume" if r % 4 == 3 else "instance"
            # A chain of intervals (resizes, re-attachments) that ends before now; a third
            # of the resources still run (their last interval is open).
            start = NOW - timedelta(days=rng.uniform(chain * 61 + 1, 900))
            running = rng.random() < 0.34
            for i in range(chain):
                if count >= intervals:
                    break
                end = start + timedelta(days=rng.uniform(2, 60))
                open_ = running and i == chain - 1
                if kind == "instance":
                    flavor = FLAVORS[(r + i) % len(FLAVORS)]
                    attributes = json.dumps({"flavor": flavor, "flavor_id": f"id-{flavor}"})
                else:
                    attributes = json.dumps({"size": 10 * (i + 1), "volume_type_id": "vt-ssd"})
                rows.append(
                    (
                        entity,
                        kind,
                        project,
                        stamp(start),
                        None if open_ else stamp(end),
                        stamp(start if open_ else end),
                        f"r{r}",
                        attributes,
                    )
                )
                count += 1
                start = end
            entities.append((entity, kind, project, 0))
        if len(rows) >= 50_000:
            flush()
    flush()
    db.commit()
    db.close()
    return {"build_seconds": round(time.perf_counter() - started, 1), "intervals": count}


async def measure(url: str, expected: int) -> dict[str, float]:
    from textual.widgets import DataTable

    from rintik_lite.settings import defaults
    from rintik_lite.tui.app import RintikTui
    from rintik_lite.tui.projects import ProjectsScreen
    from rintik_lite.tui.source import LedgerSource
    from rintik_lite.tui.tables import VirtualTable

    settings = defaults().replace(database__url=url)
    source = LedgerSource(settings)  # bulk reads in child processes, as `rintik-lite tui`
    source.start()
    app = RintikTui(lambda: source, lambda: NOW, refresh_seconds=3600)
    figures: dict[str, float] = {}
    started = time.perf_counter()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, ProjectsScreen)
        table = screen.query_one(VirtualTable)
        while len(table.rows) < expected:
            await pilot.pause(0.005)
        await pilot.pause()
        figures["first_paint_s"] = time.perf_counter() - started

        async def type_filter(prefix: str) -> None:
            keystrokes = []
            for key in "hooli-00420":
                begun = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                keystrokes.append(time.perf_counter() - begun)
            assert [row.cells[0] for row in table.rows] == ["hooli-00420"], table.rows[:3]
            figures[f"{prefix}keystroke_avg_s"] = sum(keystrokes) / len(keystrokes)
            figures[f"{prefix}keystroke_max_s"] = max(keystrokes)
            begun = time.perf_counter()
            await pilot.press("escape")
            await pilot.pause()
            figures[f"{prefix}unfilter_all_rows_s"] = time.perf_counter() - begun
            assert len(table.rows) == expected

        await type_filter("filter_during_costs_")  # the month is being rated meanwhile
        while screen.costs_at is None:
            await pilot.pause(0.02)
        await pilot.pause()
        figures["costs_on_screen_s"] = time.perf_counter() - started
        await type_filter("filter_")

        all_rows = list(table.rows)
        table.show([])
        await pilot.pause()
        begun = time.perf_counter()
        table.show(all_rows)
        await pilot.pause()
        figures["virtual_table_same_rows_s"] = time.perf_counter() - begun

        rows = [row.cells for row in all_rows]
        datatable: DataTable[str] = DataTable()
        await screen.mount(datatable)
        datatable.add_columns("NAME", "ID", "ACTIVE", "MTD", "LAST")
        begun = time.perf_counter()
        datatable.add_rows(rows)
        await pilot.pause()
        figures["datatable_same_rows_s"] = time.perf_counter() - begun
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--intervals", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/rintik-bench-tui.db"))
    parser.add_argument("--reuse", action="store_true", help="Keep an existing database.")
    args = parser.parse_args()

    from rintik_lite.db import close_database, open_database

    built: dict[str, Any] = {"build_seconds": 0.0, "intervals": None}
    if not (args.reuse and args.db.exists()):
        built = build(args.db, args.projects, args.intervals)
    url = f"sqlite:///{args.db}"
    open_database(url)
    from rintik_lite import invoices
    from rintik_lite.models import Interval
    from rintik_lite.settings import defaults
    from rintik_lite.tui import queries

    intervals = Interval.select().count()
    begun = time.perf_counter()
    listed = len(queries.project_summaries())
    projects_query = time.perf_counter() - begun
    begun = time.perf_counter()
    rated = invoices.month_to_date(NOW, invoices.rules_from(defaults()))
    rating = time.perf_counter() - begun
    close_database()

    open_database(url)
    figures = asyncio.run(measure(url, listed))
    close_database()
    result: dict[str, Any] = {
        "projects": listed,
        "intervals": intervals,
        "build_seconds": built["build_seconds"],
        "projects_query_s": projects_query,
        "month_to_date_s": rating,
        "projects_with_cost": len(rated),
        **figures,
    }
    result["datatable_vs_virtual_table"] = (
        figures["datatable_same_rows_s"] / figures["virtual_table_same_rows_s"]
    )
    for name, value in result.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{name:>26}  {shown}")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
