// Package decode adds human names to events for the kernel they came from:
// GFP flags and migratetypes as this kernel defines them, syscall flags,
// errno names and symbolized kernel stacks.
package decode

import (
	"strconv"
	"strings"

	"github.com/memtrace/memtrace/internal/decode/kenum"
	"github.com/memtrace/memtrace/internal/decode/ksym"
	"github.com/memtrace/memtrace/internal/decode/migratetype"
	"github.com/memtrace/memtrace/internal/decode/mman"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/pkg/gfp"
)

// StackFunc returns the addresses of a captured kernel stack.
type StackFunc func(id int32) ([]uint64, error)

// Decoder names events. Any of its tables may be nil: the numbers stay,
// the names are left empty.
type Decoder struct {
	GFP          *gfp.Table
	Migratetypes *migratetype.Names
	Symbols      *ksym.Table
	Stacks       StackFunc
	// CompactResults, CompactPriorities and ThrottleReasons name the
	// running kernel's enum compact_result, enum compact_priority and
	// enum vmscan_throttle_state (read by the session core).
	CompactResults    *kenum.Names
	CompactPriorities *kenum.Names
	ThrottleReasons   *kenum.Names
	// HugePageSize is the default huge page size in bytes, for requests
	// that do not name one.
	HugePageSize uint64
	// THPOrder is the order of a PMD-sized transparent huge page (the
	// pageblock order; 0: THP fallbacks are not told apart).
	THPOrder uint32
	// Tasks adds what the host knows of a task: its cgroup path and
	// container (container.TaskNamer); nil leaves them out.
	Tasks func(*event.Task)
	// HugetlbCgroup names a hugetlb cgroup by the id a huge-page fault
	// failure carries and reads its files for the page size when the
	// event arrives; nil leaves the path and files out.
	HugetlbCgroup func(id, pageSize uint64) (path string, files *event.HugetlbCounters)

	stackCache map[int32][]string
}

// Task names the cgroup and container of a task in place.
func (d *Decoder) Task(t *event.Task) {
	if d.Tasks != nil {
		d.Tasks(t)
	}
}

// Event fills in the names of one event in place.
func (d *Decoder) Event(ev *event.Event) {
	d.Task(&ev.Task)
	switch {
	case ev.AllocFailure != nil:
		a := ev.AllocFailure
		a.GFP, a.GFPClass, a.Atomic = d.gfp(uint64(a.GFPFlags))
		a.MigratetypeName = d.migratetype(a.Migratetype)
		a.Stack = d.Stack(a.StackID)
		a.THPFallback = d.THPFallback(a.Order, uint64(a.GFPFlags))
	case ev.Extfrag != nil:
		x := ev.Extfrag
		x.AllocMigratetypeName = d.migratetype(x.AllocMigratetype)
		x.FallbackMigratetypeName = d.migratetype(x.FallbackMigratetype)
	case ev.Hugetlb != nil:
		d.hugetlb(ev.Hugetlb)
	case ev.WarnAlloc != nil:
		w := ev.WarnAlloc
		w.GFP, _, _ = d.gfp(uint64(w.GFPFlags))
		w.Stack = d.Stack(w.StackID)
	case ev.Reclaim != nil:
		r := ev.Reclaim
		r.GFP, _, _ = d.gfp(uint64(r.GFPFlags))
		if r.Kind == event.StallThrottled {
			r.ThrottleReason = d.ThrottleReasons.Name(int64(r.ThrottleReasonValue))
		}
		d.stallStack(&r.StallStack)
	case ev.HugeFault != nil:
		d.hugeFault(ev.HugeFault)
	case ev.Compaction != nil:
		c := ev.Compaction
		c.GFP, _, _ = d.gfp(uint64(c.GFPFlags))
		c.Priority = d.CompactPriorities.Name(int64(c.PriorityValue))
		c.Outcome = d.CompactResults.Name(int64(c.OutcomeValue))
		d.stallStack(&c.StallStack)
	}
}

// ReclaimAggregate fills in the names of a reclaim stall row.
func (d *Decoder) ReclaimAggregate(r *event.ReclaimAggregate) {
	d.Task(&r.Task)
	r.GFP, _, _ = d.gfp(uint64(r.GFPFlags))
	if r.Kind == event.StallThrottled {
		r.ThrottleReason = d.ThrottleReasons.Name(int64(r.ThrottleReasonValue))
	}
}

// CompactionAggregate fills in the names of a compaction row.
func (d *Decoder) CompactionAggregate(c *event.CompactionAggregate) {
	d.Task(&c.Task)
	if c.Kind != event.StallCompaction {
		return
	}
	c.GFP, _, _ = d.gfp(uint64(c.GFPFlags))
	c.Priority = d.CompactPriorities.Name(int64(c.PriorityValue))
	for i := range c.Outcomes {
		c.Outcomes[i].Name = d.CompactResults.Name(int64(c.Outcomes[i].Value))
	}
}

// LastCompaction names a thread's last compaction call.
func (d *Decoder) LastCompaction(l *event.LastCompaction) {
	l.Priority = d.CompactPriorities.Name(int64(l.PriorityValue))
	l.Outcome = d.CompactResults.Name(int64(l.OutcomeValue))
}

// AllocAggregate fills in the names of an aggregate row.
func (d *Decoder) AllocAggregate(a *event.AllocAggregate) {
	d.Task(&a.Task)
	a.GFP, a.GFPClass, a.Atomic = d.gfp(uint64(a.GFPFlags))
	a.MigratetypeName = d.migratetype(a.Migratetype)
	a.Stack = d.Stack(a.StackID)
	a.THPFallback = d.THPFallback(a.Order, uint64(a.GFPFlags))
}

// THPFallback reports whether a failed request of this order and mask was
// a transparent huge page fault, which falls back to small pages.
func (d *Decoder) THPFallback(order uint32, flags uint64) bool {
	return d.GFP != nil && d.THPOrder > 0 && order == d.THPOrder && d.GFP.THPFault(flags)
}

// ExtfragAggregate fills in the migratetype names of an aggregate row.
func (d *Decoder) ExtfragAggregate(x *event.ExtfragAggregate) {
	d.Task(&x.Task)
	x.AllocMigratetypeName = d.migratetype(x.AllocMigratetype)
	x.FallbackMigratetypeName = d.migratetype(x.FallbackMigratetype)
}

func (d *Decoder) gfp(flags uint64) (names, class string, atomic bool) {
	if d.GFP == nil {
		return "", "", false
	}
	return d.GFP.String(flags), d.GFP.Class(flags), d.GFP.Atomic(flags)
}

func (d *Decoder) migratetype(mt int32) string {
	if mt < 0 {
		return ""
	}
	if d.Migratetypes == nil {
		return ""
	}
	return d.Migratetypes.Name(int(mt))
}

func (d *Decoder) hugetlb(h *event.Hugetlb) {
	switch h.Call {
	case event.CallMmap:
		h.FlagNames = mman.MapFlags(uint64(h.Flags))
		h.Prot = mman.ProtFlags(uint64(h.ProtBits))
		if h.HugeRequest {
			h.HugePageSize = d.pageSize(mman.HugePageSize(uint64(h.Flags)))
		}
	case event.CallShmget, event.CallShmat:
		h.FlagNames = mman.ShmFlags(uint64(h.Flags))
		if h.HugeRequest {
			h.HugePageSize = d.pageSize(mman.HugePageSize(uint64(h.Flags)))
		}
	}
	if !h.OK {
		h.Errno = mman.ErrnoName(int(-h.Result))
	}
}

// hugeFault names a huge-page fault failure's mapping flags and cgroup,
// then says what refused the page.
func (d *Decoder) hugeFault(f *event.HugeFault) {
	f.Mapping.FlagNames = VMFlags(uint64(f.Mapping.Flags))
	if f.Cgroup != nil && d.HugetlbCgroup != nil {
		f.Cgroup.Path, f.Cgroup.Files = d.HugetlbCgroup(f.Cgroup.ID, f.Mapping.PageSize)
	}
	f.Diagnose()
}

// vmFlags are the VMA flags worth naming on a hugetlb mapping
// (include/linux/mm.h; stable since 2.6).
var vmFlags = []struct {
	bit  uint64
	name string
}{
	{0x1, "VM_READ"}, {0x2, "VM_WRITE"}, {0x4, "VM_EXEC"}, {0x8, "VM_SHARED"},
	{0x80, "VM_MAYSHARE"}, {0x2000, "VM_LOCKED"}, {0x20000, "VM_DONTCOPY"},
	{0x40000, "VM_DONTEXPAND"}, {0x100000, "VM_ACCOUNT"}, {0x200000, "VM_NORESERVE"},
	{0x400000, "VM_HUGETLB"}, {0x4000000, "VM_DONTDUMP"},
}

// VMFlags names the flags of a VMA, the others as one hex remainder.
func VMFlags(f uint64) string {
	var parts []string
	for _, v := range vmFlags {
		if f&v.bit != 0 {
			parts = append(parts, v.name)
			f &^= v.bit
		}
	}
	// VM_MAYREAD, VM_MAYWRITE, VM_MAYEXEC are on almost every mapping.
	f &^= 0x70
	if f != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(f, 16))
	}
	return strings.Join(parts, "|")
}

func (d *Decoder) pageSize(named uint64) uint64 {
	if named != 0 {
		return named
	}
	return d.HugePageSize
}

// Stack symbolizes a captured stack, innermost frame first, without the
// tracing frames (BPF program, trampoline, tracepoint glue) on top.
func (d *Decoder) Stack(id int32) []string {
	if id < 0 || d.Stacks == nil {
		return nil
	}
	if s, ok := d.stackCache[id]; ok {
		return s
	}
	addrs, err := d.Stacks(id)
	if err != nil {
		return nil
	}
	frames := TrimTracingFrames(d.frames(addrs))
	if d.stackCache == nil {
		d.stackCache = map[int32][]string{}
	}
	d.stackCache[id] = frames
	return frames
}

// stallStack symbolizes a stall's stack, carried in its record, when
// stacks are named (Stacks is set).
func (d *Decoder) stallStack(s *event.StallStack) {
	if d.Stacks == nil || len(s.StackAddrs) == 0 {
		return
	}
	s.Stack = TrimTracingFrames(d.frames(s.StackAddrs))
}

// frames symbolizes addresses, or writes them in hex without symbols.
func (d *Decoder) frames(addrs []uint64) []string {
	frames := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if d.Symbols == nil {
			frames = append(frames, "0x"+strconv.FormatUint(a, 16))
			continue
		}
		frames = append(frames, d.Symbols.FormatAddr(a))
	}
	return frames
}

// tracingPrefixes are the frames the tracer itself adds above the
// function that hit the tracepoint.
var tracingPrefixes = []string{"bpf_prog_", "kprobe_", "opt_pre_handler", "optimized_callback", "aggr_pre_handler", "pre_handler_kretprobe", "kprobe_ftrace_handler", "arch_ftrace_ops_list_func", "ftrace_", "bpf_trace_run", "__bpf_trace_", "bpf_trampoline_", "__traceiter_", "perf_trace_", "trace_event_raw_event_", "perf_tp_event", "trace_call_bpf", "__probestub_", "trace_mm_page_alloc"}

// TrimTracingFrames drops the leading frames that belong to the tracer:
// named ones, and addresses no symbol covers (BPF code JITed after
// kallsyms was read, such as a fexit hook's trampoline).
func TrimTracingFrames(frames []string) []string {
	i := 0
	for i < len(frames) && isTracingFrame(frames[i]) {
		i++
	}
	if i == len(frames) {
		return frames
	}
	return frames[i:]
}

func isTracingFrame(f string) bool {
	if strings.HasPrefix(f, "0x") {
		return true
	}
	for _, p := range tracingPrefixes {
		if strings.HasPrefix(f, p) {
			return true
		}
	}
	return false
}
