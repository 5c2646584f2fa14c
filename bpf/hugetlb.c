// SPDX-License-Identifier: GPL-2.0
// Huge-page requests: shmget(SHM_HUGETLB), mmap(MAP_HUGETLB) and shmat,
// paired enter/exit per thread, plus the large shared mappings without
// huge pages that follow a failed huge-page request of the same process:
// the silent fallback of PostgreSQL huge_pages=try, MySQL, MariaDB, Oracle.
#include "common.h"

enum hugetlb_call {
	CALL_SHMGET = 1,
	CALL_MMAP = 2,
	CALL_SHMAT = 3,
};

// Bits of hugetlb_event.note and inflight.note.
enum hugetlb_note {
	NOTE_HUGE_REQUEST = 0x1,    // asked for huge pages
	NOTE_AFTER_HUGE_FAIL = 0x2, // no huge pages, after a failed huge request
};

struct hugetlb_event {
	struct event_hdr hdr;
	__s64 ret;         // shmid, address, or -errno
	__u64 size;        // shmget size, mmap length
	__u64 flags;       // shmget shmflg, mmap flags, shmat shmflg
	__u64 key;         // shmget key, mmap prot, shmat shmaddr
	__u64 arg;         // shmat shmid, mmap fd
	__u64 duration_ns; // from enter to exit
	__u8 call;         // enum hugetlb_call
	__u8 note;         // enum hugetlb_note bits
	__u8 _pad[6];
};

struct inflight {
	__u64 ts_ns;
	__u64 size;
	__u64 flags;
	__u64 key;
	__u64 arg;
	__u8 call;
	__u8 note;
	__u8 _pad[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} hugetlb_events SEC(".maps");

DEFINE_STATS(hugetlb_stats);

// tid -> arguments of the call in progress.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct inflight);
} hugetlb_inflight SEC(".maps");

// tgid -> time of its last failed huge-page request.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} huge_failed SEC(".maps");

const struct hugetlb_event *unused_hugetlb_event __attribute__((unused));
const struct inflight *unused_inflight __attribute__((unused));
const enum hugetlb_call *unused_hugetlb_call __attribute__((unused));
const enum hugetlb_note *unused_hugetlb_note __attribute__((unused));

static __always_inline bool is_shared(__u64 flags)
{
	__u64 type = flags & CFG.map_type_mask;
	return type == 0x01 /* MAP_SHARED */ || type == 0x03 /* MAP_SHARED_VALIDATE */;
}

static __always_inline void begin(__u8 call, __u64 size, __u64 flags, __u64 key, __u64 arg)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	struct inflight in = {};

	if (call == CALL_MMAP) {
		// mmap is frequent: decide on the flags before any map lookup.
		if (flags & CFG.map_hugetlb) {
			in.note = NOTE_HUGE_REQUEST;
		} else {
			if (!is_shared(flags) || size < CFG.fallback_min)
				return;
			if (bpf_map_lookup_elem(&huge_failed, &tgid))
				in.note = NOTE_AFTER_HUGE_FAIL;
			else if (!CFG.large_shared_min || size < CFG.large_shared_min ||
				 !(flags & CFG.map_anonymous))
				return;
		}
	} else if (call == CALL_SHMGET) {
		if (flags & CFG.shm_hugetlb)
			in.note = NOTE_HUGE_REQUEST;
		else if (bpf_map_lookup_elem(&huge_failed, &tgid))
			in.note = NOTE_AFTER_HUGE_FAIL;
	}
	if (!passes_filters(pid_tgid))
		return;

	in.ts_ns = bpf_ktime_get_ns();
	in.call = call;
	in.size = size;
	in.flags = flags;
	in.key = key;
	in.arg = arg;
	if (bpf_map_update_elem(&hugetlb_inflight, &tid, &in, BPF_ANY))
		stat_inc(&hugetlb_stats, STAT_MAP_FULL);
}

static __always_inline void finish(__s64 ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	struct inflight *in = bpf_map_lookup_elem(&hugetlb_inflight, &tid);
	if (!in)
		return;

	stat_inc(&hugetlb_stats, STAT_SEEN);
	// Errors come back as -errno (-4095..-1) for every call here.
	bool failed = ret < 0 && ret >= -4095;
	if (in->note & NOTE_HUGE_REQUEST) {
		if (failed) {
			__u64 now = bpf_ktime_get_ns();
			bpf_map_update_elem(&huge_failed, &tgid, &now, BPF_ANY);
		} else if (in->call != CALL_SHMAT) {
			bpf_map_delete_elem(&huge_failed, &tgid);
		}
	}

	struct hugetlb_event *e = bpf_ringbuf_reserve(&hugetlb_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(&hugetlb_stats, STAT_LOST);
	} else {
		fill_hdr(&e->hdr, EVENT_HUGETLB, CTX_PROCESS, pid_tgid);
		e->ret = ret;
		e->size = in->size;
		e->flags = in->flags;
		e->key = in->key;
		e->arg = in->arg;
		e->duration_ns = e->hdr.ts_ns - in->ts_ns;
		e->call = in->call;
		e->note = in->note;
		__builtin_memset(e->_pad, 0, sizeof(e->_pad));
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&hugetlb_inflight, &tid);
}

// Preferred: the per-syscall classic tracepoints, which fire only for
// these three calls. They need tracefs and CONFIG_FTRACE_SYSCALLS.
SEC("tracepoint/syscalls/sys_enter_shmget")
int shmget_enter_tp(struct syscall_trace_enter *args)
{
	// shmget(key, size, shmflg)
	begin(CALL_SHMGET, args->args[1], args->args[2], args->args[0], 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_shmget")
int shmget_exit_tp(struct syscall_trace_exit *args)
{
	finish(args->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int mmap_enter_tp(struct syscall_trace_enter *args)
{
	// mmap(addr, length, prot, flags, fd, offset)
	begin(CALL_MMAP, args->args[1], args->args[3], args->args[2], args->args[4]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int mmap_exit_tp(struct syscall_trace_exit *args)
{
	finish(args->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_shmat")
int shmat_enter_tp(struct syscall_trace_enter *args)
{
	// shmat(shmid, shmaddr, shmflg)
	begin(CALL_SHMAT, 0, args->args[2], args->args[1], args->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_shmat")
int shmat_exit_tp(struct syscall_trace_exit *args)
{
	finish(args->ret);
	return 0;
}

// Fallback without tracefs: the raw syscall tracepoints, BTF-typed. They
// fire on every syscall, so the syscall number is tested first.
SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter_btf, struct pt_regs *regs, long id)
{
	if (id == CFG.nr_mmap) {
		begin(CALL_MMAP, PT_REGS_PARM2_CORE_SYSCALL(regs), PT_REGS_PARM4_CORE_SYSCALL(regs),
		      PT_REGS_PARM3_CORE_SYSCALL(regs), PT_REGS_PARM5_CORE_SYSCALL(regs));
	} else if (id == CFG.nr_shmget) {
		begin(CALL_SHMGET, PT_REGS_PARM2_CORE_SYSCALL(regs), PT_REGS_PARM3_CORE_SYSCALL(regs),
		      PT_REGS_PARM1_CORE_SYSCALL(regs), 0);
	} else if (id == CFG.nr_shmat) {
		begin(CALL_SHMAT, 0, PT_REGS_PARM3_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs),
		      PT_REGS_PARM1_CORE_SYSCALL(regs));
	}
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_btf, struct pt_regs *regs, long ret)
{
	finish(ret);
	return 0;
}

// Stale pairing state goes when a thread exits inside a call (killed) and
// when a process exits with a failed request on record.
static __always_inline void forget_task(void)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;

	bpf_map_delete_elem(&hugetlb_inflight, &tid);
	if (tid == tgid)
		bpf_map_delete_elem(&huge_failed, &tgid);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(task_exit_btf)
{
	forget_task();
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int task_exit_tp(void *args)
{
	forget_task();
	return 0;
}
