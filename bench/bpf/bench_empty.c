// SPDX-License-Identifier: GPL-2.0
// The benchmark floor: programs that do nothing, on the hooks memtrace
// attaches to. Whatever a BPF tool costs on these hooks beyond this is the
// tool's own work; this much any BPF tool pays for being there at all.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

// The hot hook: fires on every page allocation.
SEC("tp_btf/mm_page_alloc")
int BPF_PROG(empty_page_alloc) { return 0; }

SEC("tp_btf/mm_page_alloc_extfrag")
int BPF_PROG(empty_extfrag) { return 0; }

SEC("tp_btf/sched_process_exit")
int BPF_PROG(empty_task_exit) { return 0; }

// Per-syscall tracepoints have no BTF-typed form (tp_btf can only take the
// raw sys_enter/sys_exit, which run on every system call), so the floor
// uses the same classic tracepoints as memtrace here.
SEC("tracepoint/syscalls/sys_enter_shmget")
int empty_shmget_enter(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_shmget")
int empty_shmget_exit(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_enter_mmap")
int empty_mmap_enter(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_mmap")
int empty_mmap_exit(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_enter_shmat")
int empty_shmat_enter(void *ctx) { return 0; }
SEC("tracepoint/syscalls/sys_exit_shmat")
int empty_shmat_exit(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
