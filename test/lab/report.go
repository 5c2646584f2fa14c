package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// failure is the part of a capture's alloc_failures group the lab reads.
type failure struct {
	Pid       int
	Comm      string
	Context   string
	Order     int
	GfpFlags  string `json:"gfp_flags"`
	Gfp       string
	Atomic    bool
	Stack     []string
	Count     uint64
	ZoneState *struct {
		Verdict string
		Summary string
	} `json:"zone_state"`
}

// captured is one event of a capture's events list the lab reads.
type captured struct {
	Kind, Context, Comm string
	Pid                 int
	Time                time.Time
	AllocFailure        *struct {
		Order     int
		GfpFlags  string `json:"gfp_flags"`
		Gfp       string
		Stack     []string
		ZoneState *struct {
			Verdict, Summary string
			Zones            []struct {
				Zone       string
				Free       uint64 `json:"free_pages"`
				Min        uint64 `json:"min_pages"`
				Largest    int    `json:"largest_order"`
				Fragmented bool
			}
		} `json:"zone_state"`
	} `json:"alloc_failure"`
	WarnAlloc *struct {
		Order  int
		Logged bool
	} `json:"warn_alloc"`
}

type captureSummary struct {
	Failures               []failure
	Total, Softirq         uint64
	Swapper                uint64            // softirq failures that interrupted the idle task (pid 0)
	ByContextOrder         map[string]uint64 // "softirq order 3"
	Extfrag, Fragmenting   uint64
	Hooks                  []string
	Verdicts               map[string]uint64 // zone-state verdicts of softirq failures (kept events)
	WarnLogged, WarnNoWarn uint64
	Example                *captured // a softirq failure with its zone state
	First, Last            time.Time // of the failures among the kept events
}

func summarize(path string) (*captureSummary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var doc struct {
		Hooks []struct {
			Signal, Hook string
			Attached     bool
		}
		AllocFailures []failure `json:"alloc_failures"`
		Events        []captured
		Extfrag       []struct {
			Count, Fragmenting uint64
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	s := &captureSummary{Failures: doc.AllocFailures, ByContextOrder: map[string]uint64{}, Verdicts: map[string]uint64{}}
	for i, e := range doc.Events {
		if e.Kind == "alloc_failure" {
			if s.First.IsZero() || e.Time.Before(s.First) {
				s.First = e.Time
			}
			if e.Time.After(s.Last) {
				s.Last = e.Time
			}
		}
		switch {
		case e.WarnAlloc != nil && e.WarnAlloc.Logged:
			s.WarnLogged++
		case e.WarnAlloc != nil:
			s.WarnNoWarn++
		case e.AllocFailure != nil && e.Context == "softirq" && e.AllocFailure.ZoneState != nil:
			s.Verdicts[e.AllocFailure.ZoneState.Verdict]++
			// The seed's case first: the idle task interrupted, then
			// receive through net_rx_action.
			if e.AllocFailure.Order >= 1 && e.AllocFailure.ZoneState.Verdict == "fragmented" &&
				(s.Example == nil || seedLike(&doc.Events[i]) > seedLike(s.Example)) {
				s.Example = &doc.Events[i]
			}
		}
	}
	for _, h := range doc.Hooks {
		s.Hooks = append(s.Hooks, fmt.Sprintf("%s: %s (attached %v)", h.Signal, h.Hook, h.Attached))
	}
	for _, f := range doc.AllocFailures {
		s.Total += f.Count
		if f.Context == "softirq" {
			s.Softirq += f.Count
			if f.Pid == 0 {
				s.Swapper += f.Count
			}
		}
		s.ByContextOrder[fmt.Sprintf("%s order %d", f.Context, f.Order)] += f.Count
	}
	for _, e := range doc.Extfrag {
		s.Extfrag += e.Count
		s.Fragmenting += e.Fragmenting
	}
	slices.SortFunc(s.Failures, func(a, b failure) int { return int(b.Count) - int(a.Count) })
	return s, nil
}

type report struct {
	o                                          options
	kernel                                     string
	memTotal, takenKB, freeAfterFrag           uint64
	fragTook, shmTook                          time.Duration
	warmHeld                                   int    // sockets held through the runs
	wire                                       string // the guest's interface for the wire, "" without
	buddyBoot, buddyStart, buddyFrag, buddyEnd string
	phases                                     []*phase
	applied                                    []string // settings changed between runs
	shm                                        []*shmRun
	notes, problems                            []string
}

// check is the lab's test: memtrace must have seen at least what the
// independent counter saw in the same window (from capture's probes until
// the failures stopped), in total and in softirq.
func (r *report) check() bool {
	if len(r.phases) > 0 && r.phases[0].capture != nil && r.phases[0].capture.Softirq == 0 {
		r.problems = append(r.problems, "the first run made no allocation failure in softirq: scenario 1 was not reproduced")
	}
	for _, p := range r.phases {
		c, k := p.capture, p.counter
		if c == nil {
			r.problems = append(r.problems, p.name+": no capture")
			continue
		}
		if c.Total < k.Total {
			r.problems = append(r.problems, fmt.Sprintf("%s: memtrace saw %d failed allocations, the tracefs counter %d", p.name, c.Total, k.Total))
		}
		if k.Kept == k.Total && c.Softirq < k.Softirq {
			r.problems = append(r.problems, fmt.Sprintf("%s: memtrace saw %d in softirq, the tracefs counter %d", p.name, c.Softirq, k.Softirq))
		}
		if p.oomKills > 0 {
			r.problems = append(r.problems, fmt.Sprintf("%s: the guest's OOM killer ran %d time(s) (console.log has its report)", p.name, p.oomKills))
		}
	}
	return len(r.problems) == 0
}

func (r *report) markdown() string {
	var b strings.Builder
	if len(r.phases) > 0 {
		r.scenario1(&b)
	}
	if len(r.shm) > 0 {
		r.scenario2(&b)
	}
	if len(r.problems) == 0 {
		fmt.Fprintf(&b, "Check: memtrace saw at least every failure the tracefs counter saw in each run, no OOM kill, verify's verdicts and the page tables as expected: **pass**.\n")
	} else {
		fmt.Fprintf(&b, "Check: **FAIL**: %s\n", strings.Join(r.problems, "; "))
	}
	return b.String()
}

func (r *report) scenario1(b *strings.Builder) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	w("### Scenario 1 on %s (%d MiB guest)\n\n", r.kernel, r.memTotal>>10)
	w("Fragmenting, before memtrace started: took %d MiB in 16 MiB then 1 MiB anonymous mappings (until MemFree was under %d MiB) (MADV_NOHUGEPAGE), touched every page, gave every other page back (MADV_DONTNEED) and locked the rest (mlock2 MLOCK_ONFAULT), with vm.compaction_proactiveness=0, vm.compact_unevictable_allowed=0 and vm.watermark_boost_factor=0 (%.1fs). Then it opened %d loopback connections and held them through every run (%d sockets; their TCP slabs take the higher-order blocks left). MemFree after: %d MiB.\n\n",
		r.takenKB>>10, r.o.leaveKB>>10+1, r.fragTook.Seconds(), r.o.warmUp, r.warmHeld, r.freeAfterFrag>>10)
	w("/proc/buddyinfo (free blocks per order 0..10) at boot, before fragmenting (after scenario 2, if it ran), after fragmenting and the %d held connections, at the end:\n\n```\n%s%s%s%s```\n\n", r.o.warmUp, r.buddyBoot, r.buddyStart, r.buddyFrag, r.buddyEnd)
	w("Traffic: %s of TCP connections over loopback, opened by %d dialers at a time (each writes %d bytes) and held until %d are open or MemFree falls under %d MiB (a burst), then all closed.", r.o.traffic, dialers, payloadBytes, r.o.conns, lowFreeKB>>10)
	if r.wire != "" {
		w(" Before it, and during it, connections from the host through the guest's virtio-net device (%s, the wire): %s of them alone first, then with the loopback bursts.", r.wire, r.o.wireOnly)
	}
	w("\n\n")
	for _, a := range r.applied {
		w("- applied: %s\n", a)
	}
	w("\n| run | min_free_kbytes | watermark_scale_factor | compaction proactiveness / unevictable | bursts (ended by low memory) | connections (peak held) | failed allocations (memtrace) | in softirq (memtrace) | softirq failures per 1000 connections | tracefs counter (all / kept / softirq of kept) | extfrag events (fragmenting) | valve openings (since fragmenting) | OOM kills |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.phases {
		if p.capture == nil {
			w("| %s | %s | %s | %s | (did not finish) |\n", p.name, p.minFree, p.wsf, p.compact)
			continue
		}
		w("| %s | %s | %s | %s | %d (%d) | %d (%d; %d dial errors) | %d | %d | %.1f | %d / %d / %d | %d (%d) | %d | %d |\n", p.name, p.minFree, p.wsf, p.compact, p.traffic.Bursts, p.traffic.LowMemory, p.traffic.Connected, p.traffic.PeakHeld, p.traffic.DialErrors,
			p.capture.Total, p.capture.Softirq, 1000*float64(p.capture.Softirq)/float64(max(p.traffic.Connected, 1)), p.counter.Total, p.counter.Kept, p.counter.Softirq, p.capture.Extfrag, p.capture.Fragmenting, p.valve, p.oomKills)
	}
	w("\n")
	for _, p := range r.phases {
		if p.capture == nil {
			continue
		}
		keys := make([]string, 0, len(p.capture.ByContextOrder))
		for k := range p.capture.ByContextOrder {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		w("Failures by context and order, %s (memtrace):", p.name)
		for _, k := range keys {
			w(" %s: %d;", k, p.capture.ByContextOrder[k])
		}
		w("\n\n")
	}
	if r.phases[0].capture == nil {
		return
	}
	w("memtrace's hooks: %s.\n\n", strings.Join(r.phases[0].capture.Hooks, "; "))
	for i, p := range r.phases {
		c := p.capture
		if c == nil {
			continue
		}
		w("#### %s: what memtrace's capture shows (`%s.gz`)\n\n", p.name, filepath.Base(p.capFile))
		w("warn_alloc reached (page allocation failure path): %d not logged (__GFP_NOWARN), %d logged. Zone state read at softirq failures (kept events): %s.",
			c.WarnNoWarn, c.WarnLogged, verdicts(c.Verdicts))
		if !c.First.IsZero() {
			w(" Failures from %s to %s UTC.", c.First.UTC().Format("15:04:05.0"), c.Last.UTC().Format("15:04:05.0"))
		}
		w("\n\n")
		if p.wireOn {
			w("From the wire (virtio-net, connections the host dialed through qemu's user network): %d accepted, %d of them in the first %s, when only they arrived and the guest was otherwise idle. Softirq failures that interrupted the idle task (swapper, pid 0), as in the seed: %d.\n\n", p.wire, p.wireIdle, r.o.wireOnly, c.Swapper)
		}
		groups, frames := 4, 12
		if i > 0 {
			groups, frames = 2, 0 // the stacks are the first run's
		}
		if frames > 0 {
			w("The largest softirq failure groups (alloc_failures; stacks cut after %d frames):\n\n```\n", frames)
		} else {
			w("The largest softirq failure groups (alloc_failures; their stacks are the first run's):\n\n```\n")
		}
		n, swapper := 0, false
		for _, f := range c.Failures {
			// The largest groups, and the largest of the idle task's
			// when none of those is.
			idle := f.Pid == 0 && !swapper
			if f.Context != "softirq" || n >= groups && !idle {
				continue
			}
			n++
			swapper = swapper || f.Pid == 0
			w("%d× order %d in %s, interrupted task %s (pid %d), gfp %s = %s, atomic %v\n", f.Count, f.Order, f.Context, escape(f.Comm), f.Pid, f.GfpFlags, f.Gfp, f.Atomic)
			for i, fr := range f.Stack {
				if i == frames {
					if frames > 0 {
						w("    ...\n")
					}
					break
				}
				w("    %s\n", fr)
			}
		}
		if n == 0 {
			w("(none)\n")
		}
		w("```\n\n")
		if e := c.Example; e != nil && i == 0 {
			a := e.AllocFailure
			w("One of those failures as an event, whole stack and the zone state memtrace read at it:\n\n```\n")
			w("%s in %s, task %s (pid %d): order %d, gfp %s = %s\n", e.Kind, e.Context, escape(e.Comm), e.Pid, a.Order, a.GfpFlags, a.Gfp)
			// The summary starts with its verdict when it has one.
			if strings.HasPrefix(a.ZoneState.Summary, a.ZoneState.Verdict+":") {
				w("zone state: %s\n", a.ZoneState.Summary)
			} else {
				w("zone state: %s: %s\n", a.ZoneState.Verdict, a.ZoneState.Summary)
			}
			for _, z := range a.ZoneState.Zones {
				w("  zone %-6s free %d pages, min %d, largest free order %d, fragmented %v\n", z.Zone, z.Free, z.Min, z.Largest, z.Fragmented)
			}
			for _, fr := range a.Stack {
				w("    %s\n", fr)
			}
			w("```\n\n")
		}
	}
	w("`memtrace doctor --measure`, started before the first traffic and interrupted after it (trimmed to the findings that matter here):\n\n```\n%s```\n\n", trimDoctor(r.phases[0].doctor))
	for _, s := range r.notes {
		w("Note: %s\n\n", s)
	}
}

// seedLike ranks a failure by how much it looks like the seed's: the
// idle task interrupted (4), received from a device (virtio-net's NAPI
// poll, 2), received through net_rx_action at all (1).
func seedLike(e *captured) int {
	n := 0
	if e.Pid == 0 {
		n += 4
	}
	if slices.ContainsFunc(e.AllocFailure.Stack, func(f string) bool { return strings.HasPrefix(f, "virtnet_poll") }) {
		n += 2
	}
	if throughRx(e) {
		n++
	}
	return n
}

func throughRx(e *captured) bool {
	return slices.ContainsFunc(e.AllocFailure.Stack, func(f string) bool { return strings.HasPrefix(f, "net_rx_action") })
}

func verdicts(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// trimDoctor keeps the findings about failures, atomic demand, watermarks
// and fragmentation.
func trimDoctor(s string) string {
	var out []string
	keep := false
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "(lab:") {
			out = append(out, line)
			continue
		}
		if line != "" && !strings.HasPrefix(line, " ") {
			l := strings.ToLower(line)
			keep = strings.Contains(l, "atomic") || strings.Contains(l, "min_free") || strings.Contains(l, "failure") ||
				strings.Contains(l, "watermark") || strings.Contains(l, "fragment") || strings.Contains(l, "compaction")
		}
		if keep {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return s
	}
	return strings.Join(out, "\n") + "\n"
}

// escape makes a task name safe to print: names are untrusted.
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
