package hugepages

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// Status is the part of /proc/PID/status (and limits) this package needs.
// procfs's ProcStatus has no PPid or Groups, which huge-page permission
// checks (vm.hugetlb_shm_group) and process trees need, so status is
// parsed here; limits come from procfs.
type Status struct {
	Pid  int    `json:"pid"`
	PPid int    `json:"ppid"`
	Comm string `json:"comm"`
	UID  uint32 `json:"uid"` // effective
	GID  uint32 `json:"gid"` // effective
	// Groups are the supplementary groups.
	Groups []uint32 `json:"groups,omitempty"`
	// VmPTEKB is the memory of this process's page tables.
	VmPTEKB uint64 `json:"vm_pte_kb"`
	// HugetlbKB is the hugetlb memory faulted into this process (status
	// "HugetlbPages", Linux 4.4+).
	HugetlbKB uint64 `json:"hugetlb_kb"`
	// CPUsAllowed is Cpus_allowed_list: the CPUs it may run on.
	CPUsAllowed string `json:"cpus_allowed,omitempty"`
	// CapEff is the effective capability set (CAP_IPC_LOCK = bit 14
	// bypasses vm.hugetlb_shm_group and the memlock limit).
	CapEff uint64 `json:"-"`
}

// capIPCLock is CAP_IPC_LOCK from linux/capability.h.
const capIPCLock = 14

// HasIPCLock reports CAP_IPC_LOCK in the effective set.
func (s Status) HasIPCLock() bool { return s.CapEff&(1<<capIPCLock) != 0 }

// InGroup reports whether gid is the effective or a supplementary group,
// the test the kernel makes for vm.hugetlb_shm_group.
func (s Status) InGroup(gid uint32) bool {
	if s.GID == gid {
		return true
	}
	for _, g := range s.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// ReadStatus reads procRoot/PID/status.
func ReadStatus(procRoot string, pid int) (Status, error) {
	path := filepath.Join(procRoot, strconv.Itoa(pid), "status")
	data, err := os.ReadFile(path)
	if err != nil {
		return Status{}, err
	}
	s, err := ParseStatus(data)
	if err != nil {
		return Status{}, fmt.Errorf("reading %s: %w", path, err)
	}
	s.Pid = pid
	return s, nil
}

// ParseStatus parses the content of a status file.
func ParseStatus(data []byte) (Status, error) {
	var s Status
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		var err error
		switch k {
		case "Name":
			s.Comm = v
		case "PPid":
			s.PPid, err = strconv.Atoi(v)
		case "Uid":
			s.UID, err = secondField(v)
		case "Gid":
			s.GID, err = secondField(v)
		case "Groups":
			for _, f := range strings.Fields(v) {
				g, e := strconv.ParseUint(f, 10, 32)
				if e != nil {
					err = e
					break
				}
				s.Groups = append(s.Groups, uint32(g))
			}
		case "VmPTE":
			s.VmPTEKB, err = parseKB([]byte(v))
		case "HugetlbPages":
			s.HugetlbKB, err = parseKB([]byte(v))
		case "Cpus_allowed_list":
			s.CPUsAllowed = v
		case "CapEff":
			s.CapEff, err = strconv.ParseUint(v, 16, 64)
		}
		if err != nil {
			return s, fmt.Errorf("%s: %w", k, err)
		}
	}
	return s, sc.Err()
}

// secondField returns the effective id of "real effective saved fs".
func secondField(v string) (uint32, error) {
	f := strings.Fields(v)
	if len(f) < 2 {
		return 0, fmt.Errorf("want 4 ids, got %q", v)
	}
	n, err := strconv.ParseUint(f[1], 10, 32)
	return uint32(n), err
}

// Unlimited is how a limit of "unlimited" reads.
const Unlimited = ^uint64(0)

// MemlockLimit returns the soft RLIMIT_MEMLOCK of a process in bytes
// (Unlimited for "unlimited"), read with procfs.
func MemlockLimit(procRoot string, pid int) (uint64, error) {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return 0, err
	}
	p, err := fs.Proc(pid)
	if err != nil {
		return 0, err
	}
	l, err := p.Limits()
	if err != nil {
		return 0, err
	}
	return l.LockedMemory, nil
}
