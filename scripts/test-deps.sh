#!/usr/bin/env bash
# Installs the programs the test suite drives for real, so that `make test`
# passes on a fresh machine as it is: Debian's prometheus (memtrace serve
# scraped by a real Prometheus), postgresql (memtrace verify of a real
# database start) and chromium (memtrace report's page opened headless,
# offline, in a real browser). Only as root on a Debian-like host with apt-get; anywhere
# else it says what is missing and the tests that need it fail with the
# same hint. Nothing is started: a service the package starts is stopped.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
# Debian keeps pg_ctl off PATH, under /usr/lib/postgresql/<version>/bin.
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || command -v pg_ctl >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
((${#need[@]})) || exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: missing ${need[*]} (not root, or no apt-get: install them to run every test)" >&2
	exit 0
fi
echo "== test-deps: installing ${need[*]}"
running_before=$(pgrep -x prometheus || true)
pg_before=$(pgrep -x postgres || true)
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Only the binaries are wanted: where an init system let the packages start
# their services, stop them again, nothing may keep running.
if [ -z "$running_before" ] && pgrep -x prometheus >/dev/null; then
	invoke-rc.d prometheus stop >/dev/null 2>&1 || systemctl stop prometheus >/dev/null 2>&1 || true
fi
if [ -z "$pg_before" ] && pgrep -x postgres >/dev/null; then
	invoke-rc.d postgresql stop >/dev/null 2>&1 || systemctl stop postgresql >/dev/null 2>&1 || true
fi
