"""The `rintik-lite` command: thin commands that load settings and call one service each.

Every command takes `--config PATH` (or `$RINTIK_CONFIG`). Any error rintik-lite raises on
purpose prints one line on stderr and exits with code 2; never a traceback.
"""

from __future__ import annotations

import json
import logging
import logging.config
import mmap
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from rintik_lite import __version__, gctune, reading, services
from rintik_lite.db import close_binding, close_database, in_memory, open_database, upgrade
from rintik_lite.errors import InvalidInput, RintikError
from rintik_lite.ledger.notifications import parse_time
from rintik_lite.settings import Settings, example_toml, load

app = typer.Typer(
    help="Usage metering and billing for OpenStack clouds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
events_app = typer.Typer(help="The event store and its quarantine.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(db_app, name="db")
config_app = typer.Typer(help="The settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Settings file (TOML). Default: $RINTIK_CONFIG, else the embedded defaults.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def settings_from(config: Path | None) -> Settings:
    try:
        return load(config)
    except RintikError as exc:
        raise fail(str(exc)) from None


def open_db(settings: Settings) -> None:
    try:
        open_database(settings["database.url"], settings["database.busy_timeout_ms"])
    except RintikError as exc:
        raise fail(str(exc)) from None


def setup_logging(settings: Settings, logging_file: Path | None) -> None:
    if logging_file is not None:
        try:
            logging.config.fileConfig(logging_file, disable_existing_loggers=False)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise fail(f"cannot use logging configuration {logging_file}: {first}") from None
        return
    handler = logging.StreamHandler(sys.stderr)
    if settings["log.format"] == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings["log.level"], handlers=[handler])


class JsonLogFormatter(logging.Formatter):
    """`[log] format = "json"`: one JSON object per line, for journald or a log shipper."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def parse_when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise fail(f"{option}: {value!r} is not an ISO 8601 date and time") from None


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"rintik-lite {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Usage metering and billing for OpenStack clouds."""
    # Every command closes what it opened when it ends, failed or not: exit would in a
    # process of its own, nothing would in one that goes on (CliRunner, the tests).
    ctx.call_on_close(close_binding)


@app.command()
def run(
    config: ConfigOption = None,
    logging_file: Annotated[
        Path | None,
        typer.Option("--logging", help="A Python logging configuration file (fileConfig format)."),
    ] = None,
) -> None:
    """Run the collector, the API and the invoice scheduler until SIGINT or SIGTERM.

    The database and the broker must answer at start-up (else: one line, exit code 2);
    once running, a lost broker or database is retried with backoff, never fatal.

    Example: rintik-lite run --config /etc/rintik/rintik.toml
    """
    from rintik_lite import runtime
    from rintik_lite.collector import check_broker

    settings = settings_from(config)
    url = settings["database.url"]
    if in_memory(url):
        # Each thread's connection to ":memory:" is a database of its own: the collector
        # would write one, the API read another, and all of it would go at exit.
        raise fail(
            f"database.url {url} is an in-memory database, which `run` cannot share between "
            "its threads and loses at exit: give a file, e.g. sqlite:////var/lib/rintik/rintik.db"
        )
    setup_logging(settings, logging_file)
    open_db(settings)
    close_database()  # each thread opens its own connection
    try:
        check_broker(settings)
    except RintikError as exc:
        raise fail(str(exc)) from None
    runtime.run(settings)


def _notification_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".json", ".jsonl")))
        elif path.is_file():
            files.append(path)
        else:
            raise fail(f"{path} does not exist")
    return files


def _mapped(file: Path) -> mmap.mmap | bytes:
    """The file's bytes, mapped into memory (read as they are used, not read whole); close
    it when done."""
    try:
        with open(file, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:  # mmap refuses an empty file
                return b""
            # The map keeps a descriptor of its own: it outlives the file object.
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None


def _unmapped(data: mmap.mmap | bytes, start: int, end: int) -> int:
    """Let the pages of `data` from `start` to `end` go (rounded down to pages): scanned,
    they are not needed here again, and mapped they would count in this process's memory
    until the whole file is scanned (a capture of a day at 2 KB an event is gigabytes).
    Where the pages now end."""
    end -= end % mmap.PAGESIZE
    if end > start and isinstance(data, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        data.madvise(mmap.MADV_DONTNEED, start, end - start)
        return end
    return start


def _holds_cr(data: mmap.mmap | bytes, window: int = 16 * 2**20) -> bool:
    """Whether `data` holds a b"\r", looked for a window at a time, each let go once read."""
    for start in range(0, len(data), window):
        if data.find(b"\r", start, start + window) >= 0:
            return True
        _unmapped(data, start, start + window)
    return False


_BLANK = frozenset(b" \t\n\r\x0b\x0c")  # what bytes.strip() strips


def _spans(
    path: str, data: mmap.mmap | bytes, first: int, size: int
) -> Iterator[tuple[reading.FileSpan, int]]:
    """The lines of `data`, a .jsonl file with no b"\r", but blank ones, as spans of the
    file holding `first` messages, then `size` each (the last one fewer, none empty), each
    with its count."""
    want = first
    start = end = count = 0  # the span's first byte, the next line's, its messages
    length = len(data)
    while end < length:
        found = data.find(b"\n", end)
        line_end = length if found < 0 else found
        # A line that starts with a blank may be all blanks (left out, as `FileSpan` does).
        if line_end > end and (data[end] not in _BLANK or data[end:line_end].strip()):
            count += 1
        end = min(line_end + 1, length)
        if count == want:
            yield reading.FileSpan(path, start, end), count
            start, count, want = end, 0, size
    if count:
        yield reading.FileSpan(path, start, length), count


def _batches(
    files: list[Path], size: int, file_done: Callable[[], None]
) -> Iterator[list[reading.Piece]]:
    """The files' messages in batches of `size` (the last one shorter): one per .json
    file, one per line of a .jsonl file but blank lines (cut as `bytes.splitlines` cuts).
    `file_done` is called as each file but the last has been read whole. The lines of a
    .jsonl file cut at b"\n" alone are given as spans of the file (`reading.FileSpan`),
    for a reader process to read itself: this one only finds where lines begin, in the file
    mapped into memory, so that a capture of any size is not held here whole."""
    batch: list[reading.Piece] = []
    count = 0  # messages in `batch`
    for n, file in enumerate(files):
        if n:
            file_done()
        data = _mapped(file)
        try:
            if file.suffix == ".jsonl" and not _holds_cr(data):
                scanned = 0  # the pages of the file before this are unmapped
                for span, messages in _spans(str(file), data, size - count, size):
                    batch.append(span)
                    count += messages
                    if count == size:
                        yield batch
                        batch, count = [], 0
                    scanned = _unmapped(data, scanned, span.end)
                continue
            if file.suffix != ".jsonl":
                bodies = [data[:]]
            else:  # it holds b"\r": cut here, as `bytes.splitlines` cuts, blank lines left out
                bodies = [line for line in data[:].splitlines() if line.strip()]
        finally:
            if isinstance(data, mmap.mmap):
                data.close()
        for body in bodies:
            batch.append(services.Incoming(body, "replay"))
            count += 1
            if count == size:
                yield batch
                batch, count = [], 0
    if batch:
        yield batch


# Messages per transaction in `replay`. A batch's events share the index and table pages
# they dirty, so each page is written once per batch: on bench/run.py's 50,000 events
# (2026-12-02, alternated runs) 5,000 took 5.5-5.9 s wall and 5.6-6.0 s CPU, 500 took
# 7.1-7.9 s and 8.0-8.5 s (sys time halved). Peak RSS, committed in this thread (below):
# 212-222 MB at 5,000, 182 MB at 500; 248 MB at 5,000 on 2026-12-06, 208 MB once the
# readers read the files (`reading.FileSpan`), and 197 MB once this process maps them
# rather than reading them whole (`_batches`). The same 50,000 events in one file of 500 MB
# (five times over): 1,175 MB, then 666 MB, then 199 MB.
# The collector keeps `broker.batch_size` (1,000): its prefetch is three batches, inside
# run's memory target.
# Batches are committed in the command's own thread and read in reader processes
# (`reading.Readers`). A reader thread (services.Pipeline, until 2026-12-02) was slower on
# SQLite, whose Python driver releases and retakes the GIL at every row: the two threads
# took turns rather than overlapping (recording 50,000 events took the writer 4.4-4.8 s of
# wall time beside the reader, 2.7 s alone, for 1.4-1.5 s of reading). A process has no
# GIL to share: the bench's 50,000 events, `--readers 1` against `--readers 0` alternated
# three times (2026-12-06): 6,207-7,568 against 4,944-5,267 events/s.
REPLAY_BATCH = 5000


@app.command()
@gctune.bulk
def replay(
    paths: Annotated[list[Path], typer.Argument(help="Notification files or folders.")],
    config: ConfigOption = None,
    batch: Annotated[
        int,
        typer.Option(
            help="Messages per transaction. Larger batches write fewer database pages per "
            "event; each 1,000 messages hold about 9 MB while read and committed.",
            min=1,
        ),
    ] = REPLAY_BATCH,
    readers: Annotated[
        int,
        typer.Option(
            help="Processes that read (decode and parse) the messages while this one records "
            "them; 0 reads them here. Never more than one fewer than the cores.",
            min=0,
        ),
    ] = 1,
    json_output: JsonOption = False,
) -> None:
    """Ingest notification files through the collector's code path.

    Each .json file holds one notification (the oslo.messaging envelope, the flat form, or
    the listener form); each line of a .jsonl file holds one. Folders are read recursively.

    Example: rintik-lite replay ./captured/ one-more.json
    """
    from rich.progress import Progress

    settings = settings_from(config)
    files = _notification_files(paths)
    total = services.BatchResult()
    whitelist = settings["ledger.metadata_whitelist"]
    # The readers are forked first: before the database is opened (and its checkpointer
    # thread started).
    with reading.Readers(reading.usable_readers(readers)) as pool:
        open_db(settings)
        with Progress(transient=True, disable=json_output or not sys.stderr.isatty()) as progress:
            task = progress.add_task("replaying", total=len(files))
            batches = _batches(files, batch, lambda: progress.advance(task))
            try:
                for read in pool.read(batches, whitelist):
                    total.add(services.record_read(read, datetime.now(UTC)))
            except OSError as exc:  # a file gone or changed while replayed
                raise fail(f"cannot read {exc.filename}: {exc.strerror}") from None
            progress.update(task, completed=len(files))
    summary = {
        "received": total.received,
        "applied": total.applied,
        "ignored": total.ignored,
        "duplicate": total.duplicate,
        "quarantined": total.quarantined,
    }
    if json_output:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(", ".join(f"{v} {k}" for k, v in summary.items()))


@app.command()
def usage(
    project: Annotated[str, typer.Option("--project", help="Project (tenant) id.")],
    start: Annotated[
        str | None, typer.Option(help="Window start, ISO 8601 (UTC if no zone).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Window end, ISO 8601.")] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the project's intervals that overlap the window.

    Example: rintik-lite usage --project 7c15... --start 2026-11-01 --json
    """
    settings = settings_from(config)
    window = parse_when(start, "--start"), parse_when(end, "--end")
    open_db(settings)
    try:
        rows = services.usage(project, *window)
    except InvalidInput as exc:
        raise fail(str(exc)) from None
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table(rows, ["entity_type", "entity_id", "name", "start", "end", "detail"], _detail)


def _detail(row: dict[str, Any]) -> str:
    kind = row["entity_type"]
    if kind == "instance":
        return str(row.get("flavor") or row.get("flavor_id") or "")
    if kind == "volume":
        attached = ",".join(row["attached_to"])
        return f"{row['size']} GB {row['volume_type'] or ''}" + (
            f" on {attached}" if attached else ""
        )
    if kind in ("snapshot", "image"):
        return f"{row.get('size')} GB"
    if kind == "floating_ip":
        return str(row.get("address") or "")
    return ""


def _table(rows: list[dict[str, Any]], columns: list[str], detail: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, box=None, pad_edge=False)
    for row in rows:
        values = [detail(row) if c == "detail" and detail else row.get(c) for c in columns]
        table.add_row(*["" if v is None else str(v) for v in values])
    Console().print(table)
    if not rows:
        typer.echo("(none)")


@events_app.command("failed")
def events_failed(config: ConfigOption = None, json_output: JsonOption = False) -> None:
    """List quarantined messages and why they could not be applied (the newest reason).

    Each message is listed once: `attempts` counts the times it came (redelivered, replayed
    again) or was retried, and `received_at` is the first.

    Example: rintik-lite events failed --json
    """
    settings = settings_from(config)
    open_db(settings)
    rows = services.quarantined()
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table(rows, ["id", "received_at", "event_type", "attempts", "reason"])


@events_app.command("retry")
def events_retry(config: ConfigOption = None) -> None:
    """Apply the quarantined messages again (after a fix); those that apply leave it.

    Example: rintik-lite events retry
    """
    settings = settings_from(config)
    open_db(settings)
    result = services.retry_quarantined(datetime.now(UTC), settings["ledger.metadata_whitelist"])
    typer.echo(
        f"{result.received} retried: {result.applied + result.ignored} applied, "
        f"{result.duplicate} duplicate, {result.quarantined} still quarantined"
    )


@config_app.command("example")
def config_example() -> None:
    """Print a configuration file with every setting at its default, with its help.

    Example: rintik-lite config example > /etc/rintik/rintik.toml
    """
    typer.echo(example_toml(), nl=False)


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Check the settings, file permissions, database, broker and Keystone; print one line
    per check with what is wrong and how to fix it. Exit code 0 only when all is well.

    Example: rintik-lite config check --config /etc/rintik/rintik.toml
    """
    from rintik_lite.config_check import OK, run_checks

    results = run_checks(config)
    for check in results:
        typer.echo(f"{check.status:<4} {check.name}: {check.message}")
    if any(check.status != OK for check in results):
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply the schema migrations this database lacks (`run` does it at start-up too).

    Example: rintik-lite db upgrade --config /etc/rintik/rintik.toml
    """
    settings = settings_from(config)
    try:
        open_database(settings["database.url"], settings["database.busy_timeout_ms"], migrate=False)
        before, after = upgrade()
    except RintikError as exc:
        raise fail(str(exc)) from None
    if before == after:
        typer.echo(f"schema is up to date (version {after})")
    else:
        typer.echo(f"schema upgraded from version {before} to {after}")


@db_app.command("rebuild-ledger")
def db_rebuild_ledger(config: ConfigOption = None) -> None:
    """Re-derive every resource's intervals from the stored events.

    Example: rintik-lite db rebuild-ledger
    """
    settings = settings_from(config)
    open_db(settings)
    typer.echo(f"{services.rebuild_ledger()} resources rebuilt")


# --- prices and invoices -------------------------------------------------------------------

price_app = typer.Typer(
    help="Prices: per flavor, volume type, GB and resource.", no_args_is_help=True
)
invoice_app = typer.Typer(help="Invoices: list, show, close, pay.", no_args_is_help=True)
app.add_typer(price_app, name="price")
app.add_typer(invoice_app, name="invoice")

PeriodOption = Annotated[
    str | None, typer.Option("--period", help="Billing period, a month in UTC: YYYY-MM.")
]


def _rules(settings: Settings) -> Any:
    from rintik_lite import invoices

    try:
        return invoices.rules_from(settings)
    except RintikError as exc:
        raise fail(str(exc)) from None


def _period(value: str | None) -> Any:
    from rintik_lite import invoices

    if value is None:
        return None
    try:
        return invoices.parse_period(value)
    except RintikError as exc:
        raise fail(f"--period: {exc}") from None


def _decimal(value: str | None, option: str) -> Any:
    from rintik_lite import invoices

    if value is None:
        return None
    try:
        return invoices.parse_decimal(value, option)
    except RintikError as exc:
        raise fail(str(exc)) from None


@price_app.command("set")
def price_set(
    kind: Annotated[
        str, typer.Argument(help="flavor, volume, snapshot, image, floating_ip or router.")
    ],
    key: Annotated[
        str,
        typer.Argument(
            help="Flavor id or name; volume type id or name; `default` for the other kinds."
        ),
    ],
    hourly: Annotated[
        str, typer.Option("--hourly", help="Price per hour (per GB-hour for sized kinds).")
    ],
    monthly: Annotated[
        str | None, typer.Option("--monthly", help="Monthly cap of one line, per unit.")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Only for this project (overrides global).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Applies from this instant (ISO 8601, UTC if no zone). Default: from the "
            "beginning, so running resources and open invoices reflect it at once; closed "
            "invoices it changes are corrected by adjustments.",
        ),
    ] = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="Default: [billing] currency.")
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add a price row; it supersedes the previous one from --since (prices are never
    edited, so past invoices can be recomputed).

    Example: rintik-lite price set flavor m1.small --hourly 0.021 --monthly 12.50
    """
    from rintik_lite import invoices

    settings = settings_from(config)
    hourly_amount = _decimal(hourly, "--hourly")
    monthly_amount = _decimal(monthly, "--monthly")
    when = parse_when(since, "--since")
    open_db(settings)
    try:
        row = invoices.set_price(
            kind,
            key,
            hourly_amount,
            monthly=monthly_amount,
            project_id=project,
            since=when,
            currency=currency or invoices.billing_settings(settings)["currency"],
            now=datetime.now(UTC),
        )
    except RintikError as exc:
        raise fail(str(exc)) from None
    if json_output:
        typer.echo(json.dumps(row, indent=2))
        return
    scope = f" for project {row['project_id']}" if row["project_id"] else ""
    cap = f", capped at {row['monthly']} a month" if row["monthly"] is not None else ""
    start = f" from {row['since']}" if row["since"] else ""
    typer.echo(
        f"price {row['id']}: {row['kind']} {row['key']}{scope}: "
        f"{row['hourly']} {row['currency']}/hour{cap}{start}"
    )


@price_app.command("list")
def price_list(
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind.")] = None,
    project: Annotated[str | None, typer.Option("--project", help="Only this project.")] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """List every price row, superseded ones included.

    Example: rintik-lite price list --kind flavor --json
    """
    from rintik_lite import invoices

    settings = settings_from(config)
    open_db(settings)
    try:
        rows = invoices.list_prices(kind, project)
    except RintikError as exc:
        raise fail(str(exc)) from None
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table(rows, ["id", "kind", "key", "project_id", "hourly", "monthly", "currency", "since"])


@price_app.command("missing")
def price_missing(
    period: PeriodOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the prices missing for resources used in a period (default: this month);
    those resources are billed 0 on lines flagged missing_price.

    Example: rintik-lite price missing --json
    """
    from rintik_lite import invoices

    settings = settings_from(config)
    chosen = _period(period)
    open_db(settings)
    rules = _rules(settings)
    try:
        rows = invoices.missing_prices(datetime.now(UTC), rules, chosen)
    except RintikError as exc:
        raise fail(str(exc)) from None
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = [
        {**row, "keys": " or ".join(row["keys"]), "projects": len(row["projects"])} for row in rows
    ]
    _table(table, ["kind", "keys", "entity_type", "entities", "projects"])


@invoice_app.command("close")
@gctune.bulk
def invoice_close(
    period: PeriodOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be closed; change nothing.")
    ] = False,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Close the invoices of every ended month not closed yet (or of --period): freeze
    their lines, number them, make them unpaid. Safe to run twice or in parallel.

    Example: rintik-lite invoice close --period 2026-10 --dry-run
    """
    from rintik_lite import invoices

    settings = settings_from(config)
    chosen = _period(period)
    open_db(settings)
    rules = _rules(settings)
    try:
        closed = invoices.close_invoices(chosen, datetime.now(UTC), rules, dry_run=dry_run)
    except RintikError as exc:
        raise fail(str(exc)) from None
    if json_output:
        typer.echo(json.dumps(closed, indent=2))
        return
    for doc in closed:
        label = "would close" if dry_run else f"closed invoice {doc['number']}:"
        typer.echo(
            f"{label} project {doc['project_id']}, {doc['period']}, "
            f"total {doc['total']} {doc['currency']}"
        )
    verb = "would be closed" if dry_run else "closed"
    typer.echo(f"{len(closed)} invoice{'s' if len(closed) != 1 else ''} {verb}")


@invoice_app.command("list")
def invoice_list(
    project: Annotated[str | None, typer.Option("--project", help="Project (tenant) id.")] = None,
    period: PeriodOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """List invoices, newest period first; open ones are computed now.

    Example: rintik-lite invoice list --project 7c15... --period 2026-10 --json
    """
    from rintik_lite import invoices

    settings = settings_from(config)
    chosen = _period(period)
    open_db(settings)
    rules = _rules(settings)
    try:
        rows = invoices.list_invoices(datetime.now(UTC), rules, project, chosen)
    except RintikError as exc:
        raise fail(str(exc)) from None
    _add_project_names(rows, settings)
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table(
        rows, ["id", "number", "project_name", "project_id", "period", "state", "total", "currency"]
    )


def _add_project_names(rows: list[dict[str, Any]], settings: Settings) -> None:
    """`project_name` on each row: Keystone's when [keystone] is set up, else the name the
    Keystone notifications carried, else null."""
    from rintik_lite.api.ledger import keystone_for_names, project_names

    try:
        keystone = keystone_for_names(settings)
    except RintikError as exc:
        raise fail(str(exc)) from None
    names = project_names((r["project_id"] for r in rows), keystone)
    for row in rows:
        row["project_name"] = names.get(row["project_id"])


@invoice_app.command("show")
def invoice_show(
    invoice_id: Annotated[str, typer.Argument(metavar="ID", help="Invoice id.")],
    output: Annotated[
        str, typer.Option("--format", help="json, csv (the lines) or html (printable).")
    ] = "json",
    config: ConfigOption = None,
) -> None:
    """Print one invoice with its lines.

    Example: rintik-lite invoice show 42 --format html > invoice-42.html
    """
    from rintik_lite import invoice_export, invoices

    if output not in ("json", "csv", "html"):
        raise fail(f"--format: {output!r} is not one of json, csv, html")
    settings = settings_from(config)
    open_db(settings)
    rules = _rules(settings)
    try:
        doc = invoices.show_invoice(invoice_id, datetime.now(UTC), rules)
    except RintikError as exc:
        raise fail(str(exc)) from None
    if output == "csv":
        typer.echo(invoice_export.invoice_csv(doc), nl=False)
    elif output == "html":
        company = invoices.billing_settings(settings)  # the API may have changed them
        typer.echo(
            invoice_export.invoice_html(doc, company["company_name"], company["company_address"])
        )
    else:
        typer.echo(json.dumps(doc, indent=2))


def _set_paid(invoice_id: str, config: Path | None, json_output: bool, paid: bool) -> None:
    from rintik_lite import invoices

    settings = settings_from(config)
    open_db(settings)
    change = invoices.pay_invoice if paid else invoices.unpay_invoice
    try:
        doc = change(invoice_id, datetime.now(UTC))
    except RintikError as exc:
        raise fail(str(exc)) from None
    if json_output:
        typer.echo(json.dumps(doc, indent=2))
    else:
        typer.echo(f"invoice {doc['id']} (number {doc['number']}) is {doc['state']}")


@invoice_app.command("pay")
def invoice_pay(
    invoice_id: Annotated[str, typer.Argument(metavar="ID", help="Invoice id.")],
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Mark a closed invoice paid (unpaid -> finished).

    Example: rintik-lite invoice pay 42
    """
    _set_paid(invoice_id, config, json_output, paid=True)


@invoice_app.command("unpay")
def invoice_unpay(
    invoice_id: Annotated[str, typer.Argument(metavar="ID", help="Invoice id.")],
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Roll a paid invoice back to unpaid (finished -> unpaid).

    Example: rintik-lite invoice unpay 42
    """
    _set_paid(invoice_id, config, json_output, paid=False)


@app.command()
def tui(config: ConfigOption = None) -> None:
    """Watch projects, costs, invoices, prices and events in the terminal; mark invoices
    paid, set prices, retry the quarantine. Runs beside `run` on the same database.

    Example: rintik-lite tui --config /etc/rintik/rintik.toml
    """
    from rintik_lite.tui.app import run as run_tui

    settings = settings_from(config)
    open_db(settings)
    _rules(settings)  # bad [billing] settings: one line now, not a crash in the UI
    run_tui(settings)


@app.command("import")
@gctune.bulk
def import_resources(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="Inventory (JSON), Rintik's enable_billing body.")
    ],
    billing_start: Annotated[
        str | None,
        typer.Option(
            "--billing-start",
            help="Move creation times before this instant (ISO 8601, UTC if no zone) up to "
            "it, so nothing is billed before it. Default: bill from each creation time.",
        ),
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Import existing resources into the ledger, each billed from its start_date; importing
    the same file again changes nothing.

    FILE holds lists instances, volumes, floating_ips, routers, snapshots and images; each
    item has tenant_id, start_date, its id (instance_id, volume_id, fip_id, router_id,
    snapshot_id, image_id) and its fields (flavor_id, name; volume_type_id,
    space_allocation_gb, volume_name; ip; name; space_allocation_gb, name).

    Example: rintik-lite import inventory.json --billing-start 2026-11-01
    """
    from decimal import Decimal

    from rintik_lite import importer

    settings = settings_from(config)
    start = parse_when(billing_start, "--billing-start")
    try:
        doc = json.loads(file.read_bytes(), parse_float=Decimal)
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:
        raise fail(f"{file} is not JSON: {exc}"[:300]) from None
    open_db(settings)
    try:
        counts = importer.import_inventory(
            doc,
            datetime.now(UTC),
            billing_start=start,
            metadata_whitelist=settings["ledger.metadata_whitelist"],
        )
    except RintikError as exc:
        raise fail(str(exc)) from None
    if json_output:
        typer.echo(json.dumps(counts, indent=2))
        return
    typer.echo(
        f"{counts['resources']} resources: {counts['applied']} recorded, "
        f"{counts['duplicate']} already imported"
    )


@db_app.command("backup")
def db_backup(
    path: Annotated[Path, typer.Argument(help="The backup file to create (never overwritten).")],
    config: ConfigOption = None,
) -> None:
    """Copy the SQLite database to PATH (mode 0600), consistent even while `run` writes.
    For PostgreSQL it prints the pg_dump command instead.

    Example: rintik-lite db backup /var/backups/rintik-$(date +%F).db
    """
    from rintik_lite import backup

    settings = settings_from(config)
    try:
        copy = backup.backup(settings["database.url"], path, settings["database.busy_timeout_ms"])
    except RintikError as exc:
        raise fail(str(exc)) from None
    typer.echo(
        f"backed up to {copy.path}: {copy.size} bytes, schema version {copy.schema_version}, "
        f"{copy.events} events"
    )


@db_app.command("restore")
def db_restore(
    path: Annotated[Path, typer.Argument(help="A file made by `rintik-lite db backup`.")],
    config: ConfigOption = None,
) -> None:
    """Replace the SQLite database with a backup, keeping the replaced one beside it.
    Refused while another process (`run`, the TUI) has the database open.

    Example: systemctl stop rintik-lite && rintik-lite db restore rintik-2026-11-01.db
    """
    from rintik_lite import backup

    settings = settings_from(config)
    # This process's own connections, the WAL checkpointer's included, would hold the file.
    close_binding()
    try:
        copy, kept = backup.restore(
            settings["database.url"], path, settings["database.busy_timeout_ms"]
        )
    except RintikError as exc:
        raise fail(str(exc)) from None
    if kept is not None:
        typer.echo(f"the replaced database is kept as {kept}")
    typer.echo(
        f"restored {copy.path} from {path}: schema version {copy.schema_version}, "
        f"{copy.events} events"
    )


@app.command()
def demo(
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Seed of the simulated history (default: one derived from the database, "
            "so a second run carries on the same cloud).",
        ),
    ] = None,
    config: ConfigOption = None,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0, help="Stop after SECONDS of live events."),
    ] = None,
) -> None:
    """Run the whole appliance on a simulated lab cloud: no RabbitMQ, no OpenStack.

    Two months of history (ended months invoiced), then live events.
    Database, API, token: from --config, else ./rintik-demo.db and `demo`.

    Example: rintik-lite demo --seed 7
    """
    from rintik_lite import demo as lab

    settings = lab.demo_settings(settings_from(config))
    setup_logging(settings, None)
    chosen = lab.default_seed(settings["database.url"]) if seed is None else seed
    try:
        with gctune.serving():
            lab.run(settings, chosen, duration, settings.source, typer.echo)
    except RintikError as exc:
        raise fail(str(exc)) from None


def main() -> None:
    """The console script: every error is one line on stderr with a non-zero exit code."""
    try:
        code = app(standalone_mode=False)
    except RintikError as exc:  # a service raised past a command: still one line, exit 2
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        # click's usage errors (missing option, bad value, unknown command), told in one
        # line instead of a boxed panel; recognised by shape, as typer may vendor click.
        name = type(exc).__name__
        if name == "NoArgsIsHelpError":
            typer.echo(exc.format_message())  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            message = " ".join(exc.format_message().split())
            typer.echo(f"error: {message} (see --help)", err=True)
            sys.exit(exc.exit_code)
        if name == "Abort":
            typer.echo("aborted", err=True)
            sys.exit(1)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)
