#!/usr/bin/env bash
# A local PostgreSQL server for the shared-study test (tests/test_search.py), from Debian's packages:
#   bash tools/postgres.sh        (as root; prints the export line for the tests)
# Installs postgresql if missing, starts the cluster, creates role and database `digits`.
set -euo pipefail
# stdout carries only the export line (callers eval it); everything else goes to stderr, e.g.
# pg_ctlcluster's "Removed stale pid file" on a fresh machine, which broke CI's eval once.
exec 3>&1 1>&2
if ! command -v pg_ctlcluster >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -n | tail -1)
pg_ctlcluster "$version" main status >/dev/null 2>&1 || pg_ctlcluster "$version" main start 3>&-  # the server must not hold the caller's pipe open
as_postgres() { su postgres -c "$1" 3>&-; }
as_postgres "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='digits'\"" | grep -q 1 \
  || as_postgres "psql -qc \"CREATE ROLE digits LOGIN PASSWORD 'digits'\""
as_postgres "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='digits'\"" | grep -q 1 \
  || as_postgres "createdb -O digits digits"
echo "export DIGITS_TEST_POSTGRES=postgresql://digits:digits@127.0.0.1:5432/digits" >&3
