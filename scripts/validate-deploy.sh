#!/usr/bin/env bash
# Validates memtrace's deployment files with the official tools, offline
# once installed (run as root on a machine that reaches Debian's packages,
# npm and the Go module proxy; it installs what is missing):
#
#   - the Prometheus alert rules: promtool check rules, and their unit
#     tests with promtool test rules (promtool comes with Debian's
#     prometheus package, which also gives the end-to-end test of memtrace
#     serve its real Prometheus server);
#   - the Kubernetes manifests against the API's schemas (npm
#     kubernetes-models and @kubernetes-models/prometheus-operator, whose
#     compiled schemas ship in the packages) and strictly against the API's
#     Go types (unknown fields are errors), and the kustomization;
#   - the container image's binary: built as deploy/Dockerfile builds it,
#     it must be static;
#   - the systemd unit of the flight recorder: systemd-analyze verify, with
#     that binary in place of /usr/local/bin/memtrace.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export PATH="$PATH:/usr/local/go/bin"

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v readelf >/dev/null 2>&1 || need+=(binutils)
if ((${#need[@]})); then
	echo "== installing ${need[*]}"
	running_before=$(pgrep -x prometheus || true)
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	# Only the binaries are wanted. Where an init system lets the package
	# start its service, stop it again: nothing may keep running.
	if [ -z "$running_before" ] && pgrep -x prometheus >/dev/null; then
		invoke-rc.d prometheus stop >/dev/null 2>&1 || systemctl stop prometheus >/dev/null 2>&1 || true
	fi
fi
promtool --version 2>&1 | head -n1
node --version

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== promtool check rules"
promtool check rules deploy/prometheus/rules.yaml
echo "== promtool test rules"
(cd deploy/prometheus && promtool test rules rules_test.yaml)

echo "== Kubernetes manifests against the API schemas (kubernetes-models)"
cp deploy/validate/package.json deploy/validate/package-lock.json deploy/validate/validate.mjs "$tmp/"
(cd "$tmp" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
node "$tmp/validate.mjs" deploy/kubernetes/*.yaml

echo "== Kubernetes manifests strictly against the API's Go types"
(cd deploy/validate/strict && go run . ../../kubernetes/*.yaml)

echo "== kustomization lists every manifest"
for f in deploy/kubernetes/*.yaml; do
	name=$(basename "$f")
	[ "$name" = kustomization.yaml ] && continue
	if ! grep -qE "^  - $name\$" deploy/kubernetes/kustomization.yaml; then
		echo "deploy/kubernetes/kustomization.yaml does not list $name" >&2
		exit 1
	fi
done
echo "ok"

echo "== static binary, built as deploy/Dockerfile builds it"
grep -q 'CGO_ENABLED=0' deploy/Dockerfile
grep -q 'GOARCH=${TARGETARCH}' deploy/Dockerfile
for arch in amd64 arm64; do
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags "-s -w -X main.version=validate" -o "$tmp/memtrace-$arch" ./cmd/memtrace
	if readelf -l "$tmp/memtrace-$arch" | grep -q INTERP; then
		echo "the image's $arch binary is dynamically linked: it would not run in the scratch image" >&2
		exit 1
	fi
done
"$tmp/memtrace-$(go env GOARCH)" version
echo "== systemd unit (systemd-analyze verify)"
if command -v systemd-analyze >/dev/null 2>&1; then
	sed "s|/usr/local/bin/memtrace|$tmp/memtrace-$(go env GOARCH)|" deploy/systemd/memtrace-record.service >"$tmp/memtrace-record.service"
	out=$(systemd-analyze verify "$tmp/memtrace-record.service" 2>&1) || { echo "$out" >&2; exit 1; }
	if [ -n "$out" ]; then
		echo "$out" >&2
		exit 1
	fi
	echo ok
else
	echo "systemd-analyze missing: the unit is not checked" >&2
fi
echo "== deployment files valid"
