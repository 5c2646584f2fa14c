package verify

import (
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/decode/decode"
	"github.com/memtrace/memtrace/internal/event"
)

const (
	mib = 1 << 20
	// Flag values as the kernel programs report them.
	mapSharedAnon = 0x21
	mapHugetlb    = 0x40000
	mapHuge1GB    = 30 << 26
	mapHuge2MB    = 21 << 26
	ipcCreat      = 0o1000
	ipcExcl       = 0o2000
	shmHugetlb    = 0o4000
)

// ev builds a decoded hugetlb event: ret is the address or shmid, or a
// negative errno.
func ev(pid uint32, call event.Call, size, flags uint64, ret int64, after bool) event.Event {
	huge := false
	switch call {
	case event.CallMmap:
		huge = flags&mapHugetlb != 0
	case event.CallShmget:
		huge = flags&shmHugetlb != 0
	}
	h := &event.Hugetlb{Call: call, Size: size, Flags: event.Hex(flags), HugeRequest: huge, AfterHugeFailure: after,
		Result: ret, OK: ret >= 0}
	if h.OK {
		switch call {
		case event.CallMmap:
			a := event.Hex(ret)
			h.Address = &a
		case event.CallShmget:
			id := ret
			h.ShmID = &id
		case event.CallShmat:
			a := event.Hex(ret)
			h.Address = &a
		}
	}
	e := event.Event{Kind: event.KindHugetlb, Time: time.Unix(1700000000, 0), Task: event.Task{Pid: pid, Tid: pid, Comm: "db"}, Hugetlb: h}
	(&decode.Decoder{HugePageSize: 2 * mib}).Event(&e)
	return e
}

func shmat(pid uint32, shmid int64, ret int64) event.Event {
	e := ev(pid, event.CallShmat, 0, 0, ret, false)
	e.Hugetlb.ShmID = &shmid
	return e
}

func analyze(events ...event.Event) (*Analyzer, Outcome) {
	a := NewAnalyzer(64 * mib)
	a.BasePageSize = 4096
	for _, e := range events {
		a.Add(e)
	}
	return a, a.Outcome()
}

// PostgreSQL with huge_pages=try and an empty pool: mmap(MAP_HUGETLB) of
// the size rounded to 2 MiB fails, the same memory is mapped on 4 KiB
// pages, then the 56-byte System V header is created (the kernel marks it
// too: it comes after a failure).
func TestPostgresFallback(t *testing.T) {
	a, o := analyze(
		ev(100, event.CallMmap, 144*mib, mapSharedAnon|mapHugetlb, -12, false),
		ev(100, event.CallMmap, 143*mib+512*1024, mapSharedAnon, 0x7f0000000000, true),
		ev(100, event.CallShmget, 56, ipcCreat|ipcExcl|0o600, 32782, true),
		shmat(100, 32782, 0x7f1000000000),
	)
	if o.Verdict != FellBack || o.Verdict.ExitCode() != 1 {
		t.Fatalf("verdict %s, want fell_back", o.Verdict)
	}
	fb := a.Fallbacks()
	if len(fb) != 1 || fb[0].Replacement != 1 || len(fb[0].Failed) != 1 || fb[0].Failed[0] != 0 {
		t.Fatalf("fallbacks %+v, want the failed mmap paired with the next mmap only", fb)
	}
	want := "fell back: 144 MiB requested with MAP_HUGETLB (2 MiB pages) failed with ENOMEM, then mapped with 4 KiB pages"
	if fb[0].Summary != want {
		t.Errorf("summary\n got %q\nwant %q", fb[0].Summary, want)
	}
	if c := a.Call(3); c.Size != 56 || c.Huge {
		t.Errorf("shmat did not take its segment's size: %+v", c)
	}
	if !strings.Contains(o.Summary, "144 MiB requested with MAP_HUGETLB") {
		t.Errorf("outcome summary %q", o.Summary)
	}
}

func TestPostgresOnHugePages(t *testing.T) {
	_, o := analyze(
		ev(100, event.CallMmap, 144*mib, mapSharedAnon|mapHugetlb, 0x7f0000000000, false),
		ev(100, event.CallShmget, 56, ipcCreat|ipcExcl|0o600, 1, false),
	)
	if o.Verdict != OnHugePages || o.Verdict.ExitCode() != 0 {
		t.Fatalf("verdict %s, want on_huge_pages", o.Verdict)
	}
	if len(o.Findings) != 1 || !strings.Contains(o.Findings[0], "144 MiB mapped with MAP_HUGETLB (2 MiB pages)") {
		t.Errorf("findings %q", o.Findings)
	}
}

// MariaDB walks page sizes from the largest: 1 GiB pages fail (no pool),
// 2 MiB pages work. That is huge pages.
func TestMariaDBWalksPageSizes(t *testing.T) {
	_, o := analyze(
		ev(7, event.CallMmap, 1024*mib, mapSharedAnon|mapHugetlb|mapHuge1GB, -22, false),
		ev(7, event.CallMmap, 130*mib, mapSharedAnon|mapHugetlb|mapHuge2MB, 0x7f0000000000, false),
	)
	if o.Verdict != OnHugePages {
		t.Fatalf("verdict %s (%s), want on_huge_pages", o.Verdict, o.Summary)
	}
	if want := "db[7]: 130 MiB mapped with MAP_HUGETLB (2 MiB pages), after 1 GiB pages failed with EINVAL"; len(o.Findings) != 1 || o.Findings[0] != want {
		t.Errorf("findings %q, want %q", o.Findings, want)
	}
}

// MariaDB with neither pool: both sizes fail, then base pages.
func TestMariaDBFallsBackAfterTwoSizes(t *testing.T) {
	a, o := analyze(
		ev(7, event.CallMmap, 1024*mib, mapSharedAnon|mapHugetlb|mapHuge1GB, -22, false),
		ev(7, event.CallMmap, 130*mib, mapSharedAnon|mapHugetlb|mapHuge2MB, -12, false),
		ev(7, event.CallMmap, 129*mib, mapSharedAnon, 0x7f0000000000, true),
	)
	if o.Verdict != FellBack {
		t.Fatalf("verdict %s, want fell_back", o.Verdict)
	}
	want := "fell back: 1 GiB requested with MAP_HUGETLB (1 GiB pages) failed with EINVAL, then 130 MiB requested with MAP_HUGETLB (2 MiB pages) failed with ENOMEM, then mapped with 4 KiB pages"
	if got := a.Fallbacks()[0].Summary; got != want {
		t.Errorf("summary\n got %q\nwant %q", got, want)
	}
}

// Oracle before 11.2.0.3: shmget(SHM_HUGETLB) of the SGA fails, the SGA is
// created on base pages.
func TestOracleShmgetFallback(t *testing.T) {
	a, o := analyze(
		ev(9, event.CallShmget, 9000*mib, ipcCreat|ipcExcl|shmHugetlb|0o660, -12, false),
		ev(9, event.CallShmget, 9000*mib, ipcCreat|ipcExcl|0o660, 65538, true),
		shmat(9, 65538, 0x60000000),
	)
	if o.Verdict != FellBack {
		t.Fatalf("verdict %s, want fell_back", o.Verdict)
	}
	want := "fell back: 8.8 GiB requested with SHM_HUGETLB (2 MiB pages) failed with ENOMEM, then created as a System V segment with 4 KiB pages"
	if got := a.Fallbacks()[0].Summary; got != want {
		t.Errorf("summary\n got %q\nwant %q", got, want)
	}
	if c := a.Call(2); c.Size != 9000*mib {
		t.Errorf("shmat size %d", c.Size)
	}
}

func TestNotRequested(t *testing.T) {
	_, o := analyze(ev(5, event.CallMmap, 128*mib, mapSharedAnon, 0x7f0000000000, false))
	if o.Verdict != NotRequested || o.Verdict.ExitCode() != 1 {
		t.Fatalf("verdict %s, want not_requested", o.Verdict)
	}
	// Partly: one mapping on huge pages, another never asked.
	_, o = analyze(
		ev(5, event.CallMmap, 128*mib, mapSharedAnon|mapHugetlb, 0x7f0000000000, false),
		ev(5, event.CallMmap, 256*mib, mapSharedAnon, 0x7f1000000000, false),
	)
	if o.Verdict != NotRequested || !strings.Contains(o.Summary, "1 other mapping(s) did get huge pages") {
		t.Fatalf("verdict %s (%s), want not_requested with a note", o.Verdict, o.Summary)
	}
}

// huge_pages=on with an empty pool: the request fails and PostgreSQL
// exits; nothing replaces it.
func TestHugeRequestFailed(t *testing.T) {
	_, o := analyze(ev(5, event.CallMmap, 144*mib, mapSharedAnon|mapHugetlb, -12, false))
	if o.Verdict != HugeRequestFailed || o.Verdict.ExitCode() != 1 {
		t.Fatalf("verdict %s, want huge_request_failed", o.Verdict)
	}
}

func TestNothingSeen(t *testing.T) {
	_, o := analyze(ev(5, event.CallShmget, 56, ipcCreat|0o600, 3, false))
	if o.Verdict != NothingSeen || o.Verdict.ExitCode() != 1 || !strings.Contains(o.Summary, "64 MiB or more") {
		t.Fatalf("verdict %s (%s), want nothing_seen", o.Verdict, o.Summary)
	}
	if a := NewAnalyzer(64 * mib); a.Add(event.Event{Kind: event.KindAllocFailure}) != nil {
		t.Error("a non-hugetlb event became a call")
	}
}

// A large marked mapping whose failure happened before memtrace watched
// is still a fallback.
func TestFallbackFailureUnseen(t *testing.T) {
	a, o := analyze(ev(5, event.CallMmap, 200*mib, mapSharedAnon, 0x7f0000000000, true))
	if o.Verdict != FellBack || !strings.Contains(a.Fallbacks()[0].Summary, "did not see") {
		t.Fatalf("verdict %s, fallbacks %+v", o.Verdict, a.Fallbacks())
	}
}

// Failures and replacements are paired per process: another process's
// mapping does not replace a failure.
func TestPairingPerProcess(t *testing.T) {
	a, o := analyze(
		ev(1, event.CallMmap, 144*mib, mapSharedAnon|mapHugetlb, -12, false),
		ev(2, event.CallMmap, 144*mib, mapSharedAnon, 0x7f0000000000, false),
	)
	if len(a.Fallbacks()) != 0 || o.Verdict != FellBack && o.Verdict != HugeRequestFailed {
		t.Fatalf("fallbacks %+v verdict %s", a.Fallbacks(), o.Verdict)
	}
	if o.Verdict != HugeRequestFailed {
		t.Errorf("verdict %s, want huge_request_failed (pid 1 failed, pid 2 never asked)", o.Verdict)
	}
	// A small mapping after the failure is not the replacement.
	a, _ = analyze(
		ev(1, event.CallMmap, 144*mib, mapSharedAnon|mapHugetlb, -12, false),
		ev(1, event.CallShmget, 56, ipcCreat|0o600, 4, true),
	)
	if len(a.Fallbacks()) != 0 {
		t.Errorf("56-byte segment paired: %+v", a.Fallbacks())
	}
}

func TestDecisive(t *testing.T) {
	a := NewAnalyzer(64 * mib)
	a.Add(ev(1, event.CallShmget, 56, ipcCreat|0o600, 4, false))
	if a.Decisive() {
		t.Error("a small segment is decisive")
	}
	a.Add(ev(1, event.CallMmap, 64*mib, mapSharedAnon|mapHugetlb, -12, false))
	if !a.Decisive() {
		t.Error("a failed large request is not decisive")
	}
}
