"""rintik-lite's benchmarks: one command each, figures and the ratio each is judged by.

    python bench/run.py NAME [--db sqlite|postgresql] [--record] [options]

NAME is one of:

* `ingest`: N notifications (default 50,000; bench/workload.py) preloaded into a private
  RabbitMQ queue, drained by `rintik-lite run` (a subprocess) into a committed ledger; in the
  same run, a bare kombu consumer (bench/kombu_baseline.py) drains a copy of the same
  messages, only decoding and acknowledging them in batches. Events/s of both, and the ratio.
* `replay`: the same notifications from .jsonl files through `rintik-lite replay` (a
  subprocess); beside it, the same files only read and decoded (the Python limit).
* `close`: `rintik-lite invoice close` of last month for 10,000 projects x 20 resources
  (200,000 lines); seconds and lines/s; beside it, the same intervals read and one row per
  line written with plain SQL (the database's limit).
* `api`: `rintik-lite run` over 10,000 projects and 1,000,000 intervals; a loopback load
  generator (wrk when installed, else Python threads) on `GET /v1/project/<id>/entities`,
  on a closed invoice's detail and on a running invoice's detail (`GET /api/invoice/<id>/`):
  requests/s, p50, p99; beside them, `GET /healthz` (the server's own limit).
* `memory`: peak RSS (VmHWM) of `rintik-lite run` and its reader processes, added up,
  during `ingest` and during `api`.
* `scaling`: ingest of a fixed batch into ledgers prefilled with 1k, 10k, 100k and 1M
  intervals (its cost must not grow with the history), and close of 1k ... 1M lines (its
  cost must grow linearly).

Ledgers for close, api and scaling are bulk-inserted (bench/workload.py `build_ledger`: the
rows the collector would have written), which the output says; ingest and replay go through
the real code paths. Every figure is printed, then one last line of JSON with all of them.
`--record` also appends the run to bench/RESULTS.md (date, machine, load, commit, figures).

The machine is shared: absolute times drift with its load; the ratios, measured side by side
in the same run, hold better. Check `uptime` before a run you record.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload  # noqa: E402

ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
BROKER_URL = os.environ.get("RINTIK_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
POSTGRES_URL = os.environ.get(
    "RINTIK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
TOKEN = "bench-token"
SERVICES = ("nova", "openstack", "neutron", "glance", "keystone")

TARGETS = {
    "ingest_events_per_s": 5000,
    "ingest_ratio_to_bare_kombu": 0.6,
    "replay_events_per_s": 20000,
    "close_seconds": 10.0,
    "api_requests_per_s": 1000,
    "api_p99_ms": 25.0,
    "peak_rss_mb": 200,
}


# --- output --------------------------------------------------------------------------------


class Report:
    """Figures in print order; `figures` is the last line's JSON."""

    def __init__(self, name: str, db: str) -> None:
        self.name = name
        self.db = db
        self.figures: dict[str, Any] = {}
        self.notes: list[str] = []
        self.checks: list[tuple[str, bool]] = []

    def add(self, key: str, value: Any, text: str | None = None) -> None:
        self.figures[key] = value
        shown = f"{value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else value
        print(f"  {text or key}: {shown}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def target(self, label: str, ok: bool) -> None:
        self.checks.append((label, ok))
        print(f"  target {label}: {'met' if ok else 'NOT met'}", flush=True)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


#: Pure-Python additions timed by `python_loop_seconds`.
LOOP = 5_000_000


def python_loop_seconds() -> float:
    """The best of three timings of a fixed pure-Python loop (`LOOP` additions), in a fresh
    interpreter: how fast this VM runs Python right now. These VMs have run it two to four
    times slower from one session to the next, and slowed within an hour; each benchmark
    prints it before and after its run, so that absolute figures of different runs can be
    read side by side (ratios measured in one run need no such help)."""
    code = (
        "import time\nbest = 1e9\nfor _ in range(3):\n    t = time.perf_counter(); s = 0\n"
        f"    for i in range({LOOP}): s += i\n"
        "    best = min(best, time.perf_counter() - t)\nprint(best)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return float(out.stdout)


def machine() -> dict[str, Any]:
    model = ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 2**20:.1f} GiB"
    return {
        "host": platform.node(),
        "cpu": model,
        "cores": os.cpu_count(),
        "memory": memory,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    # The runs already recorded are not changes to what is measured.
    changed = git("status", "--porcelain", "--", ".", ":(exclude)bench/RESULTS.md")
    return head + (" + uncommitted changes" if changed else "")


# --- databases, configuration, subprocesses ------------------------------------------------


@dataclass
class Workspace:
    """A temporary folder, one database (SQLite file or PostgreSQL schema), private broker
    names; everything is removed on exit."""

    db: str
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rintik-bench-")))
    prefix: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:8]}")
    schemas: list[str] = field(default_factory=list)

    def database_url(self, name: str) -> str:
        """A fresh, empty database for `name` (a file, or a schema of its own)."""
        if self.db == "sqlite":
            path = self.root / f"{name}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return f"sqlite:///{path}"
        schema = f"bench_{os.getpid()}_{re.sub(r'[^a-z0-9]', '_', name.lower())}"
        self._pg(f"DROP SCHEMA IF EXISTS {schema} CASCADE", f"CREATE SCHEMA {schema}")
        if schema not in self.schemas:
            self.schemas.append(schema)
        separator = "&" if "?" in POSTGRES_URL else "?"
        return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"

    def _pg(self, *statements: str) -> None:
        from playhouse.db_url import connect

        db = connect(POSTGRES_URL)
        db.connect()
        try:
            for statement in statements:
                db.execute_sql(statement)
        finally:
            db.close()

    def config(self, url: str, **extra: Any) -> Path:
        """A settings file for rintik-lite subprocesses."""
        values: dict[str, dict[str, Any]] = {
            "database": {"url": url},
            "broker": {
                "url": BROKER_URL,
                "queue": f"{self.prefix}.rintik",
                "exchanges": [f"{self.prefix}-{s}" for s in SERVICES],
            },
            "api": {"host": "127.0.0.1", "port": free_port()},
            "auth": {"private_key": TOKEN},
            "scheduler": {"enabled": False},
            "log": {"level": "INFO"},
        }
        for dotted, value in extra.items():
            section, key = dotted.split("__")
            values.setdefault(section, {})[key] = value
        lines = []
        for section, items in values.items():
            lines.append(f"[{section}]")
            lines.extend(f"{key} = {json.dumps(value)}" for key, value in items.items())
        path = self.root / f"rintik-{uuid.uuid4().hex[:6]}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def close(self) -> None:
        if self.schemas:
            with suppress(Exception):
                self._pg(*(f"DROP SCHEMA IF EXISTS {s} CASCADE" for s in self.schemas))
        shutil.rmtree(self.root, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env() -> dict[str, str]:
    """The environment without any rintik-lite setting (the config file says everything)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RINTIK_") and k not in ("RABBITMQ_URL",)
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def rintik_command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("rintik-lite")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "rintik_lite", *args]


@contextmanager
def opened(url: str) -> Iterator[None]:
    """Bind rintik_lite's database in this process (migrated), closed after."""
    from rintik_lite.db import close_database, open_database

    open_database(url)
    try:
        yield
    finally:
        close_database()


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (rintik-lite's reader processes)."""
    found: list[int] = []
    with suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with suppress(OSError, ValueError):
                found += [int(child) for child in (task / "children").read_text().split()]
    return found


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time a process and its live child processes (its readers) have
    used so far (the process's own also readable while it is a zombie, not yet waited
    for)."""
    total = None
    for each in [pid, *children(pid)]:
        with suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            used = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            total = used if total is None else total + used
    return total


class Lines:
    """Reads a subprocess's output lines in a thread, each with its arrival time, and with
    `pid`, the process's CPU seconds when it arrived (`cpu`, by line index)."""

    def __init__(self, stream: Any, pid: int | None = None) -> None:
        self.lines: list[tuple[float, str]] = []
        self.cpu: list[float | None] = []
        self._pid = pid
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for raw in stream:
            cpu = cpu_seconds(self._pid) if self._pid is not None else None
            with self._cond:
                self.lines.append((time.perf_counter(), raw.rstrip("\n")))
                self.cpu.append(cpu)
                self._cond.notify_all()
        with self._cond:
            self.lines.append((time.perf_counter(), "<eof>"))
            self.cpu.append(None)
            self._cond.notify_all()

    def cpu_between(self, first: int, last: int) -> float | None:
        """CPU seconds the process used from line `first` to line `last`."""
        a, b = self.cpu[first], self.cpu[last]
        return None if a is None or b is None else b - a

    def wait_for(self, predicate: Callable[[str], bool], timeout: float, start: int = 0) -> int:
        """Index of the first line from `start` that satisfies `predicate`; TimeoutError."""
        deadline = time.monotonic() + timeout
        index = start
        with self._cond:
            while True:
                while index < len(self.lines):
                    if predicate(self.lines[index][1]):
                        return index
                    if self.lines[index][1] == "<eof>":
                        raise RuntimeError("the process ended: " + self.tail())
                    index += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("waited too long: " + self.tail())
                self._cond.wait(min(left, 1.0))

    def tail(self, n: int = 8) -> str:
        return " | ".join(text for _, text in self.lines[-n:])


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM, the peak resident set size, of a running process and its child processes
    (rintik-lite's reader processes) added up, in MB: an upper bound, as the pages a fork
    shares with its parent count in both."""
    peaks = [own_peak_rss_mb(each) for each in [pid, *children(pid)]]
    return sum(p for p in peaks if p is not None) if peaks[0] is not None else None


def own_peak_rss_mb(pid: int) -> float | None:
    """VmHWM of one process, in MB."""
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def current_rss_mb(pid: int) -> float | None:
    """VmRSS of a running process and its child processes (its readers) added up, in MB."""
    sizes = []
    for each in [pid, *children(pid)]:
        with suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
    return sum(sizes) if sizes else None


PROFILE_DIR: Path | None = None  # --profile: py-spy records each rintik-lite process here


@contextmanager
def profiled(pid: int, name: str) -> Iterator[None]:
    """With --profile, py-spy samples the thread holding the GIL while the block runs and
    writes `<name>.txt` (collapsed stacks: one line per stack, with its sample count)."""
    if PROFILE_DIR is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    output = PROFILE_DIR / f"{name}.txt"
    command = [spy, "record", "--pid", str(pid), "--rate", "200", "--gil", "--format", "raw"]
    recorder = subprocess.Popen(
        [*command, "-o", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(30)
        except subprocess.TimeoutExpired:
            recorder.kill()
        log(f"profile written to {output}")


def profiled_command(command: list[str], name: str) -> list[str]:
    """`command`, run under `py-spy record` with --profile (GIL holder, collapsed stacks)."""
    if PROFILE_DIR is None:
        return command
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    output = PROFILE_DIR / f"{name}-{uuid.uuid4().hex[:4]}.txt"
    spy_options = ["--rate", "200", "--gil", "--format", "raw", "-o", str(output)]
    return [spy, "record", *spy_options, "--", *command]


def stop(process: subprocess.Popen[str], seconds: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# --- the broker ----------------------------------------------------------------------------


class Broker:
    """Our private exchanges and queues on the local RabbitMQ (names `bench-<random>...`),
    published to as oslo.messaging does (tests/conftest.py `Broker.publish`); deleted after."""

    def __init__(self, prefix: str) -> None:
        from kombu import Connection

        self.prefix = prefix
        self.connection = Connection(BROKER_URL, connect_timeout=5)
        self.connection.ensure_connection(max_retries=1)
        self.exchanges = {s: f"{prefix}-{s}" for s in SERVICES}
        self.queues: list[str] = []

    def declare_queue(self, name: str) -> None:
        """A durable queue bound to each exchange with `notifications.info`, as the
        collector declares its own (so that its declaration matches)."""
        from kombu import Exchange, Queue, binding

        exchanges = [
            Exchange(n, type="topic", durable=False, auto_delete=False)
            for n in self.exchanges.values()
        ]
        bindings = [binding(e, routing_key="notifications.info") for e in exchanges]
        with self.connection.channel() as channel:
            Queue(name, bindings=bindings, durable=True, auto_delete=False)(channel).declare()
        self.queues.append(name)

    def publish(self, messages: Sequence[tuple[str, str]]) -> float:
        """basic.publish each (service, body) as impl_rabbit's notify_send: topic exchange,
        routing key `notifications.info`, JSON, persistent. Returns the seconds it took."""
        from kombu import Producer

        started = time.perf_counter()
        with self.connection.channel() as channel:
            producer = Producer(channel)
            for service, body in messages:
                producer.publish(
                    body,
                    exchange=self.exchanges[service],
                    routing_key="notifications.info",
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    retry=False,
                )
        return time.perf_counter() - started

    def depth(self, name: str) -> int:
        from kombu import Queue

        with self.connection.channel() as channel:
            declared = Queue(name, durable=True, channel=channel).queue_declare(passive=True)
            return int(declared.message_count)

    def wait_depth(self, name: str, count: int, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while self.depth(name) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"queue {name} holds {self.depth(name)} of {count}")
            time.sleep(0.2)

    def purge(self, name: str) -> None:
        with self.connection.channel() as channel:
            channel.queue_purge(name)

    def close(self) -> None:
        with self.connection.channel() as channel:
            for name in self.queues:
                with suppress(Exception):
                    channel.queue_delete(name)
        with self.connection.channel() as channel:
            for name in self.exchanges.values():
                with suppress(Exception):
                    channel.exchange_delete(name)
        self.connection.release()


# --- the workloads -------------------------------------------------------------------------


def day_of_backlog(count: int, projects: int, seed: int = 7) -> list[tuple[str, str]]:
    """(service, body) of `count` notifications over the past day."""
    started = time.perf_counter()
    start = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    messages = workload.notifications(count, projects=projects, start=start, seed=seed)
    pairs = [(service, workload.envelope(m)) for service, m in messages]
    log(f"generated {count} notifications in {time.perf_counter() - started:.1f} s")
    return pairs


def event_mix(pairs: Sequence[tuple[str, str]]) -> str:
    """How many creates, updates, resizes, exists, deletes (and others) the workload has."""
    kinds = dict.fromkeys(("create", "update", "resize", "exists", "delete", "other"), 0)
    for _, body in pairs:
        event_type = json.loads(json.loads(body)["oslo.message"])["event_type"]
        if event_type.endswith("create.end") or event_type == "image.create":
            kinds["create"] += 1
        elif "resize" in event_type:
            kinds["resize"] += 1
        elif event_type.endswith("exists"):
            kinds["exists"] += 1
        elif "delete" in event_type:
            kinds["delete"] += 1
        elif any(word in event_type for word in ("update", "attach", "detach")):
            kinds["update"] += 1
        else:
            kinds["other"] += 1
    return ", ".join(f"{v} {k}" for k, v in kinds.items())


# --- 1. ingest -----------------------------------------------------------------------------


@dataclass
class Drain:
    seconds: float
    events_per_s: float
    cpu_seconds: float | None = None  # user + system, over the same span
    peak_rss_mb: float | None = None
    counts: dict[str, int] = field(default_factory=dict)


BATCH_LINE = re.compile(
    r"batch: (\d+) received, (\d+) applied, (\d+) ignored, (\d+) duplicate, (\d+) quarantined"
)


def drain_bare(queue: str, count: int, buffered: bool = False) -> Drain:
    command = [sys.executable, str(HERE / "kombu_baseline.py"), BROKER_URL, queue, str(count)]
    command += ["--buffered"] if buffered else []
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env()
    )
    try:
        lines = Lines(process.stdout, process.pid)
        first = lines.wait_for(lambda t: t == "consuming", 60)
        last = lines.wait_for(lambda t: t.startswith("done"), 60 + count / 200, first)
        seconds = lines.lines[last][0] - lines.lines[first][0]
        done = lines.lines[last][1].split()
        if int(done[1]) != count:
            raise RuntimeError(f"the bare consumer acknowledged {done[1]} of {count}")
        cpu = lines.cpu_between(first, last)
        return Drain(seconds, count / seconds, cpu, counts={"acked": int(done[1])})
    finally:
        stop(process)


def bracketed(before: Drain, after: Drain, count: int) -> Drain:
    """One drain of `count` messages timed as the mean of two (its CPU time too)."""
    seconds = (before.seconds + after.seconds) / 2
    cpus = [d.cpu_seconds for d in (before, after)]
    cpu = None if None in cpus else sum(c or 0.0 for c in cpus) / 2
    return Drain(seconds, count / seconds, cpu, counts=before.counts)


def drain_rintik(config: Path, count: int, timeout: float) -> Drain:
    """Start `rintik-lite run`, time from `consuming` to the batch that completes `count`."""
    process = subprocess.Popen(
        rintik_command("run", "--config", str(config)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        lines = Lines(process.stderr, process.pid)
        first = lines.wait_for(lambda t: " consuming " in t, 60)
        totals = [0, 0, 0, 0, 0]

        def complete(text: str) -> bool:
            match = BATCH_LINE.search(text)
            if match:
                for i, value in enumerate(match.groups()):
                    totals[i] += int(value)
            return totals[0] >= count

        with profiled(process.pid, f"run-ingest-{count}-{uuid.uuid4().hex[:4]}"):
            index = lines.wait_for(complete, timeout, first + 1)
        seconds = lines.lines[index][0] - lines.lines[first][0]
        rss = peak_rss_mb(process.pid)
        readers = [own_peak_rss_mb(pid) or 0 for pid in children(process.pid)]
        log(f"peak RSS: run {own_peak_rss_mb(process.pid)} MB, its readers {readers} MB")
        names = ("received", "applied", "ignored", "duplicate", "quarantined")
        cpu = lines.cpu_between(first, index)
        return Drain(seconds, count / seconds, cpu, rss, dict(zip(names, totals, strict=True)))
    finally:
        stop(process)


def ingest(report: Report, db: str, count: int, projects: int) -> None:
    ws = Workspace(db)
    broker = Broker(ws.prefix)
    try:
        pairs = day_of_backlog(count, projects)
        report.add("events", count)
        report.add("projects", projects)
        report.add("mix", event_mix(pairs))
        report.add("avg_body_bytes", round(sum(len(b) for _, b in pairs) / len(pairs)))
        bare_queue, rintik_queue = f"{ws.prefix}.bare", f"{ws.prefix}.rintik"
        buffered_queue = f"{ws.prefix}.bare-buffered"
        after_queue = f"{ws.prefix}.bare-after"
        queues = (bare_queue, buffered_queue, rintik_queue, after_queue)
        for name in queues:
            broker.declare_queue(name)
        seconds = broker.publish(pairs)
        for name in queues:
            broker.wait_depth(name, count)
        report.add("publish_seconds", round(seconds, 2), "preload (publish to 4 queues), s")
        url = ws.database_url("ingest")
        with opened(url):
            pass  # migrated before the clock starts, as `run` would find an upgraded database
        log(f"bare kombu consumer draining {count} messages, load {load_average()}")
        before = drain_bare(bare_queue, count)
        log(f"bare consumer on rintik-lite's buffered transport, load {load_average()}")
        bare_buffered = drain_bare(buffered_queue, count, buffered=True)
        log(f"rintik-lite run draining {count} messages, load {load_average()}")
        rintik = drain_rintik(ws.config(url), count, timeout=max(120.0, count / 100))
        log(f"bare kombu consumer again, after rintik-lite, load {load_average()}")
        after = drain_bare(after_queue, count)
        # The bare consumer runs before and after rintik-lite and is judged by the mean of
        # its two times: a VM whose speed drifts during the run (seen here: 20 % within
        # minutes) moves both alike, and the drift cancels out of the ratio.
        bare = bracketed(before, after, count)
        report.add("bare_kombu_before_events_per_s", round(before.events_per_s))
        report.add("bare_kombu_after_events_per_s", round(after.events_per_s))
        report.add("bare_kombu_seconds", round(bare.seconds, 2), "bare kombu, mean of both, s")
        report.add("bare_kombu_events_per_s", round(bare.events_per_s), "bare kombu, ev/s")
        report.add("rintik_seconds", round(rintik.seconds, 2), "rintik-lite run, s")
        report.add("ingest_events_per_s", round(rintik.events_per_s), "rintik-lite run, events/s")
        ratio = rintik.events_per_s / bare.events_per_s
        report.add("ingest_ratio_to_bare_kombu", round(ratio, 3), "ratio to bare kombu")
        # Not judged: the same bare consumer over the collector's own socket reads.
        report.add(
            "bare_buffered_events_per_s",
            round(bare_buffered.events_per_s),
            "bare consumer, buffered transport, ev/s",
        )
        report.add(
            "ingest_ratio_to_bare_buffered",
            round(rintik.events_per_s / bare_buffered.events_per_s, 3),
            "ratio to it (not judged)",
        )
        # CPU time moves less than wall time on a shared machine (not judged).
        for name, drain in (("bare_kombu", bare), ("rintik", rintik)):
            if drain.cpu_seconds is not None:
                per_event = drain.cpu_seconds / count * 1e6
                report.add(f"{name}_cpu_us_per_event", round(per_event, 1), f"{name}, CPU us/event")
        report.add(
            "peak_rss_mb", round(rintik.peak_rss_mb or 0, 1), "peak RSS of run and its readers, MB"
        )
        report.add("outcome", rintik.counts)
        with opened(url):
            from rintik_lite.models import Event, Interval, Quarantine

            stored = Event.select().count() + Quarantine.select().count()
            report.add("ledger_intervals", Interval.select().count())
        if stored != count:
            raise RuntimeError(f"{stored} of {count} messages are in the database")
        report.target(
            f">= {TARGETS['ingest_events_per_s']} events/s",
            rintik.events_per_s >= TARGETS["ingest_events_per_s"],
        )
        report.target(
            f">= {TARGETS['ingest_ratio_to_bare_kombu']} x bare kombu",
            ratio >= TARGETS["ingest_ratio_to_bare_kombu"],
        )
    finally:
        broker.close()
        ws.close()


# --- 2. replay -----------------------------------------------------------------------------

DECODE_ONLY = """
import json, sys, time
from pathlib import Path
started = time.perf_counter()
count = 0
for name in sys.argv[1:]:
    for line in Path(name).read_bytes().splitlines():
        if line.strip():
            doc = json.loads(line)
            if "oslo.message" in doc:
                doc = json.loads(doc["oslo.message"])
            count += bool(doc)
print(count, time.perf_counter() - started)
"""


def python_script(script: str, *args: str, timeout: float = 600) -> str:
    """What `script` prints, run with `args` by a fresh Python of this venv."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        check=True,
        env=child_env(),
        timeout=timeout,
    ).stdout


def decode_only(files: Sequence[str]) -> float:
    """Seconds a fresh Python takes to read and decode `files` (`DECODE_ONLY`)."""
    return float(python_script(DECODE_ONLY, *files).split()[1])


#: `replay --split`, in a child process: `record FILE... TIMED TRACED TRACE` times reading
#: the files as a reader process does (read, pack, pickle) and recording them as `replay`
#: does (unpickle, unpack, `record_read`) into database TIMED, each in this thread's CPU
#: time; then records them again into TRACED, keeping every SQL statement with its
#: parameters, into the file TRACE. `sql DB TRACE` runs those statements alone, bound as
#: they were, into a fresh database opened as rintik-lite opens one.
SPLIT = """
import gc, json, pickle, sys, time
from datetime import UTC, datetime
from pathlib import Path
from rintik_lite import db, gctune, reading, services
from rintik_lite.cli import REPLAY_BATCH, _batches  # replay's own batches of file spans

mode, *paths = sys.argv[1:]
if mode == "record":
    *files, timed, traced, trace_path = paths
    batches = list(_batches([Path(f) for f in files], REPLAY_BATCH, lambda: None))
    trace = []

    class Traced:  # each statement kept, then run
        def __init__(self, inner):
            self.inner = inner
        def execute(self, sql, params=()):
            trace.append((sql, tuple(params), False))
            return self.inner.execute(sql, params)
        def executemany(self, sql, rows):
            rows = [tuple(r) for r in rows]
            trace.append((sql, rows, True))
            return self.inner.executemany(sql, rows)
        def __getattr__(self, name):
            return getattr(self.inner, name)

    with gctune.tuned():
        started = time.thread_time()
        blobs = [pickle.dumps(reading.read_messages(reading.expanded(b), ()).packed(), 5)
                 for b in batches]
        read = time.thread_time() - started
        now = datetime.now(UTC)
        # Timed as it runs, then again into another database keeping every statement: what
        # the trace holds (every body) would cost the timed run page faults of its own.
        for path in (timed, traced):
            db.open_database("sqlite:///" + path)
            if path == traced:
                cursor = db.database.obj.cursor
                db.database.obj.cursor = lambda *a, **k: Traced(cursor(*a, **k))
            gc.collect()
            started = time.thread_time()
            for blob in blobs:
                services.record_read(services.ReadBatch.unpacked(pickle.loads(blob)), now)
            if path == timed:
                recorded = time.thread_time() - started
    with open(trace_path, "wb") as out:
        pickle.dump(trace, out, 5)
    print(json.dumps({"read": read, "record": recorded, "statements": len(trace)}))
else:
    database, trace_path = paths
    db.open_database("sqlite:///" + database)
    with open(trace_path, "rb") as f:
        trace = pickle.load(f)
    trace = trace[next(i for i, t in enumerate(trace) if t[0].startswith("BEGIN")):]
    cursor = db.database.connection().cursor()
    started = time.thread_time()
    for sql, params, many in trace:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
            if cursor.description:
                cursor.fetchall()
            if sql == "COMMIT":
                db.Checkpointer.committed()
    print(json.dumps({"sql": time.thread_time() - started}))
"""


def split(report: Report, ws: Workspace, files: Sequence[str], count: int) -> None:
    """Where replay's CPU goes (`--split`, SQLite): reading, recording, and the SQL that
    recording ran, run alone; microseconds of one thread's CPU an event."""

    def child(*args: str) -> dict[str, float]:
        out = python_script(SPLIT, *args, timeout=max(600, count / 50))
        return dict(json.loads(out.splitlines()[-1]))

    trace = str(ws.root / "split-trace.pickle")
    log(f"split: reading and recording {count} events in one process, load {load_average()}")
    databases = [str(ws.root / f"split-{name}.db") for name in ("timed", "traced", "sql")]
    recorded = child("record", *files, *databases[:2], trace)
    log("split: the recording's SQL alone")
    sql = child("sql", databases[2], trace)["sql"]
    us = 1e6 / count
    reading, recording = recorded["read"] * us, recorded["record"] * us
    report.add("split_reading_us", round(reading, 1), "split: reading, us/event (a reader's)")
    report.add("split_recording_us", round(recording, 1), "split: recording, us/event")
    report.add("split_recording_sql_us", round(sql * us, 1), "  of which its SQL, run alone")
    report.add("split_statements", int(recorded["statements"]), "  statements")
    ceiling = 1e6 / max(reading, recording)
    report.add(
        "split_pipeline_ceiling_events_per_s",
        round(ceiling),
        "split: replay's ceiling, each stage on a core of its own and nothing else running",
    )


def replay(report: Report, db: str, count: int, projects: int, split_cpu: bool = False) -> None:
    ws = Workspace(db)
    try:
        pairs = day_of_backlog(count, projects)
        report.add("events", count)
        per_file = 5000
        files = []
        for n, start in enumerate(range(0, count, per_file)):
            path = ws.root / f"notifications-{n:03d}.jsonl"
            path.write_text("".join(body + "\n" for _, body in pairs[start : start + per_file]))
            files.append(str(path))
        empty = ws.root / "empty" / "none.jsonl"
        empty.parent.mkdir()
        empty.write_text("")
        report.add("files", len(files))

        decode_before = decode_only(files)

        url = ws.database_url("replay")
        config = ws.config(url)
        with opened(url):
            pass
        started = time.perf_counter()
        subprocess.run(
            rintik_command("replay", str(empty.parent), "--config", str(config), "--json"),
            check=True,
            capture_output=True,
            env=child_env(),
            timeout=120,
        )
        startup = time.perf_counter() - started
        log(f"rintik-lite replay of {count} events, load {load_average()}")
        started = time.perf_counter()
        done = subprocess.run(
            profiled_command(
                rintik_command("replay", *files, "--config", str(config), "--json"), "replay"
            ),
            check=True,
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=max(600, count / 50),
        )
        wall = time.perf_counter() - started
        # The last JSON line: under --profile, py-spy prints its own lines after it.
        summary = json.loads([t for t in done.stdout.splitlines() if t.startswith("{")][-1])
        if summary["received"] != count or summary["quarantined"]:
            raise RuntimeError(f"replay: {summary}")
        net = wall - startup
        # Read and decoded before and after the replay, judged by the mean of both times: a
        # VM whose speed drifts during the run moves both alike (as for ingest's bare consumer).
        decode_after = decode_only(files)
        decode_seconds = (decode_before + decode_after) / 2
        report.add("decode_only_before_events_per_s", round(count / decode_before))
        report.add("decode_only_after_events_per_s", round(count / decode_after))
        report.add("decode_only_events_per_s", round(count / decode_seconds), "read+decode, ev/s")
        report.add("replay_wall_seconds", round(wall, 2), "rintik-lite replay, wall s")
        report.add("startup_seconds", round(startup, 2), "of which process start (empty replay)")
        report.add("replay_events_per_s", round(count / net), "replay events/s (net of start)")
        report.add("replay_events_per_s_wall", round(count / wall), "replay events/s (wall)")
        report.add("outcome", summary)
        ratio = (count / net) / (count / decode_seconds)
        report.add("replay_ratio_to_decode_only", round(ratio, 3), "ratio to read+decode only")
        report.target(
            f">= {TARGETS['replay_events_per_s']} events/s",
            count / net >= TARGETS["replay_events_per_s"],
        )
        if split_cpu:
            if db == "sqlite":
                split(report, ws, files, count)
            else:
                report.note("--split traces SQLite's statements only: not run")
    finally:
        ws.close()


# --- 3. close ------------------------------------------------------------------------------


def previous_period() -> Any:
    from rintik_lite.billing.periods import Period

    return Period.containing(datetime.now(UTC)).previous()


def build(url: str, shape: workload.LedgerShape, with_events: bool) -> tuple[float, list[Any]]:
    """Bulk-fill a migrated database; seconds and the running resources."""
    period = previous_period()
    started = time.perf_counter()
    with opened(url):
        running = workload.build_ledger(
            shape, period.start, period.end, datetime.now(UTC), with_events=with_events
        )
        workload.set_prices(datetime.now(UTC) - timedelta(days=900))
    return time.perf_counter() - started, running


SQL_FLOOR = """
import sqlite3, sys, time
path, start, end = sys.argv[1:4]
db = sqlite3.connect(path)
started = time.perf_counter()
db.execute("CREATE TEMP TABLE floor_line (entity_id TEXT, project_id TEXT, start TEXT, "
           "stop TEXT, attributes TEXT)")
rows = db.execute('SELECT entity_id, project_id, start, "end", attributes FROM "interval" '
                  'WHERE start < ? AND ("end" IS NULL OR "end" > ?)', (end, start)).fetchall()
db.executemany("INSERT INTO floor_line VALUES (?, ?, ?, ?, ?)", rows)
db.commit()
print(len(rows), time.perf_counter() - started)
"""


def sql_floor(url: str, period: Any) -> tuple[int, float]:
    """Read the period's intervals and write one row per line, in plain SQL (SQLite)."""
    from rintik_lite.db import sqlite_path

    path = sqlite_path(url)
    if path is None:
        return 0, 0.0
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            SQL_FLOOR,
            str(path),
            period.start.strftime(fmt),
            period.end.strftime(fmt),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout.split()
    return int(out[0]), float(out[1])


def run_close(url: str, ws: Workspace, period: Any) -> tuple[float, int]:
    config = ws.config(url)
    started = time.perf_counter()
    done = subprocess.run(
        profiled_command(
            rintik_command("invoice", "close", "--period", str(period), "--config", str(config)),
            "close",
        ),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=3600,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"invoice close failed: {done.stderr[-2000:]}")
    return seconds, sum(1 for line in done.stdout.splitlines() if line.startswith("closed "))


def count_lines(url: str) -> int:
    with opened(url):
        from rintik_lite.models import InvoiceLine

        return int(InvoiceLine.select().count())


def close(report: Report, db: str, projects: int, per_project: int = 20) -> None:
    ws = Workspace(db)
    try:
        shape = workload.LedgerShape(projects, per_project, chain=1)
        url = ws.database_url("close")
        seconds, _ = build(url, shape, with_events=False)
        period = previous_period()
        report.add("projects", projects)
        report.add("resources", shape.resources)
        report.add("build_seconds", round(seconds, 1), "fixture bulk-inserted, s")
        report.note("ledger rows bulk-inserted (bench/workload.py build_ledger), not ingested")
        _, floor_seconds = sql_floor(url, period)
        log(f"rintik-lite invoice close --period {period}, load {load_average()}")
        seconds, invoices = run_close(url, ws, period)
        lines = count_lines(url)
        report.add("invoices", invoices)
        report.add("lines", lines)
        report.add("close_seconds", round(seconds, 2), "rintik-lite invoice close, s")
        report.add("close_lines_per_s", round(lines / seconds), "lines/s")
        if floor_seconds:
            report.add("sql_floor_seconds", round(floor_seconds, 2), "plain SQL read+write, s")
            report.add("close_ratio_to_sql_floor", round(floor_seconds / seconds, 3))
        if lines != shape.resources or invoices != projects:
            raise RuntimeError(f"closed {invoices} invoices with {lines} lines")
        report.target(
            f"{shape.resources} lines <= {TARGETS['close_seconds']} s",
            seconds <= TARGETS["close_seconds"],
        )
    finally:
        ws.close()


# --- 4. api --------------------------------------------------------------------------------

WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], {["X-Auth-Token"] = "%s"})
end
"""


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(text)
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def load_wrk(
    base: str, paths: Sequence[str], seconds: int, connections: int, root: Path
) -> dict[str, float]:
    script = root / f"paths-{uuid.uuid4().hex[:6]}.lua"
    script.write_text(WRK_SCRIPT % (", ".join(json.dumps(p) for p in paths), TOKEN))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    figures = {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        # Anchored: the Latency row's "+/- Stdev" column can also end in "99%".
        "p50_ms": _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "errors": 0.0,
    }
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if bad:
        figures["errors"] = float(bad.group(1))
    if errors:
        figures["errors"] += sum(int(n) for n in re.findall(r"\d+", errors.group(0)))
    return figures


def load_python(
    base: str, paths: Sequence[str], seconds: int, connections: int, root: Path
) -> dict[str, float]:
    """Keep-alive http.client in `connections` threads (sharing the cores with the server)."""
    import http.client
    from urllib.parse import urlparse

    address = urlparse(base)
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    deadline = time.perf_counter() + seconds

    def worker(n: int) -> None:
        client = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        i = n
        while time.perf_counter() < deadline:
            path = paths[i % len(paths)]
            i += connections
            started = time.perf_counter()
            client.request("GET", path, headers={"X-Auth-Token": TOKEN})
            response = client.getresponse()
            response.read()
            latencies[n].append(time.perf_counter() - started)
            errors[n] += response.status >= 300
        client.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    elapsed = time.perf_counter() - started
    every = sorted(x for one in latencies for x in one)
    return {
        "requests_per_s": len(every) / elapsed,
        "p50_ms": every[len(every) // 2] * 1000,
        "p99_ms": every[int(len(every) * 0.99)] * 1000,
        "errors": float(sum(errors)),
    }


def api(
    report: Report, db: str, projects: int, seconds: int, connections: int, generator: str
) -> None:
    from rintik_lite import invoices
    from rintik_lite.billing.periods import Period
    from rintik_lite.billing.rating import RatingRules

    ws = Workspace(db)
    broker = Broker(ws.prefix)
    broker.queues.append(f"{ws.prefix}.rintik")
    try:
        shape = workload.LedgerShape(projects, 20, chain=5)
        url = ws.database_url("api")
        build_seconds, _ = build(url, shape, with_events=False)
        report.add("projects", projects)
        report.add("intervals", shape.intervals)
        report.add("build_seconds", round(build_seconds, 1), "fixture bulk-inserted, s")
        report.note("ledger rows bulk-inserted (bench/workload.py build_ledger), not ingested")
        tenants = workload.project_ids(projects, shape.seed)
        sample = tenants[:: max(1, projects // 500)][:500]
        now = datetime.now(UTC)
        period = previous_period()
        rules = RatingRules()
        with opened(url):
            started = time.perf_counter()
            closed = invoices.close_invoices(period, now, rules)
            report.add("fixture_close_seconds", round(time.perf_counter() - started, 1))
            closed_ids = [d["id"] for d in closed if d["project_id"] in set(sample)]
            current = Period.containing(now)
            live_ids = [invoices.invoice_for(p, current, now, rules)["id"] for p in sample]
        month = current.start.strftime("%Y-%m-%dT%H:%M:%SZ")
        endpoints = {
            "healthz": ["/healthz"],
            "entities": [f"/v1/project/{p}/entities?start={month}" for p in sample],
            "invoice_closed": [f"/api/invoice/{i}/" for i in closed_ids],
            "invoice_live": [f"/api/invoice/{i}/" for i in live_ids],
        }
        config = ws.config(url)
        port = int(re.search(r"port = (\d+)", config.read_text()).group(1))  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            rintik_command("run", "--config", str(config)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        try:
            lines = Lines(process.stderr)
            lines.wait_for(lambda t: "API listening" in t, 60)
            lines.wait_for(lambda t: " consuming " in t, 60)
            idle = current_rss_mb(process.pid)
            use = load_wrk if generator == "wrk" else load_python
            report.add("load_generator", f"{generator}, {connections} connections, {seconds} s")
            load_python(base, endpoints["entities"][:20], 1, 2, ws.root)  # warm up
            for name, paths in endpoints.items():
                log(f"GET {name}: {seconds} s, load {load_average()}")
                with profiled(process.pid, f"api-{name}"):
                    figures = use(base, paths, seconds, connections, ws.root)
                for key, value in figures.items():
                    report.add(f"{name}_{key}", round(value, 2))
                if figures["errors"]:
                    raise RuntimeError(f"{name}: {figures['errors']:.0f} failed requests")
                if name != "healthz":
                    healthz = report.figures["healthz_requests_per_s"]
                    ratio = figures["requests_per_s"] / healthz
                    report.add(f"{name}_ratio_to_healthz", round(ratio, 3))
                    report.target(
                        f"{name} >= {TARGETS['api_requests_per_s']} req/s",
                        figures["requests_per_s"] >= TARGETS["api_requests_per_s"],
                    )
                    report.target(
                        f"{name} p99 <= {TARGETS['api_p99_ms']} ms",
                        figures["p99_ms"] <= TARGETS["api_p99_ms"],
                    )
            report.add("idle_rss_mb", round(idle or 0, 1), "RSS of run before the load, MB")
            report.add(
                "peak_rss_mb",
                round(peak_rss_mb(process.pid) or 0, 1),
                "peak RSS of run and its readers, MB",
            )
        finally:
            stop(process)
    finally:
        broker.close()
        ws.close()


# --- 6. scaling ----------------------------------------------------------------------------


def scaling(report: Report, db: str, sizes: Sequence[int], batch: int) -> None:
    ws = Workspace(db)
    broker = Broker(ws.prefix)
    queue = f"{ws.prefix}.rintik"
    try:
        rates: dict[int, float] = {}
        for size in sizes:
            shape = workload.LedgerShape(max(1, size // 100), 20, chain=5)
            url = ws.database_url(f"scaling_{size}")
            seconds, running = build(url, shape, with_events=True)
            start = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0)
            # The same batch at every size: new resources, and events about 100 of the
            # prefilled resources still running (the history is what grows).
            touched = random.Random(size).sample(running, min(100, len(running)))
            messages = workload.notifications(batch, start=start, existing=touched, seed=7)
            pairs = [(s, workload.envelope(m)) for s, m in messages]
            if queue not in broker.queues:
                broker.declare_queue(queue)
            broker.publish(pairs)
            broker.wait_depth(queue, batch)
            log(f"ingest {batch} into {shape.intervals} intervals, load {load_average()}")
            drain = drain_rintik(ws.config(url), batch, timeout=max(120.0, batch / 50))
            rates[size] = drain.events_per_s
            report.add(f"ingest_prefill_{shape.intervals}_build_seconds", round(seconds, 1))
            report.add(f"ingest_into_{shape.intervals}_events_per_s", round(drain.events_per_s))
            if db == "sqlite":
                Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        first, last = rates[sizes[0]], rates[sizes[-1]]
        report.add("ingest_ratio_largest_to_smallest", round(last / first, 3))
        report.target("ingest cost flat in history (ratio >= 0.7)", last / first >= 0.7)

        line_rates: dict[int, float] = {}
        for size in sizes:
            shape = workload.LedgerShape(max(1, size // 20), 20, chain=1)
            url = ws.database_url(f"close_{size}")
            build(url, shape, with_events=False)
            log(f"close {shape.resources} lines, load {load_average()}")
            seconds, _ = run_close(url, ws, previous_period())
            lines = count_lines(url)
            line_rates[size] = lines / seconds
            report.add(f"close_{lines}_lines_seconds", round(seconds, 2))
            report.add(f"close_{lines}_lines_per_s", round(lines / seconds))
            if db == "sqlite":
                Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        ratio = line_rates[sizes[-1]] / line_rates[sizes[-2 if len(sizes) > 1 else 0]]
        report.add("close_lines_per_s_ratio_largest_to_next", round(ratio, 3))
        report.target("close linear (lines/s ratio >= 0.7)", ratio >= 0.7)
        report.note("ledgers bulk-inserted; ingest batches through RabbitMQ and rintik-lite run")
    finally:
        broker.close()
        ws.close()


# --- recording -----------------------------------------------------------------------------


def record(report: Report, started: datetime, load_before: str, argv: Sequence[str]) -> None:
    info = machine()
    lines = [
        "",
        f"### {started:%Y-%m-%d %H:%M} UTC: {report.name} ({report.db})",
        "",
        f"* command: `python bench/run.py {' '.join(argv)}`",
        f"* commit: {commit()}",
        f"* machine: {info['cpu']}, {info['cores']} cores, {info['memory']}, "
        f"Python {info['python']}, Linux {info['kernel']}",
        f"* load average (1, 5, 15 min) before: {load_before}; after: {load_average()}",
    ]
    lines += [f"* {text}" for text in report.notes]
    lines += [f"* target {label}: **{'met' if ok else 'NOT met'}**" for label, ok in report.checks]
    lines += ["", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report.figures.items()]
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\n## Runs\n")
    with RESULTS.open("a") as out:
        out.write("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=("ingest", "replay", "close", "api", "memory", "scaling"))
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--events", type=int, default=50_000, help="ingest/replay size")
    parser.add_argument("--projects", type=int, default=None)
    parser.add_argument("--seconds", type=int, default=10, help="api: per endpoint")
    parser.add_argument("--connections", type=int, default=4, help="api: concurrent")
    parser.add_argument(
        "--generator", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python"
    )
    parser.add_argument(
        "--sizes", default="1000,10000,100000,1000000", help="scaling: intervals / lines"
    )
    parser.add_argument("--batch", type=int, default=10_000, help="scaling: ingest batch")
    parser.add_argument(
        "--split",
        action="store_true",
        help="replay, SQLite: then time reading, recording and its SQL alone, in one process",
    )
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy each rintik-lite process into DIR"
    )
    args = parser.parse_args(argv)
    global PROFILE_DIR
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        PROFILE_DIR = args.profile.resolve()
    raw_argv = list(argv if argv is not None else sys.argv[1:])
    started = datetime.now(UTC)
    load_before = load_average()
    report = Report(args.name, args.db)
    print(f"{args.name} on {args.db} (load average {load_before})", flush=True)
    loop_before = python_loop_seconds()
    if args.name == "ingest":
        ingest(report, args.db, args.events, args.projects or 1000)
    elif args.name == "replay":
        replay(report, args.db, args.events, args.projects or 1000, args.split)
    elif args.name == "close":
        close(report, args.db, args.projects or 10_000)
    elif args.name == "api":
        projects = args.projects or 10_000
        api(report, args.db, projects, args.seconds, args.connections, args.generator)
    elif args.name == "memory":
        inner = Report("ingest", args.db)
        ingest(inner, args.db, args.events, 1000)
        report.add("ingest_peak_rss_mb", inner.figures["peak_rss_mb"], "run during ingest, MB")
        inner = Report("api", args.db)
        api(inner, args.db, args.projects or 10_000, args.seconds, args.connections, args.generator)
        report.add("api_peak_rss_mb", inner.figures["peak_rss_mb"], "run during api, MB")
        worst = max(report.figures["ingest_peak_rss_mb"], report.figures["api_peak_rss_mb"])
        report.target(f"<= {TARGETS['peak_rss_mb']} MB", worst <= TARGETS["peak_rss_mb"])
    elif args.name == "scaling":
        sizes = [int(s) for s in args.sizes.split(",")]
        scaling(report, args.db, sizes, args.batch)
    report.figures["load_average_after"] = load_average()
    loop_after = python_loop_seconds()
    report.add("python_loop_before_s", round(loop_before, 2), "VM speed: the loop before, s")
    report.add("python_loop_after_s", round(loop_after, 2), "the loop after, s")
    if args.record:
        record(report, started, load_before, raw_argv)
    print(json.dumps({"benchmark": args.name, "db": args.db, **report.figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
