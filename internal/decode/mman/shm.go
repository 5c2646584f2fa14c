package mman

import "fmt"

// shmget flags above the permission bits.
const (
	shmPerm    = 0o777
	shmHugeTLB = 0o4000
)

var shmFlags = []flagName{
	{0o1000, "IPC_CREAT"},
	{0o2000, "IPC_EXCL"},
	{shmHugeTLB, "SHM_HUGETLB"},
	{0o10000, "SHM_NORESERVE"},
}

// ShmFlags names shmget(2) flags as strace does, e.g.
// "IPC_CREAT|IPC_EXCL|SHM_HUGETLB|0660": named flags, then the huge page
// size (SHM_HUGE_2MB), unknown bits in hex, and the permission bits in
// octal last.
func ShmFlags(flags uint64) string {
	out, rest := appendFlags(nil, flags&^shmPerm, shmFlags)
	if rest&hugeSizeBits != 0 {
		out = append(out, hugeName("SHM_HUGE_", flags))
		rest &^= hugeSizeBits
	}
	if rest != 0 {
		out = append(out, fmt.Sprintf("%#x", rest))
	}
	if perm := flags & shmPerm; perm != 0 {
		out = append(out, fmt.Sprintf("%#03o", perm))
	}
	return join(out, 0)
}
