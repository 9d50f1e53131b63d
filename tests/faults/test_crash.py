"""Crash: `kill -9` the `run` process at 20 random moments while it ingests 20,000
notifications, restart it each time; the ledger and the invoices equal an uninterrupted
run's, with zero events lost and zero counted twice; and each time, the processes it
started (its reader) end with it."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from rintik_lite import invoices
from rintik_lite.db import close_database, open_database
from tests.conftest import Broker
from tests.faults import workload
from tests.faults.harness import (
    RunProcess,
    alive,
    declare,
    free_port,
    publish_all,
    queue_counts,
    wait_for,
    write_config,
)

KILLS = 20
SEED = 20


def _kill_points(rng: random.Random, distinct: int) -> list[int]:
    """20 event counts, spread over the stream (at least 300 apart), at which to kill."""
    span = (distinct - 1000) // KILLS
    return [500 + i * span + rng.randrange(0, span - 300) for i in range(KILLS)]


@pytest.mark.slow
def test_kill_9_at_20_random_moments_loses_and_doubles_nothing(
    tmp_path: Path, broker: Broker
) -> None:
    messages = workload.stream(instances=400, volumes=200)
    distinct = workload.distinct(messages)
    declare(broker)
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    published: list[int] = []

    def publish_then_reference() -> None:
        """Beside the crashing process: publish everything (it starts consuming at once),
        then record the same messages in one go into the reference database."""
        published.append(publish_all(broker, messages))
        open_database(reference_url)
        try:
            workload.feed(messages)
        finally:
            close_database()

    beside = threading.Thread(target=publish_then_reference, daemon=True)
    beside.start()

    path = tmp_path / "crashed.db"
    port = free_port()
    config = write_config(tmp_path / "rintik.toml", broker, f"sqlite:///{path}", port)
    run = RunProcess(config, port)
    rng = random.Random(SEED)

    def stored() -> int:
        if not path.exists():
            return 0
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            try:
                return int(db.execute("SELECT count(*) FROM event").fetchone()[0])
            except sqlite3.OperationalError:  # not migrated yet
                return 0

    started = time.monotonic()
    killed_at: list[int] = []
    left_behind: list[int] = []  # processes that run had started, when it was killed
    try:
        for point in _kill_points(rng, distinct):
            run.start()
            wait_for(lambda p=point: stored() >= p, 90, f"{point} events stored")  # type: ignore[misc]
            time.sleep(rng.uniform(0, 0.12))  # anywhere in the next batch: read, commit, ack
            started_by_run = run.descendants()
            run.kill()
            killed_at.append(stored())
            # Its reader processes end with it, and nothing they held keeps others alive.
            wait_for(
                lambda pids=started_by_run: not any(map(alive, pids)),  # type: ignore[misc]
                10,
                f"the processes run started ({started_by_run}) end with it",
            )
            left_behind.append(len(started_by_run))
        run.start()
        # Drained: every event stored, and every message, redeliveries of the killed runs'
        # unacknowledged ones included, delivered and acknowledged. All events can be
        # stored while duplicates of them still wait in the queue.
        wait_for(
            lambda: stored() >= distinct and queue_counts(broker) == (0, 0),
            120,
            "the queue drained",
        )
        assert run.terminate() == 0
    finally:
        run.stop_quietly()
        beside.join(120)
    elapsed = time.monotonic() - started
    assert published == [len(messages)]
    assert broker.queue_depth() == 0
    assert "Traceback" not in run.text, run.text[-3000:]
    redelivered = sum(
        int(line.split(" duplicate")[0].rsplit(", ", 1)[1])
        for line in run.log
        if "batch: " in line and " duplicate" in line
    )

    # What the crashed-and-restarted process recorded ...
    projects = workload.project_ids(messages)
    open_database(f"sqlite:///{path}")
    crashed = workload.counts()
    crashed_ledger = workload.ledger(projects)
    workload.set_prices()
    invoices.close_invoices(None, workload.CLOSE_NOW, workload.RULES)
    crashed_invoices = workload.closed_invoices()
    close_database()
    # ... and what one uninterrupted run recorded of the same messages.
    open_database(reference_url)
    reference = workload.counts()
    reference_ledger = workload.ledger(projects)
    workload.set_prices()
    invoices.close_invoices(None, workload.CLOSE_NOW, workload.RULES)
    reference_invoices = workload.closed_invoices()
    close_database()

    lost = distinct - crashed["distinct_keys"]
    duplicated = crashed["events"] - crashed["distinct_keys"]
    print(
        f"\ncrash test: {len(messages)} published, {distinct} distinct, {len(killed_at)} kill -9 "
        f"at {killed_at} events; {crashed['events']} events stored, lost {lost}, "
        f"duplicated {duplicated}, quarantined {crashed['quarantined']}, "
        f"{redelivered} deliveries recognised as duplicates (the "
        f"{len(messages) - distinct} published twice, and redeliveries after a kill); "
        f"{sum(len(v) for v in crashed_ledger.values())} intervals, "
        f"{len(crashed_invoices)} invoices; {elapsed:.1f} s"
    )
    assert len(killed_at) == KILLS
    assert min(left_behind) >= 1  # it had started its reader each time (broker.readers = 1)
    assert (lost, duplicated, crashed["quarantined"]) == (0, 0, 0)
    assert crashed == reference == {"events": distinct, "distinct_keys": distinct, "quarantined": 0}
    assert crashed_ledger == reference_ledger
    assert crashed_invoices == reference_invoices
    assert len(crashed_invoices) == len(projects)
