#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs RabbitMQ and PostgreSQL (Debian
# packages) when they are missing, starts them when they are stopped, installs rintik-lite
# with its test extra into ./.venv, then runs ruff, mypy and pytest (SQLite and PostgreSQL).
# Loopback only. Fails, never skips, when a service cannot be reached.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || missing+=(rabbitmq-server)
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
export PATH="$PATH:/usr/sbin:/usr/lib/rabbitmq/bin"

wait_until() {  # wait_until SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2; shift 2
    for _ in $(seq "$seconds"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
    echo "error: $what did not come up within ${seconds}s" >&2; exit 1
}

if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
    say "starting RabbitMQ"
    as_root rabbitmq-server -detached
    wait_until 90 "RabbitMQ" rabbitmq-diagnostics -q ping
fi

cluster=$(ls /etc/postgresql | sort -V | tail -n 1)
if ! pg_isready -h 127.0.0.1 -q; then
    say "starting PostgreSQL $cluster"
    as_root pg_ctlcluster --skip-systemctl-redirect "$cluster" main start
    wait_until 60 "PostgreSQL" pg_isready -h 127.0.0.1 -q
fi
# Our own role and database, made over the local socket as the postgres superuser, so the
# tests log in with a password whatever pg_hba.conf says for 127.0.0.1 (trust or scram).
as_root runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d postgres <<'SQL' >/dev/null
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rintik') THEN
    CREATE ROLE rintik LOGIN PASSWORD 'rintik';
  END IF;
END $$;
SELECT 'CREATE DATABASE rintik_test OWNER rintik'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'rintik_test') \gexec
SQL
export RINTIK_TEST_POSTGRES_URL="postgresql://rintik:rintik@127.0.0.1:5432/rintik_test"
export RINTIK_TEST_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//"

say "installing rintik-lite[test] into .venv"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q '.[test]'

say "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
say "mypy"
.venv/bin/mypy rintik_lite
say "pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
