"""packaging/: the systemd units pass `systemd-analyze verify`, the logging sample loads, the
container files hang together, and a wheel built with `python -m build` carries the TUI
styles and the invoice template and installs."""

from __future__ import annotations

import logging.config
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

PACKAGING = ROOT / "packaging"
UNITS = [
    "rintik-lite.service",
    "rintik-lite-invoice-close.service",
    "rintik-lite-invoice-close.timer",
]
EXECUTABLE = "/opt/rintik-lite/bin/rintik-lite"  # where the units expect the venv


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """Verified exactly as shipped, in a scratch root holding systemd's own units and an
    executable where ExecStart= looks for rintik-lite (verify checks that it exists)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd")
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(PACKAGING / unit, units / unit)
    fake = root / EXECUTABLE.lstrip("/")
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    done = subprocess.run(
        [analyze, "verify", f"--root={root}", *UNITS],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    for unit in UNITS[:2]:
        text = (PACKAGING / unit).read_text()
        assert f"ExecStart={EXECUTABLE} " in text
        for option in ("User=rintik-lite", "StateDirectory=rintik-lite", "ProtectSystem=strict"):
            assert option in text, (unit, option)


def test_the_logging_sample_loads() -> None:
    logging.config.fileConfig(PACKAGING / "logging.ini", disable_existing_loggers=False)
    try:
        handler = logging.getLogger().handlers[0]
        assert handler.formatter is not None
        assert logging.getLogger("rintik_lite.services").level == logging.INFO
    finally:
        for handler in logging.getLogger().handlers[:]:
            logging.getLogger().removeHandler(handler)


def test_the_container_files_agree() -> None:
    compose = yaml.safe_load((PACKAGING / "compose.yaml").read_text())
    service = compose["services"]["rintik-lite"]
    assert service["build"] == {"context": "..", "dockerfile": "packaging/Containerfile"}
    assert "rabbitmq" in service["depends_on"]
    assert service["environment"]["RINTIK_BROKER_URL"].startswith("amqp://rintik:")
    assert "rintik-data:/var/lib/rintik-lite" in service["volumes"]
    containerfile = (PACKAGING / "Containerfile").read_text()
    assert 'ENTRYPOINT ["rintik-lite"]' in containerfile
    assert "EXPOSE 8182" in containerfile
    assert "COPY pyproject.toml README.md ./" in containerfile
    assert "COPY rintik_lite ./rintik_lite" in containerfile
    ignored = (PACKAGING / "Containerfile.dockerignore").read_text().split()
    assert {"!pyproject.toml", "!README.md", "!rintik_lite/"} <= set(ignored)


@pytest.mark.slow
def test_a_wheel_built_with_python_m_build_installs_with_its_data_files(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: the build must not write into the shared tree
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "rintik_lite", source / "rintik_lite", ignore=shutil.ignore_patterns("__pycache__")
    )
    styles = sorted(p.name for p in (ROOT / "rintik_lite/tui").glob("*.tcss"))
    assert styles, "the TUI has no .tcss styles"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("rintik_lite-*.whl")
    members = set(zipfile.ZipFile(wheel).namelist())
    assert "rintik_lite/templates/invoice.html" in members
    assert "rintik_lite/py.typed" in members
    for style in styles:
        assert f"rintik_lite/tui/{style}" in members
    # installed beside the test environment's dependencies, it runs and finds its files
    target = tmp_path / "site"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    env = {**os.environ, "PYTHONPATH": str(target)}
    check = (
        "import importlib.resources as r, rintik_lite; print(rintik_lite.__file__); "
        "print(r.files('rintik_lite').joinpath('templates/invoice.html').is_file())"
    )
    shown = subprocess.run(
        [sys.executable, "-c", check],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    where, found = shown.stdout.split()
    assert (where.startswith(str(target)), found) == (True, "True"), shown.stderr
    version = subprocess.run(
        [str(target / "bin" / "rintik-lite"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert version.stdout.startswith("rintik-lite "), version.stderr
