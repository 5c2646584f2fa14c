package kmsg

import (
	"slices"
	"strconv"
	"strings"
)

// Group is a set of identical failures: same kind, task (per-CPU kernel
// threads folded: "swapper/0" and "swapper/3" are one task), order, mode
// and call path.
type Group struct {
	Kind      Kind   `json:"kind"`
	Comm      string `json:"comm"` // the folded name: "swapper/*"
	Order     int    `json:"order"`
	Mode      uint64 `json:"mode"`
	ModeKnown bool   `json:"mode_known"`
	ModeText  string `json:"mode_text,omitempty"`
	Path      Path   `json:"path"`
	Count     int    `json:"count"`
	First     Stamp  `json:"first"`
	Last      Stamp  `json:"last"`
	// Comms and PIDs are the distinct tasks seen, up to maxListed each.
	Comms []string `json:"comms"`
	PIDs  []int    `json:"pids,omitempty"`
	// Releases are the kernel releases the failures were logged by.
	Releases []string `json:"releases,omitempty"`
	// MaxSize is the largest vmalloc size in the group.
	MaxSize uint64 `json:"max_size,omitempty"`
	// Example is the most recent failure, or the most recent with the zone
	// state if that one has none.
	Example Failure `json:"example"`
}

const maxListed = 16

// Key identifies a group.
func (f Failure) Key() string {
	var b strings.Builder
	b.WriteString(string(f.Kind))
	b.WriteByte(0)
	b.WriteString(FoldComm(f.Comm))
	b.WriteByte(0)
	b.WriteString(strconv.Itoa(f.Order))
	b.WriteByte(0)
	if f.ModeKnown {
		b.WriteString(strconv.FormatUint(f.Mode, 16))
	}
	b.WriteByte(0)
	b.WriteString(f.Path.String())
	return b.String()
}

// GroupFailures groups failures, most frequent first (then most recent).
func GroupFailures(fs []Failure) []Group {
	idx := map[string]int{}
	var groups []Group
	for _, f := range fs {
		k := f.Key()
		i, ok := idx[k]
		if !ok {
			i = len(groups)
			idx[k] = i
			groups = append(groups, Group{
				Kind: f.Kind, Comm: FoldComm(f.Comm), Order: f.Order,
				Mode: f.Mode, ModeKnown: f.ModeKnown, ModeText: f.ModeText,
				Path: f.Path, First: f.Stamp, Last: f.Stamp, Example: f,
			})
		}
		g := &groups[i]
		g.Count++
		if f.Stamp.Before(g.First) {
			g.First = f.Stamp
		}
		if !f.Stamp.Before(g.Last) {
			g.Last = f.Stamp
			// Keep an example with the zone state when the newer report
			// has none (the kernel limits Mem-Info dumps too).
			if len(f.Zones) > 0 || len(g.Example.Zones) == 0 {
				g.Example = f
			}
		}
		if g.ModeText == "" {
			g.ModeText = f.ModeText
		}
		g.MaxSize = max(g.MaxSize, f.Size)
		g.Comms = addString(g.Comms, f.Comm)
		if f.PID > 0 && len(g.PIDs) < maxListed && !slices.Contains(g.PIDs, f.PID) {
			g.PIDs = append(g.PIDs, f.PID)
		}
		if f.Release != "" {
			g.Releases = addString(g.Releases, f.Release)
		}
	}
	slices.SortStableFunc(groups, func(a, b Group) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		if b.Last.Before(a.Last) {
			return -1
		}
		if a.Last.Before(b.Last) {
			return 1
		}
		return 0
	})
	return groups
}

func addString(s []string, v string) []string {
	if len(s) >= maxListed || slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// perCPUThread matches names the kernel gives per-CPU or pooled threads:
// "swapper/3", "ksoftirqd/0", "kworker/u48:2", "kworker/0:1H",
// "migration/7", "irq/45-eth0" is left alone (the device matters).
var perCPUThread = lazyRegexp(`^(swapper|ksoftirqd|kworker|migration|cpuhp|rcuc|rcuop|rcuos|watchdog|idle_inject|kcompactd|kswapd)(/[0-9u:+HI-]+|[0-9]+)$`)

// FoldComm folds per-CPU kernel thread names into one: the CPU number
// says nothing about the failure, and grouping by it would split one
// cause into many lines.
func FoldComm(comm string) string {
	m := perCPUThread().FindStringSubmatch(comm)
	if m == nil {
		return comm
	}
	if strings.HasPrefix(m[2], "/") {
		return m[1] + "/*"
	}
	return m[1] + "*"
}
