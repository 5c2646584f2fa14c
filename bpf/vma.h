// SPDX-License-Identifier: GPL-2.0
// The VMA at an address of the current task, copied out as struct
// vma_info: by bpf_find_vma's callback (hugefault.c), or read without the
// mmap lock (vma_lockless) where that helper is missing (before 5.17) or
// cannot take the lock.
#pragma once

#include "common.h"

// What the bpf_find_vma callback copies out of the VMA.
struct vma_info {
	__u64 start, end, flags, pgoff, file, priv;
	__u8 found;
};

static __always_inline void vma_info_of(struct vma_info *vi, struct vm_area_struct *vma)
{
	vi->start = BPF_CORE_READ(vma, vm_start);
	vi->end = BPF_CORE_READ(vma, vm_end);
	vi->flags = BPF_CORE_READ(vma, vm_flags);
	vi->pgoff = BPF_CORE_READ(vma, vm_pgoff);
	vi->file = (__u64)BPF_CORE_READ(vma, vm_file);
	vi->priv = (__u64)BPF_CORE_READ(vma, vm_private_data);
	vi->found = 1;
}

// 5.10's per-task VMA cache (gone in 6.1): the fault's find_vma has just
// put the faulting VMA in it. Flavoured so that CO-RE matches the kernel's
// struct vmacache and task_struct.vmacache where they exist.
struct vmacache___old {
	__u64 seqnum;
	struct vm_area_struct *vmas[4];
} __attribute__((preserve_access_index));

struct task_struct___old {
	struct vmacache___old vmacache;
} __attribute__((preserve_access_index));

// Maple tree node encoding (lib/maple_tree.c, include/linux/maple_tree.h,
// unchanged 6.1 to 6.18): the root is a node when its low two bits are 2
// (MAPLE_ROOT_NODE) and it is above 4096, else the tree holds at most one
// entry; below the root, an internal node's slots hold nodes as they are.
// In a node pointer bits 3-6 are the node type; the node itself is 256-byte
// aligned.
#define MAPLE_ROOT_NODE 2ULL
#define MAPLE_NODE_MASK 255ULL
#define MAPLE_TYPE_SHIFT 3
#define MAPLE_TYPE_MASK 0xf
#define MAPLE_DEPTH 8 // levels walked: room for far more VMAs than vm.max_map_count (65530) allows
#define MAPLE_RANGE64_PIVOTS 15

// vma_ok keeps what a lockless read found only if it is a VMA of mm that
// holds addr: a walk that raced with a change of the tree finds nothing.
static __always_inline bool vma_ok(struct vma_info *vi, struct vm_area_struct *vma, struct mm_struct *mm,
				   __u64 addr)
{
	if (!vma || BPF_CORE_READ(vma, vm_mm) != mm)
		return false;
	vma_info_of(vi, vma);
	if (vi->start > addr || addr >= vi->end) {
		vi->found = 0;
		return false;
	}
	return true;
}

// maple_walk is the state of a walk down mm's VMA tree (6.1+), one level
// per maple_step: the node to look in, then the leaf's entry. Nothing else
// is kept between levels: every field of it the steps write is one more
// state the verifier has to tell apart.
struct maple_walk {
	__u64 entry;
	__u64 addr;
};

// below is a < b (unsigned) computed without a branch: the borrow of a - b.
// The empty asm keeps the compiler from turning it back into a compare and
// jump.
static __always_inline __u64 below(__u64 a, __u64 b)
{
	__u64 d = a - b;

	asm volatile("" : "+r"(d));
	return ((~a & b) | (~(a ^ b) & d)) >> 63;
}

// is0 is x == 0 for x below 2^63, without a branch.
static __always_inline __u64 is0(__u64 x)
{
	__u64 d = x - 1;

	asm volatile("" : "+r"(d));
	return d >> 63;
}

// maple_step looks in one node as mtree_lookup_walk does. A bpf_loop
// callback: the verifier walks it once, not once per level.
static long maple_step(__u64 index, void *data)
{
	struct maple_walk *w = data;
	__u64 piv[MAPLE_RANGE64_PIVOTS];
	__u64 type, slot_off, off, next = 0;
	void *node;

	type = (w->entry >> MAPLE_TYPE_SHIFT) & MAPLE_TYPE_MASK;
	node = (void *)(w->entry & ~MAPLE_NODE_MASK);
	// Every choice below is arithmetic, not a branch: inside a bpf_loop
	// callback each branch doubles what the verifier walks.
	slot_off = bpf_core_field_offset(struct maple_range_64, slot);
	slot_off += is0(type ^ maple_arange_64) * ((__u64)bpf_core_field_offset(struct maple_arange_64, slot) -
						   (__u64)bpf_core_field_offset(struct maple_range_64, slot));
	// Both node types start with their pivots after the parent.
	if (bpf_probe_read_kernel(piv, sizeof(piv), node + bpf_core_field_offset(struct maple_range_64, pivot)))
		return 1;
	// The slot is the first whose pivot (last index) is at or past addr,
	// or whose pivot is unused (0, after the first), which ends the
	// node's data: its last slot reaches the node's maximum. Pivots are
	// sorted, then unused, so that slot is the number of used pivots
	// below addr (pivot - 1 < addr - 1 after the first: 0 wraps around).
	// An arange node (internal, 9 pivots) has its slots after its pivots,
	// NULL or kernel pointers, which count as unused or above: its slot is
	// 9 at most, inside the 15 pivots a range node has.
	off = below(piv[0], w->addr);
#pragma unroll
	for (int i = 1; i < MAPLE_RANGE64_PIVOTS; i++)
		off += below(piv[i] - 1, w->addr - 1);
	bpf_probe_read_kernel(&next, sizeof(next), node + slot_off + off * sizeof(void *));
	w->entry = next;
	// A leaf's entry is the VMA: the walk ends there. A dense node or a
	// failed read ends it too, with an entry vma_ok refuses.
	return is0(type ^ maple_leaf_64) | is0(type) | below(next, 4097);
}

// vma_maple finds the VMA at addr in mm's maple tree (6.1+). Needs
// bpf_loop (5.17+, as bpf_find_vma).
static __always_inline void vma_maple(struct vma_info *vi, struct mm_struct *mm, __u64 addr)
{
	struct maple_walk w = {.entry = (__u64)BPF_CORE_READ(mm, mm_mt.ma_root), .addr = addr};

	if ((w.entry & 3) != MAPLE_ROOT_NODE || w.entry <= 4096)
		return; // an empty tree, or one VMA at address 0
	w.entry &= ~MAPLE_ROOT_NODE;
	bpf_loop(MAPLE_DEPTH, maple_step, &w, 0);
	vma_ok(vi, (void *)w.entry, mm, addr);
}

// vma_cached finds the VMA at addr in 5.10's per-task VMA cache, which the
// fault's find_vma filled (task_struct.vmacache, before 6.1).
static __always_inline void vma_cached(struct vma_info *vi, __u64 addr)
{
	struct task_struct___old *task = (void *)bpf_get_current_task();
	struct mm_struct *mm = BPF_CORE_READ((struct task_struct *)task, mm);
	struct vm_area_struct *vmas[4] = {};

	if (!mm || !bpf_core_field_exists(task->vmacache))
		return;
	if (bpf_core_read(vmas, sizeof(vmas), &task->vmacache.vmas))
		return;
#pragma unroll
	for (int i = 0; i < 4; i++)
		if (vma_ok(vi, vmas[i], mm, addr))
			return;
}

// vma_lockless finds the VMA at addr of the current task without the mmap
// lock: in the task's VMA cache before 6.1, else in the maple tree.
// Interrupts are off in signal_generate (the siglock is held), which is an
// RCU read-side section: the tree's nodes, freed through RCU, stay
// readable, and every read is checked. Needs bpf_loop (5.17+): for the
// programs that call bpf_find_vma.
static __always_inline void vma_lockless(struct vma_info *vi, __u64 addr)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct mm_struct *mm = BPF_CORE_READ(task, mm);

	if (!mm)
		return;
	if (bpf_core_field_exists(((struct task_struct___old *)0)->vmacache))
		vma_cached(vi, addr);
	else if (bpf_core_field_exists(mm->mm_mt))
		vma_maple(vi, mm, addr);
}
