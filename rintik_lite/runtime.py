"""`rintik-lite run`: start the threads, stop them on SIGINT/SIGTERM, in reverse order.

Three threads: the scheduler (closes ended months), the collector (RabbitMQ -> ledger) and
the API (cheroot serving the Bottle app). Signal handlers only set a flag. Each thread runs
a loop that checks it at least twice a second, commits (or leaves unacknowledged) what it
holds, and returns; `shutdown` joins them in reverse order (API, collector, scheduler) with a
timeout, warns about any that will not stop, then closes the database.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import peewee

from rintik_lite import gctune, services
from rintik_lite.api import create_app
from rintik_lite.api.metrics import QueueDepth, instrument, ledger_figures, runtime_text
from rintik_lite.api.server import ApiServer
from rintik_lite.collector import Collector
from rintik_lite.db import close_database
from rintik_lite.ledger.notifications import format_time
from rintik_lite.scheduler import Scheduler
from rintik_lite.settings import Settings

log = logging.getLogger(__name__)

JOIN_SECONDS = 4.0


class Runtime:
    """The threads of one `run` process, and their shared stop flag."""

    def __init__(
        self,
        settings: Settings,
        connection_factory: Callable[[], Any] | None = None,
        extra_threads: Sequence[tuple[str, Callable[[threading.Event], None]]] = (),
    ) -> None:
        """`connection_factory` (a kombu Connection maker) replaces `[broker] url`, as the
        demo's in-process broker does; `extra_threads` start last and stop first."""
        self.settings = settings
        self.stop = threading.Event()
        self.collector = Collector(settings, connection_factory=connection_factory)
        self.scheduler = Scheduler.from_settings(settings)
        self.queue_depth = QueueDepth(settings, connection_factory)
        self.extra_threads = list(extra_threads)
        app = create_app(settings, health=self.health)
        self.api = ApiServer.from_settings(settings, instrument(app, settings, self.metrics))
        self.threads: list[threading.Thread] = []

    def _thread(self, name: str, target: Callable[[threading.Event], None]) -> None:
        def guarded() -> None:
            try:
                target(self.stop)
            except Exception:
                log.exception("thread %s crashed; stopping", name)
                self.stop.set()

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def start(self) -> None:
        self.api.start()  # binds now: a port in use is a one-line error before anything runs
        if self.scheduler.enabled:  # off: a systemd timer runs `rintik-lite invoice close`
            self._thread("scheduler", self.scheduler.run)
        self._thread("collector", self.collector.run)
        self._thread("api", self.api.run)
        for name, target in self.extra_threads:
            self._thread(name, target)

    def health(self) -> dict[str, Any]:
        """What /healthz shows: healthy only when every part is."""
        threads = {t.name: t.is_alive() for t in self.threads}
        status = self.collector.status
        database_error = status.database_error
        try:
            services.ping()
        except peewee.PeeweeException as exc:
            database_error = f"{type(exc).__name__}: {exc}"
        last_event = status.last_message_at or services.last_event_time()
        age = (datetime.now(UTC) - last_event).total_seconds() if last_event else None
        scheduler = self.scheduler.status()
        return {
            "healthy": bool(threads)
            and all(threads.values())
            and status.connected
            and database_error is None
            and scheduler["last_error"] is None,
            "threads": threads,
            "broker": {"connected": status.connected, "error": status.broker_error},
            "database": {"writable": database_error is None, "error": database_error},
            "last_event": format_time(last_event) if last_event else None,
            "last_event_age_seconds": round(age, 3) if age is not None else None,
            "pending_messages": status.pending,
            "scheduler": scheduler,
        }

    def metrics(self) -> str:
        """This process's part of /metrics (the API middleware adds the request figures)."""
        now = datetime.now(UTC)
        return runtime_text(
            self.collector.status,
            self.scheduler,
            self.settings["broker.queue"],
            self.queue_depth(),
            ledger_figures(now, self.scheduler.rules),
            now,
        )

    def wait(self) -> None:
        while not self.stop.wait(0.5):
            pass

    def shutdown(self) -> None:
        """Stop every thread, last started first; safe to call twice."""
        self.stop.set()
        for thread in reversed(self.threads):
            thread.join(JOIN_SECONDS)
            if thread.is_alive():
                log.warning("thread %s did not stop within %.0f s", thread.name, JOIN_SECONDS)
        close_database()

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)


def run(settings: Settings) -> None:
    runtime = Runtime(settings)
    runtime.install_signal_handlers()
    with gctune.serving():  # start-up is done: what it made is frozen out of collections
        runtime.start()
        try:
            runtime.wait()
        finally:
            runtime.shutdown()
