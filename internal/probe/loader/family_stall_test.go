package loader

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/memtrace/memtrace/internal/decode/kenum"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/pkg/gfp"
)

// fakeKernel is a kernel BTF with a btf_trace_<name> typedef for each
// tracepoint, with the given number of arguments (after void *).
func fakeKernel(t *testing.T, tps map[string]int, extra ...btf.Type) *btf.Spec {
	t.Helper()
	types := append([]btf.Type(nil), extra...)
	for name, n := range tps {
		params := []btf.FuncParam{{Type: &btf.Pointer{Target: &btf.Void{}}}}
		for i := 0; i < n; i++ {
			params = append(params, btf.FuncParam{Type: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}})
		}
		types = append(types, &btf.Typedef{Name: "btf_trace_" + name, Type: &btf.Pointer{Target: &btf.FuncProto{Return: &btf.Void{}, Params: params}}})
	}
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestReclaimOptionalHooks: on a kernel without mm_vmscan_throttled (5.10)
// or the memcg events (no CONFIG_MEMCG), both candidates drop those
// programs before load and say so in the hook's name; the others stay.
func TestReclaimOptionalHooks(t *testing.T) {
	tps := map[string]int{}
	for _, h := range reclaimHooks {
		tps[h.event] = 1
	}
	delete(tps, "mm_vmscan_throttled")
	delete(tps, "mm_vmscan_memcg_reclaim_begin")
	delete(tps, "mm_vmscan_memcg_reclaim_end")
	kernel := fakeKernel(t, tps)
	for _, c := range reclaimCandidates() {
		spec, err := loadReclaimSpec()
		if err != nil {
			t.Fatal(err)
		}
		hook, err := c.prepare(spec, kernel)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(hook, c.name) || !strings.Contains(hook, "without mm_vmscan_memcg_reclaim_begin, mm_vmscan_memcg_reclaim_end, mm_vmscan_throttled") {
			t.Errorf("%s: hook %q does not name what is missing", c.name, hook)
		}
		for _, p := range []string{reclaimProgThrottledBtf, reclaimProgThrottledTp, reclaimProgMemcgBeginBtf, reclaimProgMemcgEndTp} {
			if spec.Programs[p] != nil && slices.Contains(c.programs, p) {
				t.Errorf("%s: program %s kept", c.name, p)
			}
		}
		for _, p := range []string{reclaimProgDirectBeginBtf, reclaimProgDirectBeginTp} {
			if slices.Contains(c.programs, p) && spec.Programs[p] == nil {
				t.Errorf("%s: program %s dropped", c.name, p)
			}
		}
	}
	// Every tracepoint there: the plain name.
	for h := range tps {
		delete(tps, h)
	}
	for _, h := range reclaimHooks {
		tps[h.event] = 1
	}
	spec, _ := loadReclaimSpec()
	if hook, err := reclaimCandidates()[0].prepare(spec, fakeKernel(t, tps)); err != nil || hook != "tp_btf/mm_vmscan_*" {
		t.Errorf("hook %q, %v", hook, err)
	}
}

// TestCompactionEndPrototype: tp_btf keeps the mm_compaction_end program
// of the kernel's prototype (5 arguments from 6.1, 6 on 5.10): a program
// reading a sixth argument of a 5-argument tracepoint is refused.
func TestCompactionEndPrototype(t *testing.T) {
	for args, keep := range map[int]string{5: compactionProgEndBtf, 6: compactionProgEndBtfV5} {
		spec, err := loadCompactionSpec()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := compactionCandidates()[0].prepare(spec, fakeKernel(t, map[string]int{"mm_compaction_end": args})); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{compactionProgEndBtf, compactionProgEndBtfV5} {
			if (spec.Programs[p] != nil) != (p == keep) {
				t.Errorf("%d arguments: program %s kept=%v", args, p, spec.Programs[p] != nil)
			}
		}
	}
	spec, _ := loadCompactionSpec()
	if _, err := compactionCandidates()[0].prepare(spec, fakeKernel(t, map[string]int{"mm_compaction_end": 3})); err == nil {
		t.Error("an unknown prototype was accepted")
	}
}

// TestStallKindNames: every value of enum stall_kind has the kind of its
// own name in the event model.
func TestStallKindNames(t *testing.T) {
	for obj, load := range map[string]func() (*btf.Spec, error){
		"reclaim":    func() (*btf.Spec, error) { s, err := loadReclaim(); return specTypes(s, err) },
		"compaction": func() (*btf.Spec, error) { s, err := loadCompaction(); return specTypes(s, err) },
	} {
		types, err := load()
		if err != nil {
			t.Fatal(err)
		}
		var en *btf.Enum
		if err := types.TypeByName("stall_kind", &en); err != nil {
			t.Fatalf("%s: %v", obj, err)
		}
		for _, v := range en.Values {
			want := strings.ToLower(strings.TrimPrefix(v.Name, "STALL_"))
			if got := stallKindOf(uint8(v.Value)); string(got) != want {
				t.Errorf("%s: %s is %q, want %q", obj, v.Name, got, want)
			}
		}
	}
	if got := stallKindOf(200); got != "unknown(200)" {
		t.Errorf("out of range: %q", got)
	}
}

// TestCompactionOutcomeNames: outcome names are read from BTF (here the
// program's own copy of the kernel's enum compact_result), not written in
// Go.
func TestCompactionOutcomeNames(t *testing.T) {
	spec, err := loadCompaction()
	if err != nil {
		t.Fatal(err)
	}
	n := kernelEnum(spec.Types, "compact_result", "COMPACT_")
	var en *btf.Enum
	if err := spec.Types.TypeByName("compact_result", &en); err != nil {
		t.Fatal(err)
	}
	for _, v := range en.Values {
		if got, want := n.Name(int64(v.Value)), strings.ToLower(strings.TrimPrefix(v.Name, "COMPACT_")); got != want {
			t.Errorf("%s: %q", v.Name, got)
		}
	}
}

// TestDecodeStallRecords decodes one record of each family as the ring
// buffer delivers it and names it.
func TestDecodeStallRecords(t *testing.T) {
	s := &Session{}
	table, err := gfp.ForRelease("6.18.0")
	if err != nil {
		t.Fatal(err)
	}
	s.names.dec.GFP = table
	s.names.dec.CompactResults = kenum.Of("test", map[int64]string{2: "deferred"})
	s.names.dec.CompactPriorities = kenum.Of("test", map[int64]string{2: "async"})
	s.names.dec.ThrottleReasons = kenum.Of("test", map[int64]string{2: "noprogress"})

	var r reclaimReclaimEvent
	r.Hdr.Pid, r.Hdr.Tid, r.Hdr.Kind = 7, 8, uint8(allocEventKindEVENT_RECLAIM)
	r.Kind, r.Order, r.Gfp, r.Nid, r.DurationNs, r.Detail = uint8(reclaimStallKindSTALL_THROTTLED), 3, 0xcc0, 0, 4000000, 2
	ev, err := decodeReclaim(s, encode(t, r))
	if err != nil {
		t.Fatal(err)
	}
	s.names.event(&ev)
	if ev.Kind != event.KindReclaimStall || ev.Pid != 7 || ev.Reclaim.Kind != event.StallThrottled || ev.Reclaim.Order != 3 ||
		ev.Reclaim.ThrottleReason != "noprogress" || ev.Reclaim.GFP != "GFP_KERNEL" || ev.Reclaim.DurationNs != 4000000 {
		t.Errorf("reclaim record: %+v %+v", ev, ev.Reclaim)
	}

	var c compactionCompactionEvent
	c.Hdr.Pid, c.Hdr.Kind = 9, uint8(allocEventKindEVENT_COMPACTION)
	c.Order, c.Gfp, c.Prio, c.Outcome, c.DurationNs = 9, 0xcc0, 2, 2, 1500
	ev, err = decodeCompaction(s, encode(t, c))
	if err != nil {
		t.Fatal(err)
	}
	s.names.event(&ev)
	cs := ev.Compaction
	if ev.Kind != event.KindCompactionStall || cs.Order != 9 || cs.Outcome != "deferred" || cs.Priority != "async" || cs.PageObtained || cs.DurationNs != 1500 {
		t.Errorf("compaction record: %+v", cs)
	}
	if _, err := decodeCompaction(s, encode(t, c)[:10]); err == nil {
		t.Error("a short record decoded")
	}
}

func specTypes(s *ebpf.CollectionSpec, err error) (*btf.Spec, error) {
	if err != nil {
		return nil, err
	}
	return s.Types, nil
}

// TestStallSignalHookTypes: --disable-hooks is checked against the stall
// families' own candidates.
func TestStallSignalHookTypes(t *testing.T) {
	for _, sig := range []event.Signal{event.SignalReclaim, event.SignalCompaction} {
		got, err := SignalHookTypes(sig, "auto")
		if err != nil || !slices.Equal(got, []string{"tp_btf", "tracepoint"}) {
			t.Errorf("%s: %v, %v", sig, got, err)
		}
	}
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := binary.Write(&b, binary.NativeEndian, v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
