"""The Almanach list routes keep their encoded answers only while nothing is committed: every
answer equals the one computed anew, whichever connection, thread or process wrote."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from webtest import TestApp

from rintik_lite import services
from rintik_lite.api.almanach import INTERVAL_LISTS
from rintik_lite.api.errors import json_text
from rintik_lite.db import close_database
from tests.api.test_almanach import P1, H, create_instance, make_app, qs
from tests.conftest import envelope, record, reset_postgres
from tests.test_services import instance

P2 = "0f2c6b1e5a8d4c3b9e7f6a5d4c3b2a10"


def fresh(project: str, start: str | None, end: str | None = None) -> bytes:
    """The answer computed anew, without the routes (and so without what they keep)."""
    from rintik_lite.api.errors import read_date

    window = [read_date(start, "start") if start else None, read_date(end, "end") if end else None]
    return json_text(services.usage(project, *window)).encode()


def other_project(instance_id: str, hours: float) -> dict[str, Any]:
    message = instance("create.end", hours, instance_id=instance_id, launched=hours)
    message["payload"]["tenant_id"] = P2
    return message


def entities(app: TestApp, project: str = P1, start: str = qs(0), end: str | None = None) -> bytes:
    query = f"start={start}" + (f"&end={end}" if end else "")
    response = app.get(f"/v1/project/{project}/entities?{query}", headers=H, status=200)
    assert response.content_type == "application/json"
    return bytes(response.body)


def in_another_thread(*messages: dict[str, Any]) -> None:
    """Commit through another connection of this process (peewee: one per thread)."""
    failure: list[BaseException] = []

    def write() -> None:
        try:
            record(*messages)
        except BaseException as exc:  # pragma: no cover - reported below
            failure.append(exc)
        finally:
            close_database()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(30)
    assert not failure, failure


def in_another_process(db_url: str, tmp_path: Path, *messages: dict[str, Any]) -> None:
    path = tmp_path / f"more-{random.random()}.jsonl"
    path.write_text("".join(envelope(m) + "\n" for m in messages))
    done = subprocess.run(
        [sys.executable, "-m", "rintik_lite", "replay", str(path), "--json"],
        env={**os.environ, "RINTIK_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["applied"] == len(messages)


def test_a_list_is_answered_again_until_anything_is_committed(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = make_app(sqlite_url)
    record(instance("create.end", 0, launched=0))
    first = entities(app)
    hits = INTERVAL_LISTS.hits
    assert entities(app) == first == fresh(P1, qs(0))
    assert INTERVAL_LISTS.hits == hits + 1  # answered again, without reading

    # another connection of this process commits: the next answer is read anew
    in_another_thread(instance("resize.confirm.end", 5, flavor="m1.large", launched=5))
    second = entities(app)
    assert second != first and second == fresh(P1, qs(0))
    assert INTERVAL_LISTS.hits == hits + 1
    assert [r["flavor"] for r in json.loads(second)] == ["m1.small", "m1.large"]

    # the API's own connection commits (Almanach's create)
    create_instance(app, "i-2", hours=7)
    third = entities(app)
    assert third == fresh(P1, qs(0)) and len(json.loads(third)) == 3

    # another process commits
    assert entities(app) == third and INTERVAL_LISTS.hits == hits + 2
    in_another_process(sqlite_url, tmp_path, instance("delete.end", 9, deleted=9, launched=5))
    fourth = entities(app)
    assert fourth != third and fourth == fresh(P1, qs(0))
    assert [r["end"] for r in json.loads(fourth) if r["entity_id"] == "i-1"][-1] is not None


def test_each_question_has_its_own_answer(sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    record(
        instance("create.end", 0, launched=0),
        instance("resize.confirm.end", 10, flavor="m1.large", launched=10),
        other_project("i-9", 3),
    )
    asked = [(P1, qs(0), None), (P1, qs(11), None), (P1, qs(0), qs(5)), (P2, qs(0), None)]
    answers = [entities(app, p, s, e) for p, s, e in asked]
    assert len(set(answers)) == len(asked)
    hits = INTERVAL_LISTS.hits
    again = [entities(app, p, s, e) for p, s, e in asked]
    assert again == answers == [fresh(p, s, e) for p, s, e in asked]
    assert INTERVAL_LISTS.hits == hits + len(asked)
    instances = app.get(f"/v1/project/{P1}/instances?start={qs(0)}", headers=H).body
    volumes = app.get(f"/v1/project/{P1}/volumes?start={qs(0)}", headers=H).body
    assert json.loads(volumes) == [] and len(json.loads(instances)) == 2


def test_random_reads_and_writes_always_give_the_fresh_answer(sqlite_url: str) -> None:
    """Reads of random windows between commits from this and other connections."""
    app = make_app(sqlite_url)
    rng = random.Random(7)
    record(instance("create.end", 0, launched=0))
    hits = INTERVAL_LISTS.hits
    flavor, hour = "m1.small", 1
    for _ in range(60):
        action = rng.random()
        if action < 0.2:
            hour += rng.randint(1, 5)
            flavor = rng.choice(["m1.small", "m1.large", "m1.xlarge"])
            message = instance("resize.confirm.end", hour, flavor=flavor, launched=hour)
            in_another_thread(message) if rng.random() < 0.5 else record(message)
        else:
            start = qs(rng.choice([0, 2, 6, 20]))
            end = rng.choice([None, qs(30), qs(400)])
            assert entities(app, P1, start, end) == fresh(P1, start, end)
    assert INTERVAL_LISTS.hits > hits  # the kept answers were used


def test_on_postgresql_nothing_is_kept() -> None:
    from rintik_lite.db import open_database

    url = reset_postgres()
    open_database(url)
    try:
        app = make_app(url)
        record(instance("create.end", 0, launched=0))
        hits = INTERVAL_LISTS.hits
        first = entities(app)
        assert entities(app) == first == fresh(P1, qs(0))
        assert INTERVAL_LISTS.hits == hits  # read anew each time
        in_another_thread(instance("resize.confirm.end", 5, flavor="m1.large", launched=5))
        assert entities(app) == fresh(P1, qs(0)) != first
    finally:
        close_database()
