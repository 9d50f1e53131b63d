"""The README's quick start, run as written.

Its ```sh blocks under "## Quick start" run in order, with bash, in a copy of the source
tree (pyproject.toml, README.md, rintik_lite/: what `pip install .` reads), so the fresh
virtualenv and the demo's files land in a scratch folder. The first block installs
rintik-lite and starts the demo, which runs until Ctrl-C: it runs in the background, and
the other blocks run while it serves; then Ctrl-C stops it. `RINTIK_API_PORT` points the
demo at a free port in case 8182 is taken; the port in the other blocks' URLs follows it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_cli import free_port

INSTALL_SECONDS = 600  # a fresh virtualenv with every dependency, from the package index
READY_SECONDS = 60  # the "within a minute", once installed


def quick_start_blocks(readme: str) -> list[str]:
    """The ```sh blocks of the "## Quick start" section, in order."""
    _, found, rest = readme.partition("\n## Quick start\n")
    assert found, 'the README has no "## Quick start" section'
    section = rest.split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    # The second of the two set-up commands runs this very test suite: not from inside it.
    return [b for b in blocks if "tests/run.sh" not in b]


def commands(block: str) -> list[str]:
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_quick_start_installs_then_runs_the_demo() -> None:
    blocks = quick_start_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 2
    (first,) = commands(blocks[0])
    assert "pip install ." in first and first.endswith("rintik-lite demo")


def run_quick_start(readme: str, tmp_path: Path) -> None:
    tree = tmp_path / "rintik-lite"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(
        ROOT / "rintik_lite", tree / "rintik_lite", ignore=shutil.ignore_patterns("__pycache__")
    )
    blocks = quick_start_blocks(readme)
    assert commands(blocks[0])[-1].endswith("rintik-lite demo"), blocks[0]  # fail fast
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RINTIK_", "VIRTUAL_ENV"))},
        "RINTIK_API_PORT": str(port),
    }
    process = subprocess.Popen(
        ["bash", "-c", blocks[0]],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Ctrl-C goes to the whole command line
    )
    lines: list[tuple[float, str]] = []
    assert process.stdout is not None
    stream = process.stdout
    threading.Thread(
        target=lambda: lines.extend((time.monotonic(), line) for line in stream),
        daemon=True,
    ).start()

    def printed(text: str, seconds: float) -> float:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for at, line in list(lines):
                if text in line:
                    return at
            if process.poll() is not None:
                break
            time.sleep(0.2)
        output = "".join(line for _, line in lines)
        raise AssertionError(f"{text!r} not printed: {output[-5000:]}")

    try:
        began = printed("rintik-lite demo, seed", INSTALL_SECONDS)
        ready = printed("live events every few seconds", READY_SECONDS) - began
        assert ready < READY_SECONDS
        for block in blocks[1:]:
            for command in commands(block):
                done = subprocess.run(
                    ["bash", "-c", command.replace(":8182", f":{port}")],
                    cwd=tree,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                assert done.returncode == 0, (command, done.stderr)
                assert done.stdout.strip(), command
                if command.startswith("curl"):
                    assert '"project_name":"acme-web"' in done.stdout
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            code = process.wait(30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    output = "".join(line for _, line in lines)
    assert code == 0, output[-5000:]
    assert "stopped; the data stays in the database" in output


@pytest.mark.slow
def test_the_quick_start_commands_work(tmp_path: Path) -> None:
    run_quick_start((ROOT / "README.md").read_text(), tmp_path)


def test_the_readme_opens_with_the_two_set_up_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text()
    _, _, rest = readme.partition("\n## Quick start\n")
    blocks = re.findall(r"^```sh\n(.*?)^```", rest.split("\n## ", 1)[0], re.MULTILINE | re.DOTALL)
    assert [commands(b) for b in blocks[:2]] == [
        ["python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/rintik-lite demo"],
        ["bash tests/run.sh"],
    ]
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci == ["bash tests/run.sh"]


def test_every_test_the_readme_names_exists() -> None:
    """The promises name their proofs; a renamed or deleted test must not leave a dangling
    name behind."""
    readme = (ROOT / "README.md").read_text()
    named: list[tuple[str, str]] = []
    for match in re.finditer(r"`(tests/[\w/]+\.py)?((?:::\w+)?)`", readme):
        path, name = match.group(1), match.group(2).lstrip(":")
        if path:
            current = path
        if name:
            named.append((current, name))
    assert len(named) >= 20
    for path, name in named:
        source = (ROOT / path).read_text()
        assert re.search(rf"^(async )?def {name}\(", source, re.MULTILINE), f"{path}::{name}"
