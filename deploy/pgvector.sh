#!/usr/bin/env bash
# Installs the pgvector extension for the PostgreSQL server in /usr/lib/postgresql/<major> when
# that server lacks it (Debian, as root). Called by deploy/dev.sh; safe to run again.
#
#   deploy/pgvector.sh [MAJOR]     MAJOR defaults to the newest server installed
#
# The distribution's binary package (postgresql-<major>-pgvector) is used wherever apt has one.
# Debian 12 (bookworm) has none for its PostgreSQL 15: then Debian's own pgvector source package
# is fetched from the next release (trixie), using the machine's own Debian mirror with only the
# suite changed, and built against the installed server.
set -euo pipefail

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

major=${1:-$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)}
[ -n "$major" ] || die "no PostgreSQL server under /usr/lib/postgresql"
sharedir=/usr/share/postgresql/$major
[ -f "$sharedir/extension/vector.control" ] && exit 0

[ "$(id -u)" -eq 0 ] || die "pgvector is missing for PostgreSQL $major (run as root: deploy/pgvector.sh)"
export DEBIAN_FRONTEND=noninteractive

if apt-cache show "postgresql-$major-pgvector" >/dev/null 2>&1 \
  || { apt-get update -qq && apt-cache show "postgresql-$major-pgvector" >/dev/null 2>&1; }; then
  log "installing postgresql-$major-pgvector"
  apt-get install -y -qq --no-install-recommends "postgresql-$major-pgvector" >/dev/null
  exit 0
fi

log "building pgvector from Debian's source package for PostgreSQL $major (once per machine)"
apt-get install -y -qq --no-install-recommends "postgresql-server-dev-$major" make gcc >/dev/null

# A throwaway apt configuration whose only source is this machine's Debian mirror, suite trixie.
mirror=$(grep -rhoE '^(URIs:|deb) *[^ ]*' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | awk '{print $NF}' | grep -E '/debian/?$' | head -n 1 || true)
[ -n "$mirror" ] || mirror=$(grep -rhoE 'https?://[^ ]*/debian/?' /etc/apt/sources.list.d/ | head -n 1 || true)
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list*"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/sources.list.d"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$work/sources.list"
opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/sources.list.d"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")
apt-get "${opts[@]}" update -qq
(cd "$work" && apt-get "${opts[@]}" source --download-only -qq pgvector >/dev/null)
orig=$(ls "$work"/pgvector_*.orig.tar.* | head -n 1)
mkdir "$work/src"
tar -xf "$orig" -C "$work/src" --strip-components=1
# OPTFLAGS="": the default adds -march=native, which would tie the build to this CPU.
make -s -C "$work/src" OPTFLAGS="" PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" >/dev/null
make -s -C "$work/src" PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" install >/dev/null
[ -f "$sharedir/extension/vector.control" ] || die "pgvector did not install into $sharedir"
log "pgvector $(sed -n "s/^default_version = '\(.*\)'/\1/p" "$sharedir/extension/vector.control") installed"
