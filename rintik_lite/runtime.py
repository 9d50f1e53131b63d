"""`rintik-lite run`: start the threads, stop them on SIGINT/SIGTERM, in reverse order.

Signal handlers only set a flag. Each thread runs a loop that checks it at least twice a
second, commits (or leaves unacknowledged) what it holds, and returns; `run` joins each
with a timeout and warns about any that will not stop. Stop order: API, collector, then the
database.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from rintik_lite.collector import Collector
from rintik_lite.db import close_database
from rintik_lite.settings import Settings

log = logging.getLogger(__name__)

JOIN_SECONDS = 4.0


class Runtime:
    """The threads of one `run` process, and their shared stop flag."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop = threading.Event()
        self.collector = Collector(settings)
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
        self._thread("collector", self.collector.run)

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
    runtime.start()
    try:
        runtime.wait()
    finally:
        runtime.shutdown()
