#!/usr/bin/env bash
# Start a PostgreSQL server on loopback for the store's tests and print the admin URL they take
# (`export L1_TEST_POSTGRES=$(scripts/start-postgres.sh)`). Uses Debian's `postgresql` package
# (installed when missing; needs root) and its default cluster; idempotent: a running server is
# reused. The role `l1` (password `l1`, superuser: the tests create and drop databases) is
# created once.
set -euo pipefail
log() { echo "start-postgres: $*" >&2; }
if ! command -v pg_lsclusters >/dev/null; then
    [ "$(id -u)" = 0 ] || { log "postgresql is not installed and installing it needs root"; exit 1; }
    log "installing Debian's postgresql"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
fi
version=$(pg_lsclusters -h | awk 'NR==1 {print $1}')
if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    log "creating cluster $version/main"
    pg_createcluster "$version" main >&2
fi
status=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}')
if [ "$status" != online ]; then
    log "starting cluster $version/main"
    pg_ctlcluster "$version" main start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
for _ in $(seq 1 30); do
    su postgres -c "psql -p $port -Atqc 'select 1'" >/dev/null 2>&1 && break
    sleep 1
done
su postgres -c "psql -p $port -Atqc \"select 1 from pg_roles where rolname = 'l1'\"" | grep -q 1 \
    || su postgres -c "psql -p $port -qc \"create role l1 login superuser password 'l1'\"" >&2
log "PostgreSQL $version on 127.0.0.1:$port"
echo "postgres://l1:l1@127.0.0.1:$port/postgres"
