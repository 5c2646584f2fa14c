package provoke

import (
	"errors"
	"fmt"
	"math/bits"
	"time"

	"golang.org/x/sys/unix"
)

const (
	shmHugeTLB = 0o4000              // SHM_HUGETLB
	mapHugeTLB = unix.MAP_HUGETLB    // 0x40000
	hugeShift  = unix.MAP_HUGE_SHIFT // MAP_HUGE_* and SHM_HUGE_*: log2(size) << 26
)

// HugeOp is a pattern of huge page requests, as applications make them.
type HugeOp int

const (
	// ShmGet: shmget(IPC_PRIVATE, len, IPC_CREAT|0600|SHM_HUGETLB), then
	// shmctl(IPC_RMID). The pages are reserved at shmget, which fails with
	// ENOMEM when the pool cannot cover them.
	ShmGet HugeOp = iota
	// ShmAttach: ShmGet plus shmat, a write to every huge page, shmdt,
	// before IPC_RMID (x/sys's shmat first asks IPC_STAT for the size).
	ShmAttach
	// Mmap: mmap(NULL, len, PROT_READ|PROT_WRITE,
	// MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB, -1, 0), a write to every
	// huge page, munmap. Reserved at mmap, which fails with ENOMEM.
	Mmap
	// MmapFallback: Mmap, and on ENOMEM the same mmap without
	// MAP_HUGETLB, silently, like PostgreSQL with huge_pages=try.
	MmapFallback
)

func (o HugeOp) String() string {
	switch o {
	case ShmGet:
		return "shmget(SHM_HUGETLB)"
	case ShmAttach:
		return "shmget(SHM_HUGETLB)+shmat"
	case Mmap:
		return "mmap(MAP_HUGETLB)"
	case MmapFallback:
		return "mmap(MAP_HUGETLB) with fallback"
	}
	return fmt.Sprintf("HugeOp(%d)", int(o))
}

// HugeRequest says which requests Huge makes.
type HugeRequest struct {
	Op HugeOp
	// SizeKB selects the huge page size with SHM_HUGE_*/MAP_HUGE_* flags;
	// 0 uses the default size and no size flag, as most programs do.
	SizeKB uint64
	Pages  int // length in huge pages; 0 means 1
	Repeat int // how many times to do it; 0 means 1
}

type hugeArgs struct {
	Op       HugeOp
	Length   int
	PageSize int
	SizeBits int // flag bits selecting the page size, 0 for default
	Repeat   int
}

type hugeResult struct{ Calls []Call }

// Huge makes huge page requests from a child process whose worker thread
// is named by WithComm (default "mt-hugetlb") and reports each call in
// Report.Calls. Attempts counts the huge page requests (shmget with
// SHM_HUGETLB, mmap with MAP_HUGETLB), Failed those that failed with ENOMEM;
// both outcomes are results, not errors. Whether they succeed depends on
// the pool: see ReserveHugePages. Everything is unmapped, detached and
// removed (IPC_RMID) before Huge returns; an error is returned if any
// other call failed.
func Huge(req HugeRequest, opts ...Option) (rep Report, err error) {
	cfg := newConfig("mt-hugetlb", 30*time.Second, opts)
	start := time.Now()
	args := hugeArgs{Op: req.Op, Repeat: max(req.Repeat, 1)}
	sizeKB := req.SizeKB
	if sizeKB == 0 {
		if sizeKB, err = meminfo("Hugepagesize"); err != nil {
			return rep, fmt.Errorf("requesting huge pages: %w", err)
		}
	} else {
		args.SizeBits = bits.TrailingZeros64(sizeKB*1024) << hugeShift
	}
	args.PageSize = int(sizeKB * 1024)
	args.Length = max(req.Pages, 1) * args.PageSize

	ch, err := startChild(cfg.comm, start.Add(cfg.timeout))
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, ch.stop()) }()
	var res hugeResult
	if err := ch.call("huge", args, &res); err != nil {
		return rep, err
	}
	rep = Report{Pid: ch.Pid, Tids: []int{ch.Tid}, Comm: ch.Comm, Syscall: req.Op.String(), Calls: res.Calls}
	var errs []error
	for _, c := range res.Calls {
		switch {
		case c.Huge():
			rep.Attempts++
			if c.Errno == unix.ENOMEM {
				rep.Failed++
			} else if c.Errno != 0 {
				errs = append(errs, fmt.Errorf("%s(%d bytes, flags %#x): %w", c.Name, c.Length, c.Flags, c.Errno))
			}
		case c.Errno != 0:
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, c.Errno))
		}
	}
	rep.Duration = time.Since(start)
	if len(errs) > 0 {
		return rep, fmt.Errorf("requesting huge pages: %w", errors.Join(errs...))
	}
	return rep, nil
}
