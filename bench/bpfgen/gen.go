// Package bpfgen holds the benchmark's own BPF objects: the empty programs
// that set the floor (on the allocation hooks, and on the stall families'
// hooks), and the burst injector. Generated like internal/probe/loader's
// (clang-19 pinned) and committed; scripts/bench.sh regenerates them when
// clang-19 is present so the injector follows changes to bpf/alloc.c.
package bpfgen

//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target amd64,arm64 empty ../bpf/bench_empty.c -- -I../../bpf/include -I../../bpf
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target amd64,arm64 stallempty ../bpf/bench_stall_empty.c -- -I../../bpf/include -I../../bpf
//go:generate go tool bpf2go -cc ${BPF_CLANG} -cflags ${BPF_CFLAGS} -target amd64,arm64 burst ../bpf/bench_burst.c -- -I../../bpf/include -I../../bpf
