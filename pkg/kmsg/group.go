package kmsg

import (
	"hash/maphash"
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
	// Partial says the group was for a while one of the "other" groups
	// whose details are not kept (see Overflow): Count and First cover
	// all its reports, Comms, PIDs, Releases and MaxSize only those
	// since it was taken back in.
	Partial bool `json:"partial,omitempty"`
	// Example is the most recent failure, or the most recent with the zone
	// state if that one has none (its trace cut at maxExampleFrames).
	Example Failure `json:"example"`
	key     string
}

// Bounds of what grouping keeps, whatever the log holds: a log of a
// million distinct reports costs the same memory as one of a thousand.
const (
	maxListed = 16
	// MaxGroups is how many groups keep their details; the reports of
	// the others are only counted (Overflow).
	MaxGroups = 256
	// maxOther is how many other groups are counted one by one; the
	// reports of groups beyond it are counted together.
	maxOther         = 1 << 15
	maxExampleFrames = 64
)

// Overflow counts the reports whose groups did not fit in MaxGroups.
type Overflow struct {
	// Groups is the number of distinct groups among them; when
	// GroupsExact is false there were more (too many to tell apart).
	Groups      int  `json:"groups"`
	GroupsExact bool `json:"groups_exact"`
	Reports     int  `json:"reports"`
}

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

// Grouper groups failures as they come, in bounded memory: up to
// MaxGroups groups with their details, counts for the rest. When a
// counted-only group becomes more frequent than the least frequent group
// kept, the two swap places, so the groups kept are the most frequent
// ones whenever the counts allow telling (Count, First and Last stay
// exact; the lists of a group taken back in restart).
type Grouper struct {
	// maxGroups and maxOther replace MaxGroups and maxOther when set
	// (tests).
	maxGroups, maxOther int

	groups    []Group
	idx       map[string]int
	other     map[uint64]otherGroup
	untracked int // reports of groups beyond maxOther
	minCount  int // at most the smallest Count kept
	seed      maphash.Seed
}

type otherGroup struct {
	count int
	first Stamp
}

// Add counts one failure.
func (g *Grouper) Add(f Failure) {
	if g.idx == nil {
		g.idx = map[string]int{}
		g.other = map[uint64]otherGroup{}
		g.seed = maphash.MakeSeed()
		if g.maxGroups <= 0 {
			g.maxGroups = MaxGroups
		}
		if g.maxOther <= 0 {
			g.maxOther = maxOther
		}
	}
	k := f.Key()
	if i, ok := g.idx[k]; ok {
		g.groups[i].add(f)
		return
	}
	if len(g.groups) < g.maxGroups {
		g.idx[k] = len(g.groups)
		g.groups = append(g.groups, newGroup(f, k, 0, f.Stamp))
		return
	}
	h := maphash.String(g.seed, k)
	o, ok := g.other[h]
	if !ok {
		if len(g.other) >= g.maxOther {
			g.untracked++
			return
		}
		o.first = f.Stamp
	}
	o.count++
	if f.Stamp.Before(o.first) {
		o.first = f.Stamp
	}
	// minCount is a lower bound: counts kept only grow, so most reports
	// of other groups need no look at the groups kept.
	if o.count <= g.minCount {
		g.other[h] = o
		return
	}
	i := g.smallestAt()
	g.minCount = g.groups[i].Count
	if o.count <= g.minCount {
		g.other[h] = o
		return
	}
	// Swap: this group is kept, the least frequent one only counted.
	delete(g.other, h)
	old := &g.groups[i]
	g.other[maphash.String(g.seed, old.key)] = otherGroup{count: old.Count, first: old.First}
	delete(g.idx, old.key)
	g.groups[i] = newGroup(f, k, o.count-1, o.first)
	g.groups[i].Partial = true
	g.idx[k] = i
}

// smallestAt is the index of the least frequent group kept (the oldest
// of those when several tie).
func (g *Grouper) smallestAt() int {
	at := 0
	for i := range g.groups {
		if c := g.groups[i].Count; c < g.groups[at].Count || c == g.groups[at].Count && g.groups[i].Last.Before(g.groups[at].Last) {
			at = i
		}
	}
	return at
}

// Groups returns the groups kept, most frequent first (then most recent),
// and the count of the others.
func (g *Grouper) Groups() ([]Group, Overflow) {
	out := slices.Clone(g.groups)
	slices.SortStableFunc(out, func(a, b Group) int {
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
	ov := Overflow{Groups: len(g.other), GroupsExact: g.untracked == 0, Reports: g.untracked}
	for _, o := range g.other {
		ov.Reports += o.count
	}
	return out, ov
}

func newGroup(f Failure, key string, count int, first Stamp) Group {
	g := Group{
		Kind: f.Kind, Comm: FoldComm(f.Comm), Order: f.Order,
		Mode: f.Mode, ModeKnown: f.ModeKnown, ModeText: f.ModeText,
		Path: f.Path, Count: count, First: first, Last: f.Stamp, key: key,
	}
	g.setExample(f)
	g.add(f)
	return g
}

func (g *Group) add(f Failure) {
	g.Count++
	if f.Stamp.Before(g.First) {
		g.First = f.Stamp
	}
	if !f.Stamp.Before(g.Last) {
		g.Last = f.Stamp
		// Keep an example with the zone state when the newer report
		// has none (the kernel limits Mem-Info dumps too).
		if len(f.Zones) > 0 || len(g.Example.Zones) == 0 {
			g.setExample(f)
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

// setExample keeps f as the example, its trace cut: the path is already
// summarized, and the frames are for reading.
func (g *Group) setExample(f Failure) {
	if n := len(f.Trace); n > maxExampleFrames {
		f.TraceCut = n - maxExampleFrames
		f.Trace = f.Trace[:maxExampleFrames:maxExampleFrames]
	}
	g.Example = f
}

// GroupFailures groups failures, most frequent first (then most recent),
// with the bounds of a Grouper.
func GroupFailures(fs []Failure) ([]Group, Overflow) {
	var g Grouper
	for _, f := range fs {
		g.Add(f)
	}
	return g.Groups()
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
