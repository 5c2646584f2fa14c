package provoke

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func testAllocFailures(t *testing.T, method Method, n int, wantOrder int64) {
	requireRoot(t, "creates a memory cgroup and reads tracefs")
	comm := testComm("af")
	c := counter(t, "kmem", "mm_page_alloc", PageAllocFailureFilter+` && comm == "`+comm+`"`)

	rep, err := AllocFailures(n, WithComm(comm), WithMethod(method))
	t.Logf("report: %+v", rep)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != n {
		t.Errorf("Failed = %d, want %d", rep.Failed, n)
	}
	// Each failing call allocates (and fails) exactly once, so the
	// independent counter must agree exactly.
	if got := count(t, c); got != uint64(n) || rep.Events != uint64(n) {
		t.Errorf("mm_page_alloc with pfn == -1: counter %d, report %d, want %d", got, rep.Events, n)
	}
	hs := hits(t, c)
	checkAttribution(t, rep, hs)
	for _, h := range hs {
		if (wantOrder >= 0 && h.Int("order", -1) != wantOrder) || !strings.Contains(h.Fields["gfp_flags"], "ACCOUNT") {
			t.Errorf("hit order %s gfp_flags %s, want order %d and an accounted allocation", h.Fields["order"], h.Fields["gfp_flags"], wantOrder)
		}
	}
}

func TestAllocFailuresPipeResize(t *testing.T) {
	requireRoot(t, "creates a memory cgroup and reads tracefs")
	requireV1(t)
	// 256 struct pipe_buffer of 40 bytes: order 2 with 4 KiB pages.
	order := int64(2)
	if os.Getpagesize() != 4096 {
		order = -1
	}
	testAllocFailures(t, PipeResize, 5, order)
}

func TestAllocFailuresBPFMap(t *testing.T) {
	testAllocFailures(t, BPFMap, 3, 0)
}

func TestAllocFailuresDefault(t *testing.T) {
	requireRoot(t, "creates a memory cgroup and reads tracefs")
	rep, err := AllocFailures(1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events < 1 || rep.Comm != "mt-allocfail" || rep.Pid == 0 {
		t.Errorf("report %+v", rep)
	}
}

func TestAllocFailuresPipeResizeRefusedOnV2(t *testing.T) {
	requireRoot(t, "creates a memory cgroup")
	h, err := memoryHierarchy()
	if err != nil || !h.v2 {
		t.Skip("memory controller is not on cgroup v2")
	}
	if _, err := AllocFailures(1, WithMethod(PipeResize)); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
}

func TestAllocFailuresBadArgs(t *testing.T) {
	if _, err := AllocFailures(0); err == nil {
		t.Error("n = 0 accepted")
	}
	requireRoot(t, "finds the memory cgroup")
	if _, err := AllocFailures(1, WithMethod("nope")); err == nil {
		t.Error("unknown method accepted")
	}
}
