package verify

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/memtrace/memtrace/internal/command/hugepages"
	"github.com/memtrace/memtrace/internal/event"
)

// Confirmation is the kernel's own account of a mapping the tracer saw,
// from /proc/PID/smaps and /proc/sysvipc/shm after startup.
type Confirmation struct {
	Seq int    `json:"seq"` // the call confirmed
	Pid uint32 `json:"pid"`
	// What names the mapping: "mapping at 0x7f…" or "segment 32769".
	What  string `json:"what"`
	Found bool   `json:"found"`
	// Note says why a mapping was not found (process exited, unmapped,
	// segment removed).
	Note             string `json:"note,omitempty"`
	Path             string `json:"path,omitempty"`
	SizeKB           uint64 `json:"size_kb"`
	KernelPageSizeKB uint64 `json:"kernel_page_size_kb"`
	Hugetlb          bool   `json:"hugetlb"`
	// FaultedKB is Shared_Hugetlb + Private_Hugetlb: huge pages touched
	// so far (the rest are reserved and come on first touch).
	FaultedKB uint64 `json:"faulted_kb"`
	// Attachers are the processes that have a System V segment mapped.
	Attachers []hugepages.Attacher `json:"attachers,omitempty"`
	// Agrees is false when the kernel shows other pages than the tracer
	// implied (a "successful" huge request that is not hugetlb).
	Agrees bool `json:"agrees"`
}

// Confirm looks up every successful large call (and every huge one) in
// the kernel's tables.
func Confirm(procRoot string, a *Analyzer) []Confirmation {
	var out []Confirmation
	var segs []hugepages.Segment
	var segUses []hugepages.SegmentUse
	segsRead := false
	for _, c := range a.Calls() {
		if !c.OK || !(c.Large || c.Huge) {
			continue
		}
		switch {
		case c.Call == event.CallMmap && c.Address != nil:
			out = append(out, confirmMapping(procRoot, c))
		case c.Call == event.CallShmget && c.ShmID != nil:
			if !segsRead {
				segsRead = true
				segs, _ = hugepages.ReadSysVShm(procRoot)
				scan, _ := hugepages.ScanProcesses(hugepages.ScanOptions{ProcRoot: procRoot, MinSharedKB: max(a.MinSize>>10, 1)})
				segUses = hugepages.AttachSegments(segs, scan.Processes)
			}
			out = append(out, confirmSegment(c, segUses))
		}
	}
	return out
}

func confirmMapping(procRoot string, c Call) Confirmation {
	addr := uint64(*c.Address)
	cf := Confirmation{Seq: c.Seq, Pid: c.Pid, What: fmt.Sprintf("mapping at %#x", addr)}
	ms, err := hugepages.ReadSmaps(procRoot, int(c.Pid))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			cf.Note = "the process has exited"
		} else {
			cf.Note = "reading smaps: " + err.Error()
		}
		return cf
	}
	for _, m := range ms {
		if addr < m.Start || addr >= m.End {
			continue
		}
		cf.Found = true
		cf.Path, cf.SizeKB, cf.KernelPageSizeKB = m.Path, m.SizeKB, m.KernelPageSizeKB
		cf.Hugetlb, cf.FaultedKB = m.Hugetlb(), m.HugetlbFaultedKB()
		cf.Agrees = cf.Hugetlb == c.Huge
		if m.Start != addr {
			cf.Note = fmt.Sprintf("now part of the mapping at %#x", m.Start)
		}
		return cf
	}
	cf.Note = "no longer mapped"
	return cf
}

func confirmSegment(c Call, segs []hugepages.SegmentUse) Confirmation {
	cf := Confirmation{Seq: c.Seq, Pid: c.Pid, What: fmt.Sprintf("segment %d", *c.ShmID)}
	for _, s := range segs {
		if s.ShmID != *c.ShmID {
			continue
		}
		cf.Found = true
		cf.SizeKB = (s.Size + 1023) >> 10
		cf.Attachers = s.Attachers
		switch {
		case s.OnHugePages != nil:
			cf.Hugetlb = *s.OnHugePages
			cf.KernelPageSizeKB = s.PageSizeKB
			cf.Agrees = cf.Hugetlb == c.Huge
		case len(s.Attachers) == 0:
			cf.Note = "attached by no process: its page size cannot be read"
			cf.Agrees = true
		default:
			cf.Note = "its attachers' smaps could not be read"
			cf.Agrees = true
		}
		return cf
	}
	cf.Note = "the segment has been removed"
	return cf
}
