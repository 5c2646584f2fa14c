package loader

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/event"
)

// Config selects what to attach and how to filter in the kernel.
type Config struct {
	Signals []event.Signal
	// AllocHook forces a hook for allocation failures: "auto" (fexit on
	// the allocator where permitted, then tp_btf, then the classic
	// tracepoint), or exactly one of "fexit", "tp_btf", "tracepoint".
	AllocHook string

	// DisableHooks lists hook types not to use ("tp_btf", "tracepoint",
	// "fexit") or single hooks by their full candidate name
	// ("tp_btf/signal_generate"), to force a fallback on a kernel where
	// the better hook exists (tests, or a hook that misbehaves on some
	// kernel).
	DisableHooks []string

	// Filters, applied in the kernel (zero: no filter).
	Pid      uint32
	Comm     string
	CgroupID uint64

	// SampleFirst is how many events per aggregation key are sent before
	// sampling (powers of two only); 0 sends every event.
	SampleFirst uint32
	// LargeSharedMin records shared anonymous mappings of at least this
	// size even when no huge-page request failed before.
	LargeSharedMin uint64
	// FallbackMin records shared mappings of at least this size made after
	// a failed huge-page request.
	FallbackMin uint64
	// PageblockOrder overrides the running kernel's, which Start finds
	// (0: the host's; 9 if it cannot be found).
	PageblockOrder int

	// AtomicDemand counts, in the alloc family's program, the pages of
	// every allocation that cannot sleep (Session.AtomicDemand). It costs
	// the common sleeping allocation one flag test.
	AtomicDemand bool
	// AtomicSampleEvery attributes one atomic allocation in this many per
	// CPU to its process and context (Session.AtomicSources); a power of
	// two, 0 for none.
	AtomicSampleEvery uint32
	// ZoneStateEvery: the first allocation failure after this long without
	// one reads the zones (/proc/zoneinfo, /proc/buddyinfo) and judges
	// the failure against them; the failures that follow within it are
	// judged against the same reading. 0: no zone state.
	ZoneStateEvery time.Duration
	// StallThreshold: reclaim and compaction stalls at least this long
	// are all sent as events; 0 sends them sampled like other events
	// (SampleFirst). The aggregates count every stall either way.
	StallThreshold time.Duration
	// StallStacks: with a StallThreshold, each reclaim and compaction
	// stall walks its kernel stack where it begins (microseconds per
	// stall), and the stalls sent carry it (event.StallStack).
	StallStacks bool
}

// DefaultConfig returns a configuration with the default signals and auto hooks.
func DefaultConfig() Config {
	return Config{
		Signals:        event.DefaultSignals,
		AllocHook:      "auto",
		SampleFirst:    64,
		LargeSharedMin: 64 << 20,
		FallbackMin:    2 << 20,

		AtomicDemand: true,
		// Each sample reads preempt_count and updates a hash map, which
		// measured as several ns per hit on loopback traffic at 1 in 64
		// (BenchmarkAllocHookCost): rare enough by default to cost nothing
		// measurable; doctor --measure samples more.
		AtomicSampleEvery: 1024,
		ZoneStateEvery:    100 * time.Millisecond,
	}
}

// validate refuses what the kernel programs cannot express.
func (c Config) validate() error {
	if c.Comm != "" {
		if err := event.CheckComm(c.Comm); err != nil {
			return fmt.Errorf("comm filter: %w", err)
		}
	}
	if n := c.AtomicSampleEvery; n&(n-1) != 0 {
		return fmt.Errorf("atomic demand sampling: every %d allocations, want a power of two", n)
	}
	if c.ZoneStateEvery < 0 {
		return fmt.Errorf("zone state interval %v is negative", c.ZoneStateEvery)
	}
	if c.StallThreshold < 0 {
		return fmt.Errorf("stall threshold %v is negative", c.StallThreshold)
	}
	return nil
}

func (c Config) has(s event.Signal) bool {
	for _, x := range c.Signals {
		if x == s {
			return true
		}
	}
	return false
}

// HookTypes are the kinds of hook a candidate can use.
var HookTypes = []string{"tp_btf", "tracepoint", "fexit"}

// ParseHookTypes parses a comma-separated list of hook types.
func ParseHookTypes(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ok := false
		for _, h := range HookTypes {
			ok = ok || h == f
		}
		if !ok {
			return nil, fmt.Errorf("unknown hook type %q (want %s)", f, strings.Join(HookTypes, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// SignalHookTypes returns the hook types sig can attach with (allocHook
// as in Config.AllocHook), read from the loader's own candidates, so a
// command can tell before loading anything that --disable-hooks leaves a
// signal nothing to attach with.
func SignalHookTypes(sig event.Signal, allocHook string) ([]string, error) {
	f, ok := registry[sig]
	if !ok {
		return nil, fmt.Errorf("unknown signal %q", sig)
	}
	cands, err := f.candidates(Config{AllocHook: allocHook})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cands {
		kind, _, _ := strings.Cut(c.name, "/")
		if !slices.Contains(out, kind) {
			out = append(out, kind)
		}
	}
	return out, nil
}

func (c Config) disabled(hook string) bool {
	kind, _, _ := strings.Cut(hook, "/")
	for _, d := range c.DisableHooks {
		if d == kind || d == hook {
			return true
		}
	}
	return false
}
