"""A real Keystone for the tests: SQLite, fernet tokens, served on 127.0.0.1 in a subprocess.

Needs the `keystone` package importable (it is in the `test` extra); installs nothing.

`keystone_server` is a session-scoped fixture. It writes a keystone.conf in a temporary
directory, runs `keystone-manage db_sync`, `fernet_setup`, `credential_setup` and
`bootstrap`, then serves keystone's WSGI application on a free loopback port in a child
process (keystone's global oslo.config state stays out of the test process), and creates:

- `admin` / `admin` project / `admin` role (bootstrap);
- `rintik` in project `service` with the `admin` role: the service user rintik-lite validates
  tokens with (reading any project's name needs `admin`, as for nova's service user);
- `demo` in project `demo` with the `member` role only, to test the role check.

Every request the server receives is appended to `access.log` ("GET /v3/auth/tokens"),
so a test can count the calls that really reached Keystone.

Run by hand to poke at it: `python tests/keystone_server.py` (Ctrl-C stops it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

HOST = "127.0.0.1"
START_SECONDS = 60.0
ADMIN_PASSWORD = "admin-secret-0"  # a throwaway server on loopback
SERVICE_PASSWORD = "rintik-secret-1"
MEMBER_PASSWORD = "demo-secret-2"

CONF = """\
[DEFAULT]
log_dir = {tmp}
log_file = keystone.log
use_stderr = false

[database]
connection = sqlite:///{tmp}/keystone.db

[token]
provider = fernet
expiration = 3600

[fernet_tokens]
key_repository = {tmp}/fernet-keys

[fernet_receipts]
key_repository = {tmp}/fernet-receipts

[credential]
key_repository = {tmp}/credential-keys

[identity]
# bcrypt's minimum cost: every authentication hashes a password, and the tests
# authenticate often.
password_hash_rounds = 4

[cache]
# Keystone's own cache, in its process: without it every validation costs ~1 s of SQL.
enabled = true
backend = dogpile.cache.memory
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class KeystoneServer:
    """A running Keystone: its URL, its users, and a way to read its access log."""

    url: str  # http://127.0.0.1:<port>/v3
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    admin_token: str = ""
    project_ids: dict[str, str] = field(default_factory=dict)
    expiries: dict[str, datetime] = field(default_factory=dict)

    admin = ("admin", ADMIN_PASSWORD, "admin")
    service = ("rintik", SERVICE_PASSWORD, "service")
    member = ("demo", MEMBER_PASSWORD, "demo")

    @property
    def access_log(self) -> Path:
        return self.directory / "access.log"

    def requests_seen(self, method: str, path: str) -> int:
        """How many `method path` requests Keystone has answered so far (query ignored)."""
        count = 0
        for line in self.access_log.read_text().splitlines():
            seen_method, _, rest = line.partition(" ")
            seen_path = rest.split(" ", 1)[0].split("?", 1)[0]
            count += seen_method == method and seen_path == path
        return count

    def issue_token(self, user: tuple[str, str, str]) -> str:
        """A fresh project-scoped token for `user` (name, password, project name)."""
        name, password, project = user
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": name, "domain": {"id": "default"}, "password": password}
                    },
                },
                "scope": {"project": {"name": project, "domain": {"id": "default"}}},
            }
        }
        response = requests.post(f"{self.url}/auth/tokens?nocatalog", json=body, timeout=30)
        response.raise_for_status()
        token = response.headers["X-Subject-Token"]
        self.expiries[token] = datetime.fromisoformat(response.json()["token"]["expires_at"])
        return token

    def token_expiry(self, token: str) -> datetime:
        """The `expires_at` Keystone gave `token` when it issued it."""
        return self.expiries[token]

    def revoke_token(self, token: str) -> None:
        """DELETE /v3/auth/tokens: Keystone refuses `token` from now on."""
        response = requests.delete(
            f"{self.url}/auth/tokens",
            headers={"X-Auth-Token": self.admin_token, "X-Subject-Token": token},
            timeout=30,
        )
        response.raise_for_status()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.request(
            method,
            f"{self.url}{path}",
            json=body,
            headers={"X-Auth-Token": self.admin_token},
            timeout=30,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def _role_id(self, name: str) -> str:
        roles = self._call("GET", f"/roles?name={name}")["roles"]
        return str(roles[0]["id"])

    def _add_user(self, name: str, password: str, project: str, role: str) -> None:
        """Create project (unless it exists) and user, and grant the role on the project."""
        if project not in self.project_ids:
            created = self._call(
                "POST", "/projects", {"project": {"name": project, "domain_id": "default"}}
            )
            self.project_ids[project] = created["project"]["id"]
        project_id = self.project_ids[project]
        user = self._call(
            "POST",
            "/users",
            {
                "user": {
                    "name": name,
                    "password": password,
                    "domain_id": "default",
                    "default_project_id": project_id,
                }
            },
        )["user"]
        role_id = self._role_id(role)
        self._call("PUT", f"/projects/{project_id}/users/{user['id']}/roles/{role_id}")

    def populate(self) -> None:
        self.admin_token = self.issue_token(self.admin)
        self.project_ids["admin"] = self._call("GET", "/projects?name=admin")["projects"][0]["id"]
        self._add_user(*self.service, role="admin")
        self._add_user(*self.member, role="member")

    def stop(self) -> None:
        """Stop the server; safe to call twice."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _manage(conf: Path, *commands: list[str], env: dict[str, str] | None = None) -> None:
    """Run `keystone-manage` commands side by side (each is mostly imports: ~3 s of CPU)."""
    manage = str(Path(sys.executable).with_name("keystone-manage"))
    running = [
        (
            args[0],
            subprocess.Popen(
                [manage, "--config-file", str(conf), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
            ),
        )
        for args in commands
    ]
    failures = []
    for name, process in running:
        output, _ = process.communicate(timeout=START_SECONDS)
        if process.returncode != 0:
            tail = "\n".join(output.decode(errors="replace").splitlines()[-20:])
            failures.append(f"keystone-manage {name} failed ({process.returncode}):\n{tail}")
    if failures:
        raise RuntimeError("\n".join(failures))


def _wait_until_up(server: KeystoneServer, deadline: float) -> None:
    assert server.process is not None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = server.directory / "server.log"
            tail = "\n".join(log.read_text().splitlines()[-30:]) if log.exists() else ""
            raise RuntimeError(f"keystone exited with {server.process.returncode}:\n{tail}")
        try:
            if requests.get(server.url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"keystone did not answer on {server.url} within {START_SECONDS:.0f} s")


def start(directory: Path) -> KeystoneServer:
    """Configure, bootstrap and start Keystone in `directory`; the caller must `stop()` it."""
    deadline = time.monotonic() + START_SECONDS
    port = free_port()
    conf = directory / "keystone.conf"
    conf.write_text(CONF.format(tmp=directory))
    owner = ["--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid())]
    _manage(conf, ["db_sync"], ["fernet_setup", *owner], ["credential_setup", *owner])
    url = f"http://{HOST}:{port}/v3"
    server = KeystoneServer(url=url, directory=directory)
    # The server spends its first seconds importing keystone: start it while bootstrap runs.
    with (directory / "server.log").open("wb") as log:
        server.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(directory), str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    bootstrap = ["bootstrap", "--bootstrap-username", "admin"]
    bootstrap += ["--bootstrap-project-name", "admin", "--bootstrap-role-name", "admin"]
    bootstrap += ["--bootstrap-service-name", "keystone", "--bootstrap-region-id", "RegionOne"]
    bootstrap += ["--bootstrap-public-url", url]
    try:
        # The password goes through the environment, not the command line.
        _manage(conf, bootstrap, env={**os.environ, "OS_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD})
        _wait_until_up(server, deadline)
        server.populate()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def keystone_server() -> Iterator[KeystoneServer]:
    """One real Keystone for the whole test session."""
    if shutil.which("keystone-manage", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("keystone is not installed: pip install -e '.[test]'")
    directory = Path(tempfile.mkdtemp(prefix="rintik-keystone-"))
    server = start(directory)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _serve(directory: Path, port: int) -> None:
    """The child process: keystone's WSGI app behind a threaded wsgiref server."""
    import socketserver
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]  # tests/api != api
    os.environ["OS_KEYSTONE_CONFIG_DIR"] = str(directory)
    sys.argv[1:] = []  # keystone parses the command line for its own options
    from keystone.server.wsgi import initialize_public_application

    keystone = initialize_public_application()
    access_log = (directory / "access.log").open("a", buffering=1)
    lock = threading.Lock()

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        # Written before keystone answers, so a client that has its answer sees the line.
        query = environ.get("QUERY_STRING")
        path = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        with lock:
            access_log.write(f"{environ['REQUEST_METHOD']} {path}\n")
        return keystone(environ, start_response)

    class Handler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # the access log is written above; keystone's errors are in keystone.log

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True
        request_queue_size = 128

    httpd = make_server(HOST, port, application, server_class=Server, handler_class=Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    parent = os.getppid()

    def exit_with_parent() -> None:  # a killed test run leaves no server behind
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        _serve(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        with tempfile.TemporaryDirectory(prefix="rintik-keystone-") as tmp:
            running = start(Path(tmp))
            print(f"Keystone on {running.url}; admin password {ADMIN_PASSWORD}", flush=True)
            try:
                assert running.process is not None
                running.process.wait()
            except KeyboardInterrupt:
                pass
            finally:
                running.stop()
