"""Scale-out: two `run` processes on one PostgreSQL database, competing consumers of one
queue, give exactly the ledger that one process gives; only one of them closes invoices."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rintik_lite import invoices
from rintik_lite.db import close_database, open_database
from rintik_lite.models import Invoice
from rintik_lite.scheduler import LeaderLock
from tests.conftest import SCHEMA, Broker, reset_postgres, settings_for
from tests.faults import workload
from tests.faults.harness import RunProcess, declare, free_port, publish_all, wait_for, write_config


def _pair(
    tmp_path: Path, broker: Broker, url: str, sections: dict[str, dict[str, object]]
) -> list[RunProcess]:
    runs = []
    for name in ("a", "b"):
        port = free_port()
        config = write_config(tmp_path / f"{name}.toml", broker, url, port, sections)
        runs.append(RunProcess(config, port, name=f"run {name}"))
    return runs


def _event_count(url: str) -> int:
    open_database(url, migrate=False)
    try:
        return workload.counts()["events"]
    finally:
        close_database()


@pytest.mark.slow
def test_two_processes_give_the_ledger_of_one_and_close_invoices_once(
    tmp_path: Path, broker: Broker
) -> None:
    messages = workload.stream(total=3000, instances=60, volumes=30, projects=5, seed=2)
    distinct = workload.distinct(messages)
    projects = workload.project_ids(messages)
    url = reset_postgres()  # empty: both processes migrate it at once
    declare(broker)

    # 1. Both consume the queue, small batches so that both fold the same resources.
    runs = _pair(tmp_path, broker, url, {"broker": {"batch_size": 25}})
    try:
        for run in runs:
            run.start(wait=False)
        for run in runs:
            run.wait_for_log("consuming", 60)
        publish_all(broker, messages)
        wait_for(lambda: _event_count(url) >= distinct, 120, "every event stored")
        for run in runs:
            assert run.terminate() == 0
    finally:
        for run in runs:
            run.stop_quietly()
    assert broker.queue_depth() == 0
    shares = [
        sum(
            int(line.split("batch: ")[1].split(" received")[0])
            for line in r.log
            if "batch: " in line
        )
        for r in runs
    ]
    assert all(share > 0 for share in shares), shares  # both consumed
    conflicts = [c for r in runs for c in re.findall(r"cannot commit \d+ messages: (\w+)", r.text)]

    open_database(url)
    scaled = workload.counts()
    scaled_ledger = workload.ledger(projects)
    workload.set_prices()
    close_database()
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    open_database(reference_url)
    workload.feed(messages)
    reference = workload.counts()
    reference_ledger = workload.ledger(projects)
    workload.set_prices()
    now = datetime.now(UTC)
    invoices.close_invoices(None, now, invoices.rules_from(settings_for(reference_url)))
    reference_invoices = workload.closed_invoices()
    close_database()
    print(
        f"\nscale-out: {len(messages)} published, {distinct} distinct; consumed {shares}; "
        f"{len(conflicts)} batches retried after a conflict ({sorted(set(conflicts))}); {scaled}"
    )
    assert scaled == reference == {"events": distinct, "distinct_keys": distinct, "quarantined": 0}
    assert scaled_ledger == reference_ledger

    # 2. Both start again with the scheduler on, when October is due: one closes it.
    runs = _pair(tmp_path, broker, url, {"scheduler": {"enabled": True}})
    try:
        for run in runs:
            run.start(wait=False)
        for run in runs:
            run.wait_for_log("consuming", 60)
        for run in runs:
            wait_for(lambda r=run: "scheduler leader" in r.text or "stands by" in r.text, 30)  # type: ignore[misc]
        leaders = [r for r in runs if "scheduler leader" in r.text]
        assert len(leaders) == 1, [r.text for r in runs]
        leaders[0].wait_for_log("invoices through", 30)
        for run in runs:
            assert run.terminate() == 0
    finally:
        for run in runs:
            run.stop_quietly()
    closing = [line for r in runs for line in r.log if "invoices through" in line]
    assert len(closing) == 1, closing
    standby = next(r for r in runs if r is not leaders[0])
    assert "stands by" in standby.text and "invoices through" not in standby.text

    open_database(url)
    closed = workload.closed_invoices()
    numbers = [row.number for row in Invoice.select().where(Invoice.number.is_null(False))]
    close_database()
    assert sorted(numbers) == list(range(1, len(numbers) + 1))  # gapless, each once
    assert len({(r["project_id"], r["period"]) for r in closed}) == len(closed)
    assert closed == reference_invoices
    assert {r["period"] for r in closed} >= {"2026-10"}


def test_the_leader_lock_is_held_by_one_process_per_schema(tmp_path: Path) -> None:
    """Two processes' locks on one schema: one leads; when it goes, the other takes over.
    A rintik-lite in another schema of the same database leads its own."""
    url = reset_postgres()
    first, second = LeaderLock(url), LeaderLock(url)
    elsewhere = LeaderLock(url.replace(SCHEMA, f"{SCHEMA}_other"))
    try:
        assert first.acquire() is True
        assert second.acquire() is False
        assert first.acquire() is True  # still held, checked on its own connection
        assert elsewhere.acquire() is True
        first.release()  # the leader stops (or its connection is lost)
        assert second.acquire() is True
        assert first.acquire() is False
        assert LeaderLock(f"sqlite:///{tmp_path / 'r.db'}").acquire() is True  # one machine
    finally:
        for lock in (first, second, elsewhere):
            lock.release()
