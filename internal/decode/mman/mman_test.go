package mman

import "testing"

func TestMapFlags(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0"},
		{0x22, "MAP_PRIVATE|MAP_ANONYMOUS"},
		{0x21, "MAP_SHARED|MAP_ANONYMOUS"},
		{0x03, "MAP_SHARED_VALIDATE"},
		{0x08 | 0x20, "MAP_DROPPABLE|MAP_ANONYMOUS"},
		{0x40022, "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB"},
		{0x40022 | 21<<26, "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_2MB"},
		{0x40021 | 30<<26, "MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_1GB"},
		{0x40022 | 16<<26, "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_64KB"},
		{0x40022 | 19<<26, "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_512KB"},
		{0x40022 | 34<<26, "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_16GB"},
		{0x40022 | 3<<26, "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|3<<MAP_HUGE_SHIFT"},
		{0x2 | 0x4000000, "MAP_PRIVATE|MAP_UNINITIALIZED"},
		{0x2 | 21<<26, "MAP_PRIVATE|MAP_UNINITIALIZED|0x50000000"}, // size bits without MAP_HUGETLB
		{0x12 | 0x2000 | 0x4000 | 0x8000, "MAP_PRIVATE|MAP_FIXED|MAP_LOCKED|MAP_NORESERVE|MAP_POPULATE"},
		{0x100000 | 0x80000 | 0x3, "MAP_SHARED_VALIDATE|MAP_SYNC|MAP_FIXED_NOREPLACE"},
		{0x20000 | 0x100 | 0x22, "MAP_PRIVATE|MAP_ANONYMOUS|MAP_GROWSDOWN|MAP_STACK"},
		{0x5, "0x5"},
		{0x5 | 0x200, "0x5|0x200"},
		{0x2 | 0x200000, "MAP_PRIVATE|0x200000"},
	}
	for _, tc := range tests {
		if got := MapFlags(tc.in); got != tc.want {
			t.Errorf("MapFlags(%#x) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestShmFlags(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		// The strace line of the Oracle article in the seed documents:
		// shmget(..., IPC_CREAT|IPC_EXCL|SHM_HUGETLB|0660).
		{0o1000 | 0o2000 | 0o4000 | 0o660, "IPC_CREAT|IPC_EXCL|SHM_HUGETLB|0660"},
		{0o1000 | 0o2000 | 0o660, "IPC_CREAT|IPC_EXCL|0660"},
		{0o1000 | 0o4000 | 0o600 | 21<<26, "IPC_CREAT|SHM_HUGETLB|SHM_HUGE_2MB|0600"},
		{0o1000 | 0o4000 | 0o600 | 30<<26, "IPC_CREAT|SHM_HUGETLB|SHM_HUGE_1GB|0600"},
		{0o1000 | 0o4000 | 0o10000 | 0o640, "IPC_CREAT|SHM_HUGETLB|SHM_NORESERVE|0640"},
		{0o4, "004"},
		{0o660, "0660"},
		{0, "0"},
		{0o1000 | 0o20000 | 0o600, "IPC_CREAT|0x2000|0600"},
	}
	for _, tc := range tests {
		if got := ShmFlags(tc.in); got != tc.want {
			t.Errorf("ShmFlags(%#o) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHugePageSize(t *testing.T) {
	tests := []struct {
		in   uint64
		want uint64
	}{
		{0x40022, 0},
		{0x40022 | 21<<26, 2 << 20},
		{0x40022 | 30<<26, 1 << 30},
		{0o4000 | 21<<26, 2 << 20},
		{16 << 26, 64 << 10},
		{63 << 26, 1 << 63},
		{0xffffffffffffffff, 1 << 63},
	}
	for _, tc := range tests {
		if got := HugePageSize(tc.in); got != tc.want {
			t.Errorf("HugePageSize(%#x) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestProtFlags(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "PROT_NONE"},
		{1, "PROT_READ"},
		{3, "PROT_READ|PROT_WRITE"},
		{7, "PROT_READ|PROT_WRITE|PROT_EXEC"},
		{0x01000003, "PROT_READ|PROT_WRITE|PROT_GROWSDOWN"},
		{0x15, "PROT_READ|PROT_EXEC|PROT_BTI"},
		{0x40, "0x40"},
	}
	for _, tc := range tests {
		if got := ProtFlags(tc.in); got != tc.want {
			t.Errorf("ProtFlags(%#x) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestErrnoName(t *testing.T) {
	tests := []struct {
		in   int
		want string
	}{
		{12, "ENOMEM"},
		{-12, "ENOMEM"},
		{1, "EPERM"},
		{22, "EINVAL"},
		{28, "ENOSPC"},
		{0, "errno 0"},
		{1234, "errno 1234"},
		{-1234, "errno -1234"},
	}
	for _, tc := range tests {
		if got := ErrnoName(tc.in); got != tc.want {
			t.Errorf("ErrnoName(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
