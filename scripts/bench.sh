#!/usr/bin/env bash
# make bench: memtrace side by side with an empty-program floor, bpftrace
# and bcc (docs/benchmarks.md). Installs what is missing from Debian's
# packages, builds the tools, and hands over to bench/cmd/benchrun, which
# orchestrates, measures and writes docs/bench/{results.csv,summary.md}.
# BENCH_QUICK=1: a ~2-minute smoke test written to bin/bench-quick instead.
# Extra arguments, and BENCH_ARGS, go to benchrun (e.g. -phases startup,kcost).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench: needs root (BPF programs, tracefs, BPF stats): sudo make bench" >&2
	exit 1
fi

need=()
command -v bpftrace >/dev/null || need+=(bpftrace)
command -v trace-bpfcc >/dev/null || need+=(bpfcc-tools)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
# bcc compiles against kernel headers; kernels without their own get
# Debian's, which benchrun merges into a scratch tree (BCC_KERNEL_SOURCE).
if [ ! -e "/lib/modules/$(uname -r)/build" ] && [ ! -e /sys/kernel/kheaders.tar.xz ] &&
	! ls -d /usr/src/linux-headers-*-common >/dev/null 2>&1; then
	need+=(linux-headers-$(dpkg --print-architecture))
fi
if [ ${#need[@]} -gt 0 ]; then
	echo "bench: installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
	# Debian's postgresql package creates and starts a main cluster; the
	# benchmark runs its own server, so stop any the install started.
	if [[ " ${need[*]} " == *" postgresql "* ]] && command -v pg_lsclusters >/dev/null; then
		pg_lsclusters -h | awk '$4 == "online" {print $1, $2}' | while read -r ver name; do
			pg_ctlcluster "$ver" "$name" stop || true
		done
	fi
fi

# The benchmark's BPF objects follow bpf/alloc.c (the burst injector
# compiles memtrace's own failure path); regenerate when the pinned
# compiler is here, else use the committed ones.
if command -v "${BPF_CLANG:-clang-19}" >/dev/null; then
	(cd bench/bpfgen && BPF_CLANG="${BPF_CLANG:-clang-19}" BPF_CFLAGS="${BPF_CFLAGS:--O2 -g -Wall -Werror}" \
		BPF2GO_STRIP="${BPF_STRIP:-llvm-strip-19}" go generate ./...)
fi

# Static, as `make build` builds memtrace; the floor too, so that it stays
# a floor for memtrace's start-up and memory.
export CGO_ENABLED=0
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
go build -ldflags "-X main.version=$version" -o bin/memtrace ./cmd/memtrace
for t in floor pagetouch benchrun; do
	go build -o "bin/$t" "./bench/cmd/$t"
done

args=()
if [ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ]; then
	args+=(-quick -out bin/bench-quick)
fi
# A private mount namespace: the run mounts tracefs there if the host has
# not, and neither sees nor disturbs mounts made by anything else meanwhile.
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
exec unshare --mount --propagation private bin/benchrun "${args[@]}" ${BENCH_ARGS:-} "$@"
