// SPDX-License-Identifier: GPL-2.0
// The architecture-specific kernel types the programs use that the shared
// vmlinux.h lacks.
//
// One vmlinux.h (x86-64, 6.18) serves every architecture bpf2go builds
// for: every struct in it is preserve_access_index, so no offset of it
// reaches the objects; each access is a CO-RE relocation resolved by name
// against the running kernel's BTF, and both targets are 64-bit little-
// endian with the same type sizes. An arm64 vmlinux.h would only risk a
// type or field of the x86 dump (6.18) missing from an older arm64 dump,
// failing one target's build. What does differ by architecture are the
// register structs bpf_tracing.h's PT_REGS_* macros cast to: pt_regs on
// x86 (in vmlinux.h), user_pt_regs on arm64 (below). Checked when added:
// the arm64 objects built this way and with a full arm64 dump (Debian 12's
// linux-image-6.1.0-57-arm64, `bpftool btf dump ... format c` of the .BTF
// section of its Image) have the same instructions and the same CO-RE
// relocations, by name.
#pragma once

#if defined(__TARGET_ARCH_arm64)
// arch/arm64/include/uapi/asm/ptrace.h (UAPI: stable).
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
} __attribute__((preserve_access_index));
#endif
