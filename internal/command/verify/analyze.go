package verify

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/event"
)

// Call is one huge-page request or large shared mapping seen by the
// tracer, with what verify made of it.
type Call struct {
	Seq       int        `json:"seq"`
	Time      time.Time  `json:"time"`
	Pid       uint32     `json:"pid"`
	Tid       uint32     `json:"tid"`
	Comm      string     `json:"comm"`
	Call      event.Call `json:"call"`
	Size      uint64     `json:"size"`
	Flags     event.Hex  `json:"flags"`
	FlagNames string     `json:"flag_names"`
	// Huge is a request for huge pages (MAP_HUGETLB, SHM_HUGETLB);
	// PageSize is the page size asked for, the base page otherwise.
	Huge     bool       `json:"huge"`
	PageSize uint64     `json:"page_size"`
	OK       bool       `json:"ok"`
	Errno    string     `json:"errno,omitempty"`
	Result   int64      `json:"result"`
	Address  *event.Hex `json:"address,omitempty"`
	ShmID    *int64     `json:"shmid,omitempty"`
	Key      *int64     `json:"key,omitempty"`
	// AfterHugeFailure is the kernel program's mark: a mapping without
	// huge pages by a process whose last huge-page request failed.
	AfterHugeFailure bool `json:"after_huge_failure"`
	// Large is Size >= the minimum size of interest.
	Large bool `json:"large"`
	// Cause explains a failed huge-page request.
	Cause *Cause `json:"cause,omitempty"`
}

// Fallback pairs failed huge-page requests with the mapping on base pages
// that replaced them.
type Fallback struct {
	Pid         uint32 `json:"pid"`
	Comm        string `json:"comm"`
	Failed      []int  `json:"failed"`      // Seq of the failed requests, in order
	Replacement int    `json:"replacement"` // Seq of the mapping that replaced them
	Summary     string `json:"summary"`
}

// Verdict is verify's answer.
type Verdict string

const (
	// OnHugePages: every large shared mapping asked for and got huge pages.
	OnHugePages Verdict = "on_huge_pages"
	// FellBack: a huge-page request failed and the memory was mapped
	// with base pages instead (PostgreSQL huge_pages=try, MySQL, Oracle
	// before 11.2.0.3).
	FellBack Verdict = "fell_back"
	// HugeRequestFailed: a huge-page request failed and nothing replaced
	// it; the database most likely refused to start (huge_pages=on).
	HugeRequestFailed Verdict = "huge_request_failed"
	// NotRequested: large shared memory was mapped without asking for
	// huge pages at all.
	NotRequested Verdict = "not_requested"
	// NothingSeen: no large shared memory was mapped while verify
	// watched.
	NothingSeen Verdict = "nothing_seen"
)

// ExitCode is the deploy-gate status: 0 only when the memory is on huge
// pages.
func (v Verdict) ExitCode() int {
	if v == OnHugePages {
		return 0
	}
	return 1
}

// Analyzer pairs events as they arrive. It is not safe for concurrent use.
type Analyzer struct {
	// MinSize is the smallest mapping the verdict considers.
	MinSize uint64
	// BasePageSize is the page size of mappings without huge pages.
	BasePageSize uint64

	calls     []Call
	fallbacks []Fallback
	// pending holds, per process, the failed huge-page requests not yet
	// replaced or followed by a successful one.
	pending map[uint32][]int
	// segments remembers shmget results, so shmat calls get a size.
	segments map[int64]int
	// failedBefore marks processes with a failed huge request seen.
	failedBefore map[uint32]bool
	// recovered maps a failed huge request to the successful huge
	// request that followed it (another page size).
	recovered map[int]int
}

// NewAnalyzer returns an analyzer for mappings of at least minSize bytes.
func NewAnalyzer(minSize uint64) *Analyzer {
	return &Analyzer{MinSize: minSize, BasePageSize: uint64(os.Getpagesize())}
}

// Add records one decoded hugetlb event and returns the call it became,
// or nil for an event that is not a huge-page call.
func (a *Analyzer) Add(ev event.Event) *Call {
	h := ev.Hugetlb
	if h == nil {
		return nil
	}
	if a.pending == nil {
		a.pending = map[uint32][]int{}
		a.segments = map[int64]int{}
		a.failedBefore = map[uint32]bool{}
		a.recovered = map[int]int{}
	}
	c := Call{
		Seq: len(a.calls), Time: ev.Time, Pid: ev.Pid, Tid: ev.Tid, Comm: ev.Comm,
		Call: h.Call, Size: h.Size, Flags: h.Flags, FlagNames: h.FlagNames,
		Huge: h.HugeRequest, PageSize: a.BasePageSize, OK: h.OK, Errno: h.Errno, Result: h.Result,
		Address: h.Address, ShmID: h.ShmID, Key: h.Key, AfterHugeFailure: h.AfterHugeFailure,
	}
	if c.Huge {
		c.PageSize = h.HugePageSize
	}
	if c.Call == event.CallShmat && c.ShmID != nil {
		// shmat has no size of its own: take the segment's, when its
		// shmget was seen.
		if i, ok := a.segments[*c.ShmID]; ok {
			c.Size, c.PageSize, c.Huge = a.calls[i].Size, a.calls[i].PageSize, a.calls[i].Huge
		}
	}
	c.Large = c.Size >= a.MinSize && c.Size > 0
	a.calls = append(a.calls, c)
	a.pair(c.Seq)
	return &a.calls[c.Seq]
}

// pair follows each process's requests: failures wait for what replaces
// them.
func (a *Analyzer) pair(seq int) {
	c := &a.calls[seq]
	switch {
	case c.Call == event.CallShmat:
		return // attaching maps an existing segment; it neither asks nor replaces
	case c.Call == event.CallShmget && c.OK && c.ShmID != nil:
		a.segments[*c.ShmID] = seq
	}
	if c.Call == event.CallShmget && !c.OK && !c.Huge {
		return // a failed ordinary shmget (EEXIST on a key in use) replaces nothing
	}
	if c.Huge {
		if c.OK {
			// MariaDB walks page sizes from largest down: a success
			// after failures is still huge pages.
			for _, i := range a.pending[c.Pid] {
				a.recovered[i] = seq
			}
			delete(a.pending, c.Pid)
		} else {
			a.pending[c.Pid] = append(a.pending[c.Pid], seq)
			a.failedBefore[c.Pid] = true
		}
		return
	}
	failed := a.pending[c.Pid]
	if len(failed) == 0 {
		// The kernel marks every shared mapping after a failure until
		// the next successful huge request, so after one fallback the
		// mark says nothing new (PostgreSQL's header segment follows its
		// fallback mapping). Without a failure seen here, a large marked
		// mapping replaced a request made before memtrace watched.
		if !c.AfterHugeFailure || a.failedBefore[c.Pid] || !c.Large {
			return
		}
	}
	// A replacement maps about as much as was asked for: PostgreSQL and
	// MariaDB round the huge request up to whole huge pages, so the base
	// page mapping is a little smaller, never less than half. Anything
	// smaller (PostgreSQL's 56-byte header segment) is not the fallback.
	smallest := c.Size // a failure memtrace did not see: no size to compare
	if len(failed) > 0 {
		smallest = a.calls[failed[0]].Size
	}
	for _, i := range failed {
		smallest = min(smallest, a.calls[i].Size)
	}
	if c.Size*2 < smallest {
		return
	}
	delete(a.pending, c.Pid)
	f := Fallback{Pid: c.Pid, Comm: c.Comm, Failed: append([]int(nil), failed...), Replacement: seq}
	f.Summary = a.describe(f)
	a.fallbacks = append(a.fallbacks, f)
}

// describe words a fallback the way an operator would say it: "fell back:
// 144 MiB requested with MAP_HUGETLB (2 MiB pages) failed with ENOMEM, then
// mapped with 4 KiB pages".
func (a *Analyzer) describe(f Fallback) string {
	r := a.calls[f.Replacement]
	how := "mapped"
	if r.Call == event.CallShmget {
		how = "created as a System V segment"
	}
	if len(f.Failed) == 0 {
		return fmt.Sprintf("fell back: %s %s with %s pages after a failed huge-page request memtrace did not see",
			size(r.Size), how, size(r.PageSize))
	}
	s := "fell back: "
	for i, seq := range f.Failed {
		c := a.calls[seq]
		if i > 0 {
			s += ", then "
		}
		s += fmt.Sprintf("%s requested with %s (%s pages) failed with %s",
			size(c.Size), hugeFlag(c), size(c.PageSize), c.Errno)
	}
	return s + fmt.Sprintf(", then %s with %s pages", how, size(r.PageSize))
}

func hugeFlag(c Call) string {
	if c.Call == event.CallShmget {
		return "SHM_HUGETLB"
	}
	return "MAP_HUGETLB"
}

// Calls returns every call recorded, in arrival order.
func (a *Analyzer) Calls() []Call { return a.calls }

// Call returns the call with sequence number seq.
func (a *Analyzer) Call(seq int) *Call { return &a.calls[seq] }

// Fallbacks returns the pairs found so far.
func (a *Analyzer) Fallbacks() []Fallback { return a.fallbacks }

// Decisive reports whether a large mapping has been seen, huge or not:
// the point from which a quiet period can end the watch.
func (a *Analyzer) Decisive() bool {
	for _, c := range a.calls {
		if c.Large && c.Call != event.CallShmat {
			return true
		}
	}
	return false
}

// Outcome is the verdict and the findings behind it.
type Outcome struct {
	Verdict Verdict `json:"verdict"`
	Summary string  `json:"summary"`
	// Findings are one sentence per large mapping or failure, the
	// evidence for the verdict.
	Findings []string `json:"findings"`
}

// Outcome decides the verdict from the large mappings: any fallback or
// unreplaced failure, or large memory that never asked for huge pages,
// fails the gate.
func (a *Analyzer) Outcome() Outcome {
	var huge, fell, failed, plain []string
	replaced := map[int]bool{}
	inFallback := map[int]bool{}
	for _, f := range a.fallbacks {
		inFallback[f.Replacement] = true
		for _, i := range f.Failed {
			replaced[i] = true
		}
		r := a.calls[f.Replacement]
		if r.Large || a.anyLarge(f.Failed) {
			fell = append(fell, fmt.Sprintf("%s[%d]: %s", r.Comm, r.Pid, f.Summary))
		}
	}
	for _, c := range a.calls {
		if c.Call == event.CallShmat || !c.Large {
			continue
		}
		who := fmt.Sprintf("%s[%d]", c.Comm, c.Pid)
		switch {
		case c.Huge && c.OK:
			line := fmt.Sprintf("%s: %s %s with %s (%s pages)", who, size(c.Size), verb(c), hugeFlag(c), size(c.PageSize))
			for _, f := range a.calls {
				if s, ok := a.recovered[f.Seq]; ok && s == c.Seq {
					line += fmt.Sprintf(", after %s pages failed with %s", size(f.PageSize), f.Errno)
				}
			}
			huge = append(huge, line)
		case c.Huge && !replaced[c.Seq] && !a.isRecovered(c.Seq):
			failed = append(failed, fmt.Sprintf("%s: %s requested with %s (%s pages) failed with %s and nothing replaced it", who, size(c.Size), hugeFlag(c), size(c.PageSize), c.Errno))
		case !c.Huge && c.OK && !inFallback[c.Seq]:
			plain = append(plain, fmt.Sprintf("%s: %s %s with %s pages without asking for huge pages", who, size(c.Size), verb(c), size(c.PageSize)))
		}
	}
	o := Outcome{Findings: []string{}}
	o.Findings = append(o.Findings, fell...)
	o.Findings = append(o.Findings, failed...)
	o.Findings = append(o.Findings, plain...)
	o.Findings = append(o.Findings, huge...)
	switch {
	case len(fell) > 0:
		o.Verdict = FellBack
		o.Summary = "fell back to base pages: " + trimWho(fell[0])
	case len(failed) > 0:
		o.Verdict = HugeRequestFailed
		o.Summary = "huge-page request failed and nothing replaced it (the program probably refused to start)"
	case len(plain) > 0:
		o.Verdict = NotRequested
		o.Summary = "large shared memory mapped without asking for huge pages"
	case len(huge) > 0:
		o.Verdict = OnHugePages
		o.Summary = "large shared memory is on huge pages"
	default:
		o.Verdict = NothingSeen
		o.Summary = fmt.Sprintf("no shared memory of %s or more was mapped while memtrace watched", size(a.MinSize))
	}
	if o.Verdict != OnHugePages && len(huge) > 0 {
		o.Summary += fmt.Sprintf(" (%d other mapping(s) did get huge pages)", len(huge))
	}
	return o
}

func (a *Analyzer) isRecovered(seq int) bool {
	_, ok := a.recovered[seq]
	return ok
}

func (a *Analyzer) anyLarge(seqs []int) bool {
	for _, i := range seqs {
		if a.calls[i].Large {
			return true
		}
	}
	return false
}

func verb(c Call) string {
	if c.Call == event.CallShmget {
		return "segment created"
	}
	return "mapped"
}

// trimWho drops the "comm[pid]: fell back: " prefix for the summary line.
func trimWho(s string) string {
	const marker = "fell back: "
	if i := strings.Index(s, marker); i >= 0 {
		return s[i+len(marker):]
	}
	return s
}
