package provoke

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// HugeFaultRequest says how HugeFaults maps and touches huge pages.
type HugeFaultRequest struct {
	Pages int // huge pages of the default size to map and touch; 0 means 2
	// Private maps MAP_PRIVATE instead of MAP_SHARED.
	Private bool
	// NoReserve adds MAP_NORESERVE: no pages are reserved at mmap, so a
	// touch with the pool short gets SIGBUS instead of mmap failing.
	NoReserve bool
	// Contend runs threads in the child that map and unmap a page in a
	// loop while the huge pages are touched: they hold or wait for the
	// process's mmap lock for writing, which a BPF program can only try
	// to take (bpf_find_vma fails with EBUSY), as in a busy database
	// whose other threads map memory while one of them faults.
	Contend bool
}

// HugeFaultReport is what HugeFaults did and what tracefs counted.
type HugeFaultReport struct {
	Pid, Tid int
	Comm     string
	Start    uint64 // address of the mapping
	Length   uint64
	PageSize uint64
	Flags    uint64 // mmap flags
	// Faulted lists the addresses whose touch got SIGBUS (the child turns
	// the signal into a recovered panic and goes on).
	Faulted []uint64
	// Events counts signal:signal_generate hits with sig == SIGBUS sent
	// to the child's worker thread, from a private tracefs instance.
	Events uint64
}

type hugeFaultArgs struct {
	Length, PageSize int
	Flags            int
	Contend          bool
}

type hugeFaultResult struct {
	Start   uint64
	Faulted []uint64
	Errno   int
}

// HugeFaults maps huge pages as req says from a child process (worker
// thread named by WithComm, default "mt-hugefault") and writes to each,
// so that a page the kernel cannot provide is a real SIGBUS. Whether it
// can depends on the pool and the cgroup: see ReserveHugePages. The
// mapping is removed before HugeFaults returns.
func HugeFaults(req HugeFaultRequest, opts ...Option) (rep HugeFaultReport, err error) {
	cfg := newConfig("mt-hugefault", 30*time.Second, opts)
	kb, err := meminfo("Hugepagesize")
	if err != nil {
		return rep, fmt.Errorf("provoking huge-page faults: %w", err)
	}
	args := hugeFaultArgs{PageSize: int(kb * 1024), Flags: hugeFaultFlags(req.Private, req.NoReserve), Contend: req.Contend}
	pages := req.Pages
	if pages == 0 {
		pages = 2
	}
	args.Length = pages * args.PageSize
	s, err := newSession(hierarchy{}, cfg, 0, false)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	if err := s.count("signal", "signal_generate", "sig == 7"); err != nil {
		return rep, err
	}
	var res hugeFaultResult
	if err := s.child.call("hugefault", args, &res); err != nil {
		return rep, err
	}
	if res.Errno != 0 {
		return rep, fmt.Errorf("provoking huge-page faults: mmap(%d bytes, flags %#x): errno %d", args.Length, args.Flags, res.Errno)
	}
	rep = HugeFaultReport{
		Pid: s.child.Pid, Tid: s.child.Tid, Comm: s.child.Comm, Start: res.Start,
		Length: uint64(args.Length), PageSize: uint64(args.PageSize), Flags: uint64(args.Flags), Faulted: res.Faulted,
	}
	rep.Events, err = s.counter.Count()
	return rep, err
}

// sigbusEnv, when set to a number of huge pages, makes a binary importing
// this package map that many with MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB|
// MAP_NORESERVE and write to each with SIGBUS at its default action: a
// process that dies of a huge-page fault, as PostgreSQL does.
const sigbusEnv = "MEMTRACE_PROVOKE_SIGBUS"

// SigbusCommand returns a command line (through env(1)) that runs this
// binary as a process that maps pages huge pages shared, without a
// reservation (MAP_NORESERVE) unless reserve, touches them and dies of
// SIGBUS when the pool or a hugetlb cgroup limit cannot provide one. It
// exits 0 if every page was provided, 4 if mmap failed.
func SigbusCommand(pages int, reserve bool) ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this binary: %w", err)
	}
	v := strconv.Itoa(pages)
	if reserve {
		v += ",reserve"
	}
	return []string{"env", sigbusEnv + "=" + v, exe, "-test.run=^$"}, nil
}
