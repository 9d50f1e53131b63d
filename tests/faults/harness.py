"""What the fault tests share: a real `rintik-lite run` process, its config file, its log and
its /healthz; fast publishing to the test's private exchanges; RabbitMQ's own queue counts.

Everything is on loopback, and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from kombu import Connection, Exchange, Producer

from rintik_lite.collector import declare_queue
from tests.conftest import ROOT, Broker, envelope

TOKEN = "fault-suite-token-5b2f"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], seconds: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not met within {seconds:.0f} s: {what or condition}")


def _toml(value: Any) -> str:
    # JSON strings, numbers, booleans and arrays of them are valid TOML values.
    return json.dumps(value)


def write_config(
    path: Path,
    broker: Broker,
    db_url: str,
    port: int,
    sections: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """A config file for `run` on the test's queue and exchanges; `sections` add or
    override keys, e.g. {"broker": {"batch_size": 50}, "scheduler": {"enabled": True}}."""
    doc: dict[str, dict[str, Any]] = {
        "database": {"url": db_url, "busy_timeout_ms": 2000},
        "broker": {
            "url": broker.url,
            "queue": broker.queue,
            "exchanges": list(broker.exchanges.values()),
            "batch_seconds": 0.1,
            "reconnect_max_seconds": 2.0,
        },
        "api": {"host": "127.0.0.1", "port": port, "threads": 2},
        "auth": {"private_key": TOKEN},
        "scheduler": {"enabled": False},
    }
    for section, values in (sections or {}).items():
        doc.setdefault(section, {}).update(values)
    text = "".join(
        f"[{section}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items())
        for section, values in doc.items()
    )
    path.write_text(text)
    path.chmod(0o600)
    return path


class RunProcess:
    """`python -m rintik_lite run --config PATH` as a child process, its stderr collected."""

    def __init__(self, config: Path, port: int, name: str = "run") -> None:
        self.config = config
        self.port = port
        self.name = name
        self.log: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self, wait: bool = True) -> RunProcess:
        self.log_from = len(self.log)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rintik_lite", "run", "--config", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        stream = self.process.stderr
        assert stream is not None
        self._reader = threading.Thread(
            target=lambda: self.log.extend(iter(stream.readline, "")), daemon=True
        )
        self._reader.start()
        if wait:
            self.wait_for_log("consuming", 30)
        return self

    @property
    def text(self) -> str:
        return "".join(self.log)

    def since_start(self) -> str:
        return "".join(self.log[self.log_from :])

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_for_log(self, text: str, seconds: float = 30.0) -> None:
        def seen() -> bool:
            if not self.alive() and (self._reader is None or not self._reader.is_alive()):
                raise AssertionError(f"{self.name} exited:\n{self.tail()}")
            return text in self.since_start()

        wait_for(seen, seconds, f"{text!r} in the log of {self.name}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return "".join(self.log[-lines:])

    def descendants(self) -> list[int]:
        """The processes `run` started (its readers, and the fork server and resource
        tracker of `multiprocessing` when it uses them), and theirs, still alive."""
        assert self.process is not None
        return descendants(self.process.pid)

    def kill(self) -> None:
        """kill -9: no handler runs, nothing is flushed."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._join()

    def terminate(self, seconds: float = 15.0) -> int:
        """SIGTERM, then wait for the exit code (SIGKILL if it overstays)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"{self.name} did not stop on SIGTERM:\n{self.tail()}") from None
        self._join()
        return code

    def _join(self) -> None:
        if self._reader is not None:
            self._reader.join(5)

    def stop_quietly(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)
        self._join()

    def health(self) -> tuple[int, dict[str, Any]]:
        """GET /healthz: (status, body); (0, {}) when nothing answers."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/healthz", timeout=5
            ) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except (OSError, ValueError):
            return 0, {}


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the process's name (state, parent, process
    group, session, ...), or None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # none, or it ended meanwhile
        return None


def live_processes() -> dict[int, list[str]]:
    """Every live process (zombies left out), with its `stat_fields`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields is not None and fields[0] != "Z":
                found[int(entry.name)] = fields
    return found


def descendants(pid: int) -> list[int]:
    """The live processes below `pid`."""
    children: dict[int, list[int]] = {}
    for child, fields in live_processes().items():
        children.setdefault(int(fields[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie has ended)."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def declare(broker: Broker) -> None:
    """Declare and bind the test's queue before publishing, so that nothing is dropped."""
    settings = broker.settings("sqlite:///unused.db")
    with Connection(broker.url, connect_timeout=5) as conn:
        declare_queue(conn.channel(), settings)


def publish_all(broker: Broker, items: Iterable[tuple[str, Any]]) -> int:
    """Publish (service, message) pairs on one channel, as oslo's rabbit driver does: a dict
    is sent as the messagingv2 envelope, str or bytes as they are. Returns the count."""
    count = 0
    with Connection(broker.url, connect_timeout=5) as conn:
        channel = conn.channel()
        producer = Producer(channel)
        declared: dict[str, Exchange] = {}
        for service, message in items:
            exchange = declared.get(service)
            if exchange is None:
                exchange = Exchange(
                    broker.exchanges[service], type="topic", durable=False, auto_delete=False
                )
                exchange(channel).declare()
                declared[service] = exchange
            body = envelope(message) if isinstance(message, dict) else message
            producer.publish(
                body,
                exchange=exchange,
                routing_key="notifications.info",
                content_type="application/json",
                content_encoding="utf-8" if isinstance(body, str) else "binary",
                delivery_mode=2,
            )
            count += 1
    return count


def queue_counts(broker: Broker) -> tuple[int, int]:
    """(ready, unacknowledged) of the test's queue, as RabbitMQ itself counts them."""
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name", "messages_ready", "messages_unacknowledged"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    for line in listing.stdout.splitlines():
        parts = line.split("\t")
        if parts[0] == broker.queue:
            return int(parts[1]), int(parts[2])
    raise AssertionError(f"queue {broker.queue} not listed")


def close_from_the_broker(connection_name: str) -> int:
    """Cut a connection from RabbitMQ's side (as a broker restart or a network drop does);
    only the connections with this exact name, which our test owns. Returns how many."""
    from tests.test_collector import _close_from_the_broker

    _close_from_the_broker(connection_name)
    return 1
