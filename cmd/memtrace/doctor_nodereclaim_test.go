package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/command/doctor"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// TestDoctorMeasureNodeReclaim: `doctor --measure`'s probes count the node
// reclaim stalls (vm.zone_reclaim_mode) of a real reader exactly as an
// independent tracefs counter on its thread does. provoke.NodeReclaim sets
// the mode to 1 for the read and brings the node's free memory down to
// its low watermarks (through the huge page pool when much is free), and
// puts both back.
func TestDoctorMeasureNodeReclaim(t *testing.T) {
	privtest.RequireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	attached := make(chan error, 1)
	start := func() (doctor.MeasureSession, error) {
		s, err := measureProbes()
		attached <- err
		return s, err
	}
	type result struct {
		m   *doctor.Measurement
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := doctor.Measure(ctx, start, 10*time.Minute, 0, "/proc")
		done <- result{m, err}
	}()
	if err := <-attached; err != nil {
		t.Fatalf("starting the measurement: %v", err)
	}
	comm := "mt-doc-nodercl"
	rep, perr := provoke.NodeReclaim(provoke.WithComm(comm))
	cancel()
	res := <-done
	if errors.Is(perr, errors.ErrUnsupported) {
		t.Skipf("node reclaim cannot be provoked here: %v", perr)
	}
	if perr != nil {
		t.Fatalf("provoking node reclaim: %v", perr)
	}
	if res.err != nil {
		t.Fatalf("measuring: %v", res.err)
	}
	nr := res.m.NodeReclaim
	if nr == nil {
		t.Fatalf("node reclaim not measured: %s", res.m.NodeReclaimUnmeasured)
	}
	begins, ends := rep.Counts["vmscan:mm_vmscan_node_reclaim_begin"], rep.Counts["vmscan:mm_vmscan_node_reclaim_end"]
	var got doctor.NodeReclaimProc
	for _, p := range nr.Processes {
		if int(p.Pid) == rep.Pid {
			got = p
		}
	}
	t.Logf("%s: tracefs %d begins, %d ends on the reader; measured %d stalls in all, %v, longest %v, %d pages; the reader %+v",
		rep.Syscall, begins, ends, nr.Stalls, time.Duration(nr.TotalNs), time.Duration(nr.MaxNs), nr.Reclaimed, got)
	// tracefs counts the reader's worker thread, doctor its process: the
	// main thread writing the reply in the window may node-reclaim too.
	if begins == 0 || begins != ends || got.Stalls < begins || got.Stalls > begins+2 || got.Comm != comm || got.TotalNs == 0 {
		t.Errorf("the reader's node reclaim: measured %+v, tracefs %d begins, %d ends", got, begins, ends)
	}
	if nr.Stalls < got.Stalls || nr.MaxNs == 0 || nr.Reclaimed == 0 {
		t.Errorf("totals %+v", nr)
	}
}
