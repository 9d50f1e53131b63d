"""Shutdown: SIGTERM while a batch is held or being committed commits it whole or rolls it
back whole; what was not acknowledged is redelivered and deduplicated on the next run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rintik_lite.db import close_database, open_database
from tests.conftest import Broker
from tests.faults import workload
from tests.faults.harness import RunProcess, declare, free_port, publish_all, wait_for, write_config


def _stored(url: str) -> dict[str, int]:
    open_database(url, migrate=False)
    try:
        return workload.counts()
    finally:
        close_database()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("moment", "size"),
    [("while the batch is held", 500), ("while the batch commits", 3000)],
)
def test_sigterm_during_a_batch_commits_or_rolls_back_whole(
    tmp_path: Path, broker: Broker, moment: str, size: int
) -> None:
    messages = workload.stream(total=size, instances=40, volumes=20, projects=3, seed=6)
    distinct = workload.distinct(messages)
    url = f"sqlite:///{tmp_path / 'rintik.db'}"
    port = free_port()
    # One batch of the whole stream ("commits"), or a batch that would wait 60 s ("held").
    batch = {"batch_size": size if "commits" in moment else 10 * size, "batch_seconds": 60.0}
    config = write_config(tmp_path / "rintik.toml", broker, url, port, {"broker": batch})
    run = RunProcess(config, port)
    declare(broker)
    publish_all(broker, messages)
    try:
        run.start()
        # /healthz counts the batch; when it is full, its commit has begun.
        wait_for(lambda: run.health()[1].get("pending_messages") == size, 30, "batch received")
        started = time.monotonic()
        assert run.terminate() == 0
        stopped = time.monotonic() - started
    finally:
        run.stop_quietly()
    after_stop = _stored(url)
    left = broker.queue_depth()
    assert "received SIGTERM, stopping" in run.text
    # Whole: every event of the batch and acknowledged, or none and all redelivered.
    if after_stop["events"]:
        assert after_stop["events"] == distinct
        assert left in (0, size)  # acknowledged, or (killed between commit and ack) not
    else:
        assert left == size
    # The next run finds the ledger complete, each event once.
    try:
        run.start()
        wait_for(lambda: _stored(url)["events"] >= distinct, 60, "every event stored")
        assert run.terminate() == 0
    finally:
        run.stop_quietly()
    final = _stored(url)
    print(
        f"\nSIGTERM {moment} ({size} messages): stopped in {stopped:.1f} s with "
        f"{after_stop['events']} of {distinct} events committed and {left} messages left "
        f"in the queue; after the next run {final}"
    )
    assert stopped < 5
    assert final == {"events": distinct, "distinct_keys": distinct, "quarantined": 0}
    assert broker.queue_depth() == 0
    projects = workload.project_ids(messages)
    open_database(url, migrate=False)
    ledger = workload.ledger(projects)
    close_database()
    open_database(f"sqlite:///{tmp_path / 'reference.db'}")
    workload.feed(messages)
    assert ledger == workload.ledger(projects)
    close_database()
