// SPDX-License-Identifier: GPL-2.0
// Huge-page fault failures: a fault on a hugetlb mapping that got no page
// and ends in SIGBUS (or VM_FAULT_OOM), with the mapping (range, flags,
// page size, file), its reservation state, the pool of its page size, the
// hugetlbfs size limit and the task's hugetlb cgroup counters as read
// right after the failure, so user space can name the cause: pool empty,
// no reservation (MAP_NORESERVE, or a private mapping after fork), or a
// hugetlb cgroup limit that counts faults, not reservations.
//
// Hooks, best first: fexit on hugetlb_fault (its vm_fault_t return: also
// VM_FAULT_OOM and failures of kernel-mode faults that send no signal);
// tp_btf/signal_generate (SIGBUS, BUS_ADRERR, the fault address from the
// siginfo); the same tracepoint without bpf_find_vma (5.10 to 5.16, and
// wherever the helper is missing); the classic tracepoint
// signal/signal_generate (the address from the thread's fault record, x86's
// thread.cr2). The signal hooks find the VMA with bpf_find_vma (5.17+), and
// where it cannot take the mmap lock (another thread of the process holds
// it or waits for it, or another program used the helper on the same
// SIGBUS: -EBUSY) or does not exist, without the lock: see bpf/vma.h.
#include "common.h"
#include "vma.h"

// Values of the kernel's mm.h, signal.h and hugetlb.c, stable since 4.x.
#define SIGBUS 7
#define BUS_ADRERR 2
#define VM_FAULT_OOM 0x1
#define VM_FAULT_SIGBUS 0x2
#define VM_MAYSHARE 0x80
#define VM_HUGETLB 0x00400000
#define HUGETLBFS_MAGIC 0x958458f6
#define HPAGE_RESV_MASK 0x3 // HPAGE_RESV_OWNER | HPAGE_RESV_UNMAPPED
#define NODES 8             // per-node free counts sent (nodes 0..7)
#define MAX_HSTATES 4       // hstates looked at below the mapping's

// The record kind of this family. enum event_kind of common.h numbers the
// kinds of the older families; a value of its own here keeps a new family
// from changing (and regenerating) every other object. Kinds are only
// compared within one family's ring buffer.
enum hugefault_kind {
	EVENT_HUGEFAULT = 7,
};

enum hugefault_source {
	SOURCE_FAULT_RETURN = 1, // fexit/hugetlb_fault: the fault's vm_fault_t
	SOURCE_SIGBUS = 2,       // signal_generate: the SIGBUS it ended in
};

struct hugefault_event {
	struct event_hdr hdr;
	__u64 address; // faulting address
	__u64 vm_start;
	__u64 vm_end;
	__u64 vm_flags;
	__u64 vm_pgoff;
	__u64 page_size; // bytes, from the mapping's hstate (0: unknown)
	__u64 ino;       // hugetlbfs inode of the mapping
	// The pool of the mapping's page size, read after the failure.
	__u64 pool_total;
	__u64 pool_free;
	__u64 pool_resv;
	__u64 pool_surplus;
	__u64 pool_overcommit;
	// hugetlbfs mount size limit in huge pages (-1: none).
	__s64 spool_max;
	__s64 spool_used;
	// The task's hugetlb cgroup and its counters for this page size, in
	// base pages (-1: not read: no controller, or its index unknown).
	__u64 hcg_id;
	__s64 hcg_usage;
	__s64 hcg_max;
	__s64 hcg_rsvd_usage;
	__s64 hcg_rsvd_max;
	__u32 node_free[NODES];
	__u32 fault_ret;   // vm_fault_t (fault return only)
	__s32 si_code;     // SIGBUS only (-1 otherwise)
	__s32 sig_result;  // signal_generate's result (delivered 0, ...)
	__u32 resv_flags;  // private mappings: HPAGE_RESV_OWNER 1, _UNMAPPED 2
	__s32 hstate_idx;  // index of the page size's hstate (-1: unknown)
	__s32 numa_node;   // node of the CPU that faulted
	__u8 source;       // enum hugefault_source
	__u8 _pad[7];
	char file[32];     // the mapping's file: anon_hugepage, SYSV…, a hugetlbfs name
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} hugefault_events SEC(".maps");

DEFINE_STATS(hugefault_stats);

const struct hugefault_event *unused_hugefault_event __attribute__((unused));
const enum hugefault_source *unused_hugefault_source __attribute__((unused));
const enum hugefault_kind *unused_hugefault_kind __attribute__((unused));
const struct vma_info *unused_vma_info __attribute__((unused));
const struct maple_walk *unused_maple_walk __attribute__((unused));

// hstate_index finds the index of h in the kernel's hstates[] array, which
// the hugetlb cgroup's counters are indexed by. The array is not exported,
// so the hstates below h are counted: each starts with the name the kernel
// gives every hstate ("hugepages-2048kB").
static __always_inline int hstate_index(void *h)
{
	__u32 size = bpf_core_type_size(struct hstate);
	__u32 name_off = bpf_core_field_offset(struct hstate, name);
	int idx = 0;

#pragma unroll
	for (int k = 1; k < MAX_HSTATES; k++) {
		char name[10] = {};
		if (bpf_probe_read_kernel(name, sizeof(name), h - (__u64)k * size + name_off))
			break;
		if (name[0] != 'h' || name[1] != 'u' || name[2] != 'g' || name[3] != 'e' || name[4] != 'p' ||
		    name[5] != 'a' || name[6] != 'g' || name[7] != 'e' || name[8] != 's' || name[9] != '-')
			break;
		idx = k;
	}
	return idx;
}

// read_counter reads usage and max of the page_counter at base + idx.
static __always_inline void read_counter(void *base, int idx, __s64 *usage, __s64 *max)
{
	struct page_counter *pc = base + (__u64)idx * bpf_core_type_size(struct page_counter);
	*usage = BPF_CORE_READ(pc, usage.counter);
	*max = BPF_CORE_READ(pc, max);
}

static __always_inline void read_cgroup(struct hugefault_event *e, void *h)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct cgroup_subsys_state *css;
	struct hugetlb_cgroup *hcg;
	int idx, id, n;

	e->hcg_usage = e->hcg_max = e->hcg_rsvd_usage = e->hcg_rsvd_max = -1;
	e->hstate_idx = -1;
	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, hugetlb_cgrp_id))
		return;
	id = bpf_core_enum_value(enum cgroup_subsys_id, hugetlb_cgrp_id);
	css = BPF_CORE_READ(task, cgroups, subsys[id]);
	if (!css)
		return;
	e->hcg_id = BPF_CORE_READ(css, cgroup, kn, id);
	if (!h)
		return;
	idx = hstate_index(h);
	n = bpf_core_field_size(struct hugetlb_cgroup, hugepage) / bpf_core_type_size(struct page_counter);
	if (idx >= n)
		return;
	e->hstate_idx = idx;
	// css is the first member of struct hugetlb_cgroup.
	hcg = (void *)css - bpf_core_field_offset(struct hugetlb_cgroup, css);
	read_counter((void *)hcg + bpf_core_field_offset(struct hugetlb_cgroup, hugepage), idx,
		     &e->hcg_usage, &e->hcg_max);
	if (bpf_core_field_exists(hcg->rsvd_hugepage))
		read_counter((void *)hcg + bpf_core_field_offset(struct hugetlb_cgroup, rsvd_hugepage), idx,
			     &e->hcg_rsvd_usage, &e->hcg_rsvd_max);
}

// send records a failed fault on the VMA described by vi.
static __always_inline void send(struct vma_info *vi, __u64 addr, __u32 ret, int si_code, int result,
				 __u8 source)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct hugefault_event *e;
	struct file *file = (void *)vi->file;
	struct hugetlbfs_sb_info *sbi = NULL;
	struct hstate *h = NULL;
	struct super_block *sb;

	if (!passes_filters(pid_tgid))
		return;
	stat_inc(&hugefault_stats, STAT_SEEN);
	e = bpf_ringbuf_reserve(&hugefault_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(&hugefault_stats, STAT_LOST);
		return;
	}
	__builtin_memset((void *)e + sizeof(e->hdr), 0, sizeof(*e) - sizeof(e->hdr));
	fill_hdr(&e->hdr, EVENT_HUGEFAULT, CTX_PROCESS, pid_tgid);
	e->address = addr;
	e->vm_start = vi->start;
	e->vm_end = vi->end;
	e->vm_flags = vi->flags;
	e->vm_pgoff = vi->pgoff;
	e->fault_ret = ret;
	e->si_code = si_code;
	e->sig_result = result;
	e->source = source;
	e->numa_node = bpf_get_numa_node_id();
	e->spool_max = e->spool_used = -1;
	if (!(vi->flags & VM_MAYSHARE))
		e->resv_flags = vi->priv & HPAGE_RESV_MASK;

	if (file) {
		struct dentry *d = BPF_CORE_READ(file, f_path.dentry);
		const unsigned char *name = BPF_CORE_READ(d, d_name.name);
		bpf_probe_read_kernel_str(e->file, sizeof(e->file), name);
		e->ino = BPF_CORE_READ(file, f_inode, i_ino);
		sb = BPF_CORE_READ(file, f_inode, i_sb);
		if (sb && BPF_CORE_READ(sb, s_magic) == HUGETLBFS_MAGIC)
			sbi = BPF_CORE_READ(sb, s_fs_info);
	}
	if (sbi) {
		struct hugepage_subpool *sp = BPF_CORE_READ(sbi, spool);
		h = BPF_CORE_READ(sbi, hstate);
		if (sp && BPF_CORE_READ(sp, max_hpages) != -1) {
			e->spool_max = BPF_CORE_READ(sp, max_hpages);
			e->spool_used = BPF_CORE_READ(sp, used_hpages);
		}
	}
	if (h) {
		e->page_size = 4096ULL << BPF_CORE_READ(h, order);
		e->pool_total = BPF_CORE_READ(h, nr_huge_pages);
		e->pool_free = BPF_CORE_READ(h, free_huge_pages);
		e->pool_resv = BPF_CORE_READ(h, resv_huge_pages);
		e->pool_surplus = BPF_CORE_READ(h, surplus_huge_pages);
		e->pool_overcommit = BPF_CORE_READ(h, nr_overcommit_huge_pages);
#pragma unroll
		for (int i = 0; i < NODES; i++)
			e->node_free[i] = BPF_CORE_READ(h, free_huge_pages_node[i]);
	}
	read_cgroup(e, h);
	bpf_ringbuf_submit(e, 0);
}

// Preferred where fexit is permitted (6.1, 5.10): the fault's own result.
SEC("fexit/hugetlb_fault")
int BPF_PROG(hugetlb_fault_exit, struct mm_struct *mm, struct vm_area_struct *vma, unsigned long address,
	     unsigned int flags, unsigned int ret)
{
	struct vma_info vi = {};

	if (!(ret & (VM_FAULT_OOM | VM_FAULT_SIGBUS)))
		return 0;
	vma_info_of(&vi, vma);
	send(&vi, address, ret, -1, 0, SOURCE_FAULT_RETURN);
	return 0;
}

static long find_cb(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	vma_info_of(data, vma);
	return 0;
}

// send_sigbus sends the SIGBUS at addr if vi, the VMA it hit, is hugetlb.
static __always_inline void send_sigbus(struct vma_info *vi, __u64 addr, int code, int result)
{
	if (!vi->found || !(vi->flags & VM_HUGETLB))
		return;
	send(vi, addr, 0, code, result, SOURCE_SIGBUS);
}

// sigbus_at sends the SIGBUS at addr of the current task if it hit a
// hugetlb mapping. The fault handler has dropped the mmap lock before it
// sends the signal, but bpf_find_vma only tries it, and with interrupts
// off (the siglock is held) it leaves the unlock to a per-CPU irq_work: it
// fails with EBUSY when another thread of the process holds or waits for
// the lock (mmap, munmap), and when another program already used that
// irq_work on this SIGBUS (a second memtrace on the host). The VMA is then
// read without the lock.
static __always_inline void sigbus_at(__u64 addr, int code, int result)
{
	struct vma_info vi = {};
	long err = bpf_find_vma(bpf_get_current_task_btf(), addr, find_cb, &vi, 0);

	if (err == -16 /* EBUSY */)
		vma_lockless(&vi, addr);
	send_sigbus(&vi, addr, code, result);
}

SEC("tp_btf/signal_generate")
int BPF_PROG(sigbus_btf, int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
	     int result)
{
	// A fault's SIGBUS is sent by the faulting task to itself.
	if (sig != SIGBUS || (void *)task != (void *)bpf_get_current_task())
		return 0;
	int code = BPF_CORE_READ(info, si_code);
	if (code != BUS_ADRERR)
		return 0;
	sigbus_at((__u64)BPF_CORE_READ(info, _sifields._sigfault._addr), code, result);
	return 0;
}

// The same hook without bpf_find_vma (and bpf_get_current_task_btf, 5.11,
// and bpf_loop): the VMA from the task's VMA cache only, for 5.10 to 5.16.
SEC("tp_btf/signal_generate")
int BPF_PROG(sigbus_btf_lockless, int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
	     int result)
{
	struct vma_info vi = {};

	if (sig != SIGBUS || (void *)task != (void *)bpf_get_current_task())
		return 0;
	int code = BPF_CORE_READ(info, si_code);
	if (code != BUS_ADRERR)
		return 0;
	__u64 addr = (__u64)BPF_CORE_READ(info, _sifields._sigfault._addr);
	vma_cached(&vi, addr);
	send_sigbus(&vi, addr, code, result);
	return 0;
}

// The classic tracepoint has no fault address: x86's fault handler records
// it in the thread (set_signal_archinfo) before it sends the signal.
SEC("tracepoint/signal/signal_generate")
int sigbus_tp(struct trace_event_raw_signal_generate *args)
{
	if (args->sig != SIGBUS || args->code != BUS_ADRERR)
		return 0;
	if ((__u32)args->pid != (__u32)bpf_get_current_pid_tgid())
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	if (!bpf_core_field_exists(t->thread.cr2))
		return 0;
	sigbus_at(BPF_CORE_READ(t, thread.cr2), args->code, args->result);
	return 0;
}
