// Package event holds memtrace's event model: what the kernel programs
// report, in the form every output (capture JSON, watch, NDJSON) shares.
package event

import (
	"fmt"
	"strconv"
	"time"
)

// Kind names a signal family.
type Kind string

const (
	KindAllocFailure Kind = "alloc_failure"
	KindExtfrag      Kind = "extfrag"
	KindHugetlb      Kind = "hugetlb"
	KindWarnAlloc    Kind = "warn_alloc"
	// KindReclaimStall is a reclaim stall, a throttling sleep or a kswapd
	// run (event.Reclaim); KindCompactionStall a direct compaction call
	// (event.Compaction).
	KindReclaimStall    Kind = "reclaim_stall"
	KindCompactionStall Kind = "compaction_stall"
	// KindHugeFault is a fault on a hugetlb mapping that got no page
	// (event.HugeFault).
	KindHugeFault Kind = "huge_fault"
)

// Context is the execution context in which the kernel made the request.
// A failure attributed to "swapper" is almost always a softirq that
// interrupted the idle task, so the context matters as much as the task.
type Context uint8

// The loader translates enum exec_ctx of bpf/common.h into these.
const (
	ContextProcess Context = iota
	ContextSoftirq
	ContextHardirq
	ContextNMI
	ContextUnknown
)

var contextNames = [...]string{"process", "softirq", "hardirq", "nmi", "unknown"}

func (c Context) String() string {
	if int(c) < len(contextNames) {
		return contextNames[c]
	}
	return "unknown(" + strconv.Itoa(int(c)) + ")"
}

// Interrupt reports whether the request came from interrupt context, where
// the current task is only the one that happened to be interrupted.
func (c Context) Interrupt() bool {
	return c == ContextSoftirq || c == ContextHardirq || c == ContextNMI
}

func (c Context) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

func (c *Context) UnmarshalText(b []byte) error {
	for i, n := range contextNames {
		if n == string(b) {
			*c = Context(i)
			return nil
		}
	}
	return fmt.Errorf("unknown execution context %q", b)
}

// Hex is a number written as a "0x…" string in JSON, the way the kernel
// log prints GFP masks and addresses.
type Hex uint64

func (h Hex) String() string { return "0x" + strconv.FormatUint(uint64(h), 16) }

func (h Hex) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

func (h *Hex) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 0, 64)
	if err != nil {
		return fmt.Errorf("parsing hex value %q: %w", b, err)
	}
	*h = Hex(v)
	return nil
}

// Task identifies who was running when the event happened.
type Task struct {
	Pid      uint32 `json:"pid"`
	Tid      uint32 `json:"tid"`
	Comm     string `json:"comm"`
	CgroupID uint64 `json:"cgroup_id"`
	MemcgID  uint64 `json:"memcg_id"`
	// Cgroup is the path of the memory cgroup (memcg_id) in its hierarchy,
	// when it still existed at decoding time.
	Cgroup string `json:"cgroup,omitempty"`
	// Container is set when the cgroups name a container or a pod.
	Container *Container `json:"container,omitempty"`
}

// Event is one record from a kernel ring buffer, decoded.
type Event struct {
	Kind    Kind      `json:"kind"`
	Time    time.Time `json:"time"`
	MonoNs  uint64    `json:"mono_ns"`
	CPU     uint32    `json:"cpu"`
	Context Context   `json:"context"`
	Task

	AllocFailure *AllocFailure    `json:"alloc_failure,omitempty"`
	Extfrag      *Extfrag         `json:"extfrag,omitempty"`
	Hugetlb      *Hugetlb         `json:"hugetlb,omitempty"`
	WarnAlloc    *WarnAlloc       `json:"warn_alloc,omitempty"`
	Reclaim      *ReclaimStall    `json:"reclaim,omitempty"`
	Compaction   *CompactionStall `json:"compaction,omitempty"`
	HugeFault    *HugeFault       `json:"huge_fault,omitempty"`
}

// WarnAlloc is a call of the kernel's warn_alloc(): the allocation
// failures that reach the kernel log ("page allocation failure: order:1,
// mode:0x820(GFP_ATOMIC)", "vmalloc error: size …"). Seen only where
// kprobes exist; the same failure is also an alloc_failure event.
type WarnAlloc struct {
	// What is "page allocation failure", "vmalloc error" or "other".
	What string `json:"what"`
	// Order of a page allocation failure; Size (bytes) of a vmalloc error.
	Order    *uint32 `json:"order,omitempty"`
	Size     *uint64 `json:"size,omitempty"`
	GFPFlags Hex     `json:"gfp_flags"`
	GFP      string  `json:"gfp"`
	// Logged is false when __GFP_NOWARN makes the kernel skip the message;
	// a logged one may still be suppressed by the kernel's rate limit.
	Logged  bool     `json:"logged"`
	Format  string   `json:"format"`
	StackID int32    `json:"stack_id"`
	Stack   []string `json:"stack,omitempty"`
}

// AllocFailure is a page-allocator call that returned no page.
type AllocFailure struct {
	Order           uint32   `json:"order"`
	GFPFlags        Hex      `json:"gfp_flags"`
	GFP             string   `json:"gfp"`
	GFPClass        string   `json:"gfp_class"`
	Atomic          bool     `json:"atomic"`
	Migratetype     int32    `json:"migratetype"`
	MigratetypeName string   `json:"migratetype_name,omitempty"`
	PreemptCount    *int32   `json:"preempt_count,omitempty"`
	StackID         int32    `json:"stack_id"`
	Stack           []string `json:"stack,omitempty"`
	// Count is the in-kernel aggregate for this (process, order, flags,
	// context, stack) when the event was sent: events are sampled, counts
	// are exact.
	Count uint64 `json:"count"`
	// THPFallback marks a transparent-huge-page fault's attempt at a huge
	// page (a THP GFP mask at the PMD order): expected and frequent, the
	// fault falls back to small pages. Outputs keep these apart.
	THPFallback bool `json:"thp_fallback,omitempty"`
	// ZoneState is the zones read just after the failure, and the
	// verdict for this request; nil when they could not be read.
	ZoneState *ZoneState `json:"zone_state,omitempty"`
}

// Extfrag is one fallback of the allocator to another migratetype.
type Extfrag struct {
	PFN                     uint64 `json:"pfn,omitempty"`
	AllocOrder              int32  `json:"alloc_order"`
	FallbackOrder           int32  `json:"fallback_order"`
	AllocMigratetype        int32  `json:"alloc_migratetype"`
	AllocMigratetypeName    string `json:"alloc_migratetype_name"`
	FallbackMigratetype     int32  `json:"fallback_migratetype"`
	FallbackMigratetypeName string `json:"fallback_migratetype_name"`
	// ChangeOwnership is null where the hook cannot tell.
	ChangeOwnership *bool  `json:"change_ownership"`
	Fragmenting     bool   `json:"fragmenting"`
	Count           uint64 `json:"count"`
}

// Call names a huge-page related system call.
type Call string

const (
	CallShmget Call = "shmget"
	CallMmap   Call = "mmap"
	CallShmat  Call = "shmat"
)

// Hugetlb is one shmget, mmap or shmat call, paired enter to exit.
type Hugetlb struct {
	Call  Call   `json:"call"`
	Size  uint64 `json:"size"`
	Flags Hex    `json:"flags"`
	// FlagNames decodes Flags: SHM_* for shmget/shmat, MAP_* for mmap.
	FlagNames string `json:"flag_names"`
	// HugePageSize is the page size the request names in its size bits,
	// or the default huge page size; 0 when huge pages were not asked for.
	HugePageSize uint64 `json:"huge_page_size,omitempty"`
	HugeRequest  bool   `json:"huge_request"`
	// AfterHugeFailure marks a mapping without huge pages made by a
	// process whose previous huge-page request failed: a silent fallback.
	AfterHugeFailure bool   `json:"after_huge_failure"`
	Key              *int64 `json:"key,omitempty"`
	ProtBits         uint32 `json:"-"`
	Prot             string `json:"prot,omitempty"`
	Fd               *int32 `json:"fd,omitempty"`
	ShmID            *int64 `json:"shmid,omitempty"`
	Address          *Hex   `json:"address,omitempty"`
	Result           int64  `json:"result"`
	OK               bool   `json:"ok"`
	Errno            string `json:"errno,omitempty"`
	DurationNs       uint64 `json:"duration_ns"`
}
