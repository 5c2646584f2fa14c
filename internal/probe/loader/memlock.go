package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// liftMemlock raises RLIMIT_MEMLOCK where the kernel charges BPF maps to
// it (before 5.11, when memory cgroups took over), and leaves it alone
// elsewhere: verify starts the database as memtrace's child, and a raised
// limit would hide the very RLIMIT_MEMLOCK refusal of SHM_HUGETLB it is
// there to catch. It is cilium/ebpf's rlimit.RemoveMemlock, run when a
// session starts instead of in a package init, which created a BPF map in
// every memtrace command, --version and the unprivileged ones included.
func liftMemlock() error {
	charged, err := mapsChargeMemlock()
	if err != nil {
		return fmt.Errorf("finding whether BPF maps count against RLIMIT_MEMLOCK: %w", err)
	}
	if !charged {
		return nil
	}
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Prlimit(0, unix.RLIMIT_MEMLOCK, &inf, nil); err != nil {
		return fmt.Errorf("raising RLIMIT_MEMLOCK for BPF maps (this kernel charges them to it; raising it needs CAP_SYS_RESOURCE): %w", err)
	}
	return nil
}

// mapsChargeMemlock creates a one-entry array with the soft limit at 0:
// refused with EPERM only where maps are charged to the limit.
func mapsChargeMemlock() (bool, error) {
	var old unix.Rlimit
	if err := unix.Prlimit(0, unix.RLIMIT_MEMLOCK, nil, &old); err != nil {
		return false, err
	}
	zero := unix.Rlimit{Cur: 0, Max: old.Max}
	if err := unix.Prlimit(0, unix.RLIMIT_MEMLOCK, &zero, nil); err != nil {
		return false, err
	}
	m, mapErr := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err := unix.Prlimit(0, unix.RLIMIT_MEMLOCK, &old, nil); err != nil {
		if m != nil {
			m.Close()
		}
		return false, fmt.Errorf("restoring RLIMIT_MEMLOCK: %w", err)
	}
	if mapErr == nil {
		m.Close()
		return false, nil
	}
	if errors.Is(mapErr, unix.EPERM) {
		return true, nil
	}
	return false, mapErr
}
