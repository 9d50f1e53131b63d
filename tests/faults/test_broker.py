"""Broker loss: RabbitMQ drops the `run` process's connection mid-stream, twice; it
reconnects with backoff, /healthz shows the outage while it lasts, and nothing is lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rintik_lite.db import close_database, open_database
from tests.conftest import Broker
from tests.faults import workload
from tests.faults.harness import (
    RunProcess,
    close_from_the_broker,
    declare,
    free_port,
    publish_all,
    wait_for,
    write_config,
)


@pytest.mark.slow
def test_the_collector_reconnects_and_loses_nothing(tmp_path: Path, broker: Broker) -> None:
    messages = workload.stream(total=2000, instances=40, volumes=20, projects=3, seed=5)
    distinct = workload.distinct(messages)
    url = f"sqlite:///{tmp_path / 'rintik.db'}"
    port = free_port()
    # Small batches and a slow trickle: the cuts land mid-stream, with batches in flight.
    run = RunProcess(write_config(tmp_path / "rintik.toml", broker, url, port), port)
    declare(broker)
    seen: list[tuple[float, int, dict[str, Any]]] = []
    done = threading.Event()

    def watch() -> None:  # /healthz, all along
        while not done.is_set():
            status, body = run.health()
            seen.append((time.monotonic(), status, body))
            done.wait(0.02)

    def publish() -> None:
        for i in range(0, len(messages), 100):
            publish_all(broker, messages[i : i + 100])
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    publisher = threading.Thread(target=publish, daemon=True)
    try:
        run.start()
        watcher.start()
        publisher.start()
        for cut in range(2):
            wait_for(lambda c=cut: run.text.count("consuming") > c, 30, "(re)connected")  # type: ignore[misc]
            time.sleep(0.3)
            close_from_the_broker(f"rintik-lite collector ({broker.queue})")
        publisher.join(60)
        wait_for(lambda: run.text.count("consuming") == 3, 30, "reconnected twice")

        def stored() -> int:
            open_database(url, migrate=False)
            try:
                return workload.counts()["events"]
            finally:
                close_database()

        wait_for(lambda: stored() >= distinct, 60, "every event stored")
        wait_for(lambda: run.health()[0] == 200, 10, "healthy again")
        assert run.terminate() == 0
    finally:
        done.set()
        run.stop_quietly()
    watcher.join(5)

    outage = [
        body for _, status, body in seen if status == 503 and body["broker"]["connected"] is False
    ]
    print(
        f"\nbroker loss: 2 cuts; {len(outage)} of {len(seen)} /healthz answers showed the "
        f"outage: {outage[0]['broker']['error'] if outage else None!r}"
    )
    assert outage, "no /healthz answer showed the outage"
    assert all(body["broker"]["error"] for body in outage)
    assert run.text.count("retrying in") >= 2  # the backoff, in the log
    assert "Traceback" not in run.text
    open_database(url)
    counts = workload.counts()
    close_database()
    assert counts == {"events": distinct, "distinct_keys": distinct, "quarantined": 0}
    assert broker.queue_depth() == 0
