// Package capture holds the JSON document of `memtrace capture`: one
// self-contained record of a capture window, its schema version, and a
// writer that never leaves a half-written file behind.
package capture

import (
	"encoding/json"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/burst"
	"github.com/memtrace/memtrace/internal/aggregate/demand"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// Schema names the document format; SchemaVersion changes on any
// incompatible change (docs/capture-schema.md describes every field).
const (
	Schema        = "memtrace.capture"
	SchemaVersion = 2
)

// Document is the whole capture.
type Document struct {
	Schema        string    `json:"schema"`
	SchemaVersion int       `json:"schema_version"`
	Tool          Tool      `json:"tool"`
	Host          Host      `json:"host"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	// StopReason is "duration", "signal" (Ctrl-C, SIGTERM) or "error".
	StopReason string `json:"stop_reason"`
	Config     Config `json:"config"`

	Hooks    []event.HookStatus `json:"hooks"`
	Decoding Decoding           `json:"decoding"`

	Before sysstate.Snapshot `json:"before"`
	After  sysstate.Snapshot `json:"after"`

	Events []event.Event `json:"events"`
	// EventsLeftOut counts events received beyond --max-events.
	EventsLeftOut uint64 `json:"events_left_out"`

	// The aggregates of each family with a view (internal/present/view):
	// the families of schema version 1 have a field, the others are in
	// Sections under their view's key.
	AllocFailures []event.AllocAggregate   `json:"alloc_failures"`
	Extfrag       []event.ExtfragAggregate `json:"extfrag"`
	// AtomicDemand is the demand of allocations that could not sleep over
	// the window, read every 100 ms; nil when it was not counted (the
	// alloc signal not traced). Added in version 1.
	AtomicDemand *AtomicDemand `json:"atomic_demand,omitempty"`
	// ZoneStates are the zones as read at each failure burst (the first
	// failure after a quiet interval), the failures that followed judged
	// against the same reading. Added in version 1.
	ZoneStates []burst.Burst `json:"zone_states"`
	// Sections holds, by key, the aggregates of the families added since
	// version 1 (fields added within the version); they are written
	// after the other fields, in the order of the views.
	Sections  map[string]json.RawMessage `json:"-"`
	Processes []Process                  `json:"processes"`

	// Stats per signal: seen, lost (ring buffer full), sampled, map_full.
	Stats        map[event.Signal]event.Stats `json:"stats"`
	DecodeErrors uint64                       `json:"decode_errors"`
	Warnings     []string                     `json:"warnings,omitempty"`
}

// AtomicDemand is the atomic demand of a capture window.
type AtomicDemand struct {
	demand.Summary
	// Sources are who made it, from a sample (the largest first, at most
	// 20): in softirq and hardirq context the task is only the one
	// interrupted.
	Sources []event.AtomicSource `json:"sources"`
	// Error is why the measurement stopped early, if it did.
	Error string `json:"error,omitempty"`
}

// Tool identifies the memtrace build that wrote the document.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Host identifies the machine and boot the capture is from.
type Host struct {
	Hostname      string `json:"hostname"`
	KernelRelease string `json:"kernel_release"`
	KernelVersion string `json:"kernel_version"`
	Arch          string `json:"arch"`
	BootID        string `json:"boot_id"`
	CPUs          int    `json:"cpus"`
}

// Config records how the capture was asked for.
type Config struct {
	Duration    string   `json:"duration"`
	Signals     []string `json:"signals"`
	AllocHook   string   `json:"alloc_hook"`
	Pid         uint32   `json:"pid,omitempty"`
	Comm        string   `json:"comm,omitempty"`
	Cgroup      string   `json:"cgroup,omitempty"`
	MaxEvents   int      `json:"max_events"`
	SampleFirst uint32   `json:"sample_first"`
}

// Decoding says where names came from, since flag values differ between
// kernels and a reader of the file may be on another one.
type Decoding struct {
	GFPSource         string `json:"gfp_source"`
	MigratetypeSource string `json:"migratetype_source"`
	Symbols           string `json:"symbols"`
	// ContextSource: where preempt_count is read to tell process,
	// softirq, hardirq and NMI context apart, or "unavailable: why".
	ContextSource string `json:"context_source"`
}

// Process rolls up everything one process did during the capture.
type Process struct {
	Pid  uint32 `json:"pid"`
	Comm string `json:"comm"`

	AllocFailures  uint64            `json:"alloc_failures"`
	AllocOrders    []uint32          `json:"alloc_orders,omitempty"`
	AllocContexts  map[string]uint64 `json:"alloc_contexts,omitempty"`
	AtomicFailures uint64            `json:"atomic_failures"`
	// THPFallbacks counts the failures that were a transparent-huge-page
	// fault's try at a huge page (expected: it falls back to small
	// pages); they are in AllocFailures too. Added in version 1.
	THPFallbacks uint64 `json:"thp_fallbacks"`
	// LoggedFailures counts warn_alloc calls (where kprobes exist): the
	// failures the kernel writes to its log.
	LoggedFailures uint64 `json:"logged_failures"`

	ExtfragEvents      uint64 `json:"extfrag_events"`
	ExtfragFragmenting uint64 `json:"extfrag_fragmenting"`

	HugetlbRequests  uint64 `json:"hugetlb_requests"`
	HugetlbFailures  uint64 `json:"hugetlb_failures"`
	HugetlbFallbacks uint64 `json:"hugetlb_fallbacks"`
	HugetlbBytes     uint64 `json:"hugetlb_bytes"`
}
