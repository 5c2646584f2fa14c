# memtrace — `make help` lists the targets.

GO          ?= go
# The compiler is pinned: the committed BPF objects must be reproducible,
# and CI fails when `make generate` changes them.
BPF_CLANG   ?= clang-19
BPF_STRIP   ?= llvm-strip-19
BPF_CFLAGS  ?= -O2 -g -Wall -Werror
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
# `make build GOARCH=arm64` cross-builds (the committed BPF objects cover
# amd64 and arm64) to bin/memtrace-linux-arm64; the native build stays
# bin/memtrace.
HOSTARCH    := $(shell $(GO) env GOHOSTARCH)
GOARCH      ?= $(HOSTARCH)
BIN         ?= $(if $(filter $(HOSTARCH),$(GOARCH)),bin/memtrace,bin/memtrace-linux-$(GOARCH))

.PHONY: help build release generate check-generated vet test test-deps test-unit bench clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Static (no cgo): no dynamic loader or libc to map and relocate at every
# start (-1.4 MB of RSS), as deploy/Dockerfile and test/vm already build.
build: ## build bin/memtrace (needs no clang: BPF objects are committed); GOARCH=arm64: bin/memtrace-linux-arm64
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/memtrace

release: ## dist/: static binaries (amd64, arm64), .deb (.rpm), OCI images FROM scratch (buildah) and their manifest list, SHA256SUMS
	GO=$(GO) VERSION=$(VERSION) bash scripts/release.sh

# internal/probe/loader holds memtrace's objects, bench/bpfgen the benchmark's (its
# burst injector compiles memtrace's failure path, so it must follow it).
generate: ## recompile the BPF programs and regenerate the Go bindings
	for d in internal/probe/loader bench/bpfgen; do \
		(cd $$d && BPF_CLANG=$(BPF_CLANG) BPF_CFLAGS="$(BPF_CFLAGS)" BPF2GO_STRIP=$(BPF_STRIP) $(GO) generate ./...) || exit 1; \
	done

check-generated: generate ## fail if the committed BPF objects differ from a fresh build
	@git diff --exit-code --stat -- internal/probe/loader bench/bpfgen || { echo "generated BPF objects differ from the committed ones: run 'make generate' and commit" >&2; exit 1; }

vet: ## go vet every package, for amd64 and arm64
	GOOS=linux GOARCH=amd64 $(GO) vet ./...
	GOOS=linux GOARCH=arm64 $(GO) vet ./...

# As root on Debian, first installs the programs the tests drive for real
# (Prometheus, PostgreSQL), so a fresh machine passes as it is.
test: vet test-deps ## all tests; as root they load real programs and provoke real kernel events
	$(GO) test -count=1 ./...

test-deps: ## install what the tests drive (prometheus, postgresql, chromium) when root on Debian
	bash scripts/test-deps.sh

test-unit: ## only the tests that need no privileges
	$(GO) test -count=1 -short ./...

.PHONY: test-kernels lab
LABDOCS ?= docs/lab.md
lab: ## the incident lab (root): Debian 12's 6.1 under qemu with 512 MiB: softirq failures on fragmented memory and a SysV segment's page tables, diagnosed by memtrace; writes $(LABDOCS)
	$(GO) run ./test/vm -lab -kernel bookworm:linux-image-amd64 -mem 512 -append "nopti loglevel=5" -timeout 15m -out /var/cache/memtrace-vm/lab -lab-docs $(LABDOCS) $(LABFLAGS)

test-kernels: ## boot Debian 12's 6.1, Debian 11's 5.10 and Debian 13's 6.12 (amd64) and Debian 12's 6.1 (arm64) under qemu: privileged tests and memtrace end to end there and on this host (root)
	$(GO) run ./test/vm $(VMFLAGS)

bench: build ## memtrace beside an empty-program floor, bpftrace and bcc, as root (docs/benchmarks.md); BENCH_QUICK=1: smoke test
	bash scripts/bench.sh

clean: ## remove build output
	rm -rf bin dist
