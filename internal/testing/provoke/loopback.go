package provoke

import (
	"errors"
	"fmt"
	"time"
)

// PageAlloc is one kmem:mm_page_alloc hit, as tracefs printed it.
type PageAlloc struct {
	Order int
	GFP   string // the kernel's names, "GFP_NOWAIT|__GFP_COMP|..."
	Tid   int
}

// LoopbackReport is what LoopbackTraffic did and what tracefs saw.
type LoopbackReport struct {
	Report
	Bytes int // sent and received
	// Allocs are every kmem:mm_page_alloc hit of the child's threads (by
	// comm) that passed the caller's filter while the traffic ran.
	Allocs []PageAlloc
}

// LoopbackTraffic makes a child send bytes to itself over a TCP
// connection on 127.0.0.1, from its worker thread, and records every
// kmem:mm_page_alloc hit with the child's comm that also matches filter
// (ftrace syntax, "" for all) in a private tracefs instance. mark is
// called just before the traffic starts and just after it ends (the
// child is idle at both), so a caller can read its own counters over the
// same window. Sending through loopback allocates what a network stack
// does: page fragments for the data (skb_page_frag_refill first tries a
// 32 KiB block without direct reclaim), skbs, and in softirq context the
// receive side's, all in the sender's name.
func LoopbackTraffic(bytes int, filter string, mark func(), opts ...Option) (rep LoopbackReport, err error) {
	cfg := newConfig("mt-loopback", 60*time.Second, opts)
	if bytes < 1 {
		return rep, fmt.Errorf("sending loopback traffic: %d bytes, want at least 1", bytes)
	}
	start := time.Now()
	s, err := newSession(hierarchy{}, cfg, 0, false)
	if err != nil {
		return rep, err
	}
	defer func() { rep.Duration = time.Since(start); err = errors.Join(err, s.close()) }()
	// By comm rather than tid: the child's main thread shares it, and the
	// caller's counters, filtered by comm too, count it as well.
	f := fmt.Sprintf("comm == %q", s.child.Comm)
	if filter != "" {
		f += " && (" + filter + ")"
	}
	if err := s.countFilter("kmem", "mm_page_alloc", f); err != nil {
		return rep, err
	}
	mark()
	var res loopbackResult
	err = s.child.call("loopback", loopbackArgs{Bytes: bytes}, &res)
	mark()
	if err != nil {
		return rep, err
	}
	rep.Pid, rep.Tids, rep.Comm = s.child.Pid, []int{s.child.Tid}, s.child.Comm
	rep.Syscall = "write/read on a TCP connection over 127.0.0.1"
	rep.Bytes = res.Bytes
	n, err := s.counter.Count()
	if err != nil {
		return rep, err
	}
	hits, err := s.counter.Hits()
	if err != nil {
		return rep, err
	}
	rep.Events = n
	if uint64(len(hits)) != n {
		return rep, fmt.Errorf("sending loopback traffic: tracefs counted %d allocations but holds %d: its buffer overflowed", n, len(hits))
	}
	for _, h := range hits {
		rep.Allocs = append(rep.Allocs, PageAlloc{Order: int(h.Int("order", -1)), GFP: h.Fields["gfp_flags"], Tid: h.Tid})
	}
	rep.addHits(hits)
	return rep, nil
}
