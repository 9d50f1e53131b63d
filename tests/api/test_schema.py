"""schemathesis against a live server, from the OpenAPI document it serves: no 5xx, every
response conforms to the schema (status, content type, body), invalid input is refused,
auth is enforced. Bounded and seeded: a run of the 70 operations takes about a minute
(well under 150 seconds on a loaded two-core machine).

`positive_data_acceptance` is left out on purpose: the schema cannot say that 2026-02-30 is
not a date, that `end` must follow `start`, or that an id already names another resource
type, so schema-valid requests can rightly get a 400.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rintik_lite.api import create_app
from rintik_lite.api.server import ApiServer
from tests.conftest import settings_for

TOKEN = "schema-token-7a0c"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES = 10  # per operation, in the fuzzing phase
SEED = 20261121
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance,negative_data_rejection,"
    "missing_required_header,ignored_auth,use_after_free,ensure_resource_availability"
)


@pytest.fixture
def server(db_url: str) -> Iterator[ApiServer]:
    api = ApiServer(create_app(settings_for(db_url, auth__private_key=TOKEN)), "127.0.0.1", 0)
    api.start()
    yield api
    api.stop()


@pytest.mark.slow
def test_schemathesis_finds_nothing(server: ApiServer, tmp_path: Path) -> None:
    if not SCHEMATHESIS.exists():
        pytest.fail("schemathesis is not installed: pip install -e '.[test]'")
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{server.url}/openapi.json",
        "--header",
        f"X-Auth-Token: {TOKEN}",
        "--checks",
        CHECKS,
        "--phases",
        "coverage,fuzzing,stateful",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--no-color",
    ]
    # Bounded by the timeout, not by an assertion on its speed: speed lives in bench/.
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "Tested: 70" in output, output[-3000:]
