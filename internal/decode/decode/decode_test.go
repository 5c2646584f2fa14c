package decode

import (
	"os"
	"reflect"
	"testing"

	"github.com/memtrace/memtrace/internal/decode/migratetype"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/pkg/gfp"
)

func table(t *testing.T) *gfp.Table {
	t.Helper()
	b, err := os.ReadFile("../../../pkg/gfp/testdata/6.18-mm_page_alloc.format")
	if err != nil {
		t.Fatalf("reading the 6.18 format file: %v", err)
	}
	tb, err := gfp.FromFormat(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestAllocFailureNames(t *testing.T) {
	d := &Decoder{GFP: table(t), Migratetypes: migratetype.Default(),
		Stacks: func(int32) ([]uint64, error) { return []uint64{1, 2}, nil }}
	ev := event.Event{Kind: event.KindAllocFailure, AllocFailure: &event.AllocFailure{Order: 1, GFPFlags: 0x820, Migratetype: 0, StackID: 3}}
	d.Event(&ev)
	a := ev.AllocFailure
	if a.GFP != "GFP_ATOMIC" || a.GFPClass != "atomic" || !a.Atomic || a.MigratetypeName != "Unmovable" {
		t.Errorf("%+v", a)
	}
	if !reflect.DeepEqual(a.Stack, []string{"0x1", "0x2"}) {
		t.Errorf("stack without symbols: %v", a.Stack)
	}
}

func TestHugetlbNames(t *testing.T) {
	d := &Decoder{HugePageSize: 2 << 20}
	fd := int32(-1)
	ev := event.Event{Kind: event.KindHugetlb, Hugetlb: &event.Hugetlb{
		Call: event.CallMmap, Flags: 0x40021 | 30<<26, ProtBits: 3, Fd: &fd, HugeRequest: true, Result: -12,
	}}
	d.Event(&ev)
	h := ev.Hugetlb
	if h.Errno != "ENOMEM" || h.HugePageSize != 1<<30 || h.Prot != "PROT_READ|PROT_WRITE" {
		t.Errorf("%+v", h)
	}
	ev = event.Event{Kind: event.KindHugetlb, Hugetlb: &event.Hugetlb{Call: event.CallShmget, Flags: 0o4000 | 0o1000 | 0o2000 | 0o660, HugeRequest: true, Result: 5, OK: true}}
	d.Event(&ev)
	if h := ev.Hugetlb; h.FlagNames != "IPC_CREAT|IPC_EXCL|SHM_HUGETLB|0660" || h.HugePageSize != 2<<20 || h.Errno != "" {
		t.Errorf("%+v", h)
	}
}

func TestTrimTracingFrames(t *testing.T) {
	in := []string{"bpf_prog_6deef7357e7b4530_alloc_fail_btf+0x1d3", "bpf_trace_run4+0x88", "__bpf_trace_mm_page_alloc+0x10",
		"__alloc_frozen_pages_noprof+0x26b", "alloc_pages_mpol+0x86"}
	want := []string{"__alloc_frozen_pages_noprof+0x26b", "alloc_pages_mpol+0x86"}
	if got := TrimTracingFrames(in); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
	// A fexit trampoline JITed after kallsyms was read has no symbol.
	tramp := []string{"0xffffffffc0a3d0b5", "__alloc_pages+0x5", "allocate_slab+0x334"}
	if got := TrimTracingFrames(tramp); !reflect.DeepEqual(got, tramp[1:]) {
		t.Errorf("an unnamed top frame must be dropped: %v", got)
	}
	only := []string{"bpf_prog_x+0x1"}
	if got := TrimTracingFrames(only); !reflect.DeepEqual(got, only) {
		t.Errorf("a stack of only tracing frames must be kept: %v", got)
	}
}

func TestNilTablesLeaveNamesEmpty(t *testing.T) {
	d := &Decoder{}
	ev := event.Event{Kind: event.KindAllocFailure, AllocFailure: &event.AllocFailure{GFPFlags: 0x820, StackID: -1}}
	d.Event(&ev)
	if ev.AllocFailure.GFP != "" || ev.AllocFailure.Stack != nil {
		t.Errorf("%+v", ev.AllocFailure)
	}
}

// TestTHPFallback: a THP fault's mask at the PMD order is a fallback; the
// same mask at another order, or another mask at that order, is not.
func TestTHPFallback(t *testing.T) {
	tb := table(t)
	masks := map[string]uint64{}
	for _, e := range tb.Entries() {
		masks[e.Name] = e.Mask
	}
	light, full := masks["GFP_TRANSHUGE_LIGHT"], masks["GFP_TRANSHUGE"]
	if light == 0 || full == 0 {
		t.Fatal("the 6.18 table has no THP masks")
	}
	d := &Decoder{GFP: tb, THPOrder: 9}
	for _, tc := range []struct {
		order uint32
		flags uint64
		want  bool
	}{
		{9, light, true},
		{9, full, true},
		{9, full | masks["__GFP_NORETRY"], true},
		{4, light, false}, // an mTHP order: not the PMD order
		{9, masks["GFP_KERNEL"] | masks["__GFP_COMP"], false},
		{9, masks["GFP_HIGHUSER_MOVABLE"] | masks["__GFP_COMP"] | masks["__GFP_RETRY_MAYFAIL"], false}, // hugetlb pool growth
	} {
		ev := event.Event{Kind: event.KindAllocFailure, AllocFailure: &event.AllocFailure{Order: tc.order, GFPFlags: event.Hex(tc.flags)}}
		d.Event(&ev)
		agg := event.AllocAggregate{Order: tc.order, GFPFlags: event.Hex(tc.flags)}
		d.AllocAggregate(&agg)
		if ev.AllocFailure.THPFallback != tc.want || agg.THPFallback != tc.want {
			t.Errorf("order %d %s: event %v, aggregate %v, want %v", tc.order, tb.String(tc.flags), ev.AllocFailure.THPFallback, agg.THPFallback, tc.want)
		}
	}
	if (&Decoder{GFP: tb}).THPFallback(9, light) {
		t.Error("without a THP order nothing is a THP fallback")
	}
}

func TestVMFlags(t *testing.T) {
	for in, want := range map[uint64]string{
		0x6000fb:  "VM_READ|VM_WRITE|VM_SHARED|VM_MAYSHARE|VM_NORESERVE|VM_HUGETLB",
		0x400073:  "VM_READ|VM_WRITE|VM_HUGETLB",
		0x1000000: "0x1000000",
		0:         "",
	} {
		if got := VMFlags(in); got != want {
			t.Errorf("VMFlags(%#x) = %q, want %q", in, got, want)
		}
	}
}
