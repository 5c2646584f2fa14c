package event

import (
	"fmt"
	"slices"
	"strings"
)

// Signal is a family of kernel programs that can be attached on its own.
type Signal string

const (
	SignalAlloc   Signal = "alloc"
	SignalExtfrag Signal = "extfrag"
	SignalHugetlb Signal = "hugetlb"
	// SignalReclaim: direct, memory-cgroup and node reclaim stalls,
	// reclaim throttling, and kswapd's wakeups and runs.
	SignalReclaim Signal = "reclaim"
	// SignalCompaction: direct compaction stalls and kcompactd wakeups.
	SignalCompaction Signal = "compaction"
	// SignalHugefault: faults on hugetlb mappings that got no page and
	// end in SIGBUS, with the mapping and the cause.
	SignalHugefault Signal = "hugefault"
)

// AllSignals lists every signal in the order they are attached.
var AllSignals = []Signal{SignalAlloc, SignalExtfrag, SignalHugetlb, SignalReclaim, SignalCompaction, SignalHugefault}

// DefaultSignals are the families a command traces unless --signals says
// otherwise: all of them. The stall families (reclaim, compaction) answer
// why an allocation had nothing to give, so `memtrace watch` shows them
// without being asked; --signals narrows the list (e.g. to cut start-up,
// which the stall families' 18 tracepoints lengthen: docs/benchmarks.md).
var DefaultSignals = slices.Clone(AllSignals)

// ParseSignals parses a comma-separated list such as "alloc,hugetlb".
func ParseSignals(s string) ([]Signal, error) {
	var out []Signal
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(AllSignals, Signal(f)) {
			names := make([]string, len(AllSignals))
			for i, s := range AllSignals {
				names[i] = string(s)
			}
			return nil, fmt.Errorf("unknown signal %q (want one of %s)", f, strings.Join(names, ", "))
		}
		out = append(out, Signal(f))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no signal selected")
	}
	return out, nil
}

// HookStatus says which hook a signal uses and why others were not used.
// It goes into every output, so a user can tell what was measured.
type HookStatus struct {
	Signal   Signal    `json:"signal"`
	Hook     string    `json:"hook"`
	Attached bool      `json:"attached"`
	Note     string    `json:"note,omitempty"`
	Rejected []Attempt `json:"rejected,omitempty"`
	// Companions are optional hooks attached beside the main one (the
	// kprobe on warn_alloc for failures the kernel logs).
	Companions []Companion `json:"companions,omitempty"`
}

// Companion is an optional hook of a signal and whether it attached.
type Companion struct {
	Hook     string `json:"hook"`
	Attached bool   `json:"attached"`
	Note     string `json:"note,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Attempt is a hook that was tried (or skipped) before the one in use.
type Attempt struct {
	Hook   string `json:"hook"`
	Reason string `json:"reason"`
}
