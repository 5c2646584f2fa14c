package watch

// The rows a renderer asks for, ranked for a stable screen.

import "sort"

// counted is a per-process row ranked by recent, then total activity.
type counted interface {
	rank() (recent, total uint64, pid uint32)
}

func (p *AllocProc) rank() (uint64, uint64, uint32) { return p.Recent, p.Total, p.Pid }
func (p *FragProc) rank() (uint64, uint64, uint32)  { return p.Recent, p.Total, p.Pid }

// ranked returns the rows of a table, most recent activity first, then
// most activity overall, then by pid for a stable screen.
func ranked[R counted](table map[uint32]R) []R {
	rows := make([]R, 0, len(table))
	for _, p := range table {
		rows = append(rows, p)
	}
	sort.Slice(rows, func(i, j int) bool {
		ar, at, ap := rows[i].rank()
		br, bt, bp := rows[j].rank()
		if ar != br {
			return ar > br
		}
		if at != bt {
			return at > bt
		}
		return ap < bp
	})
	return rows
}

// AllocRows returns the allocation-failure rows, most recent failures
// first, then most failures overall.
func (m *Model) AllocRows() []*AllocProc { return ranked(m.alloc) }

// FragRows returns the fragmentation rows, most recent first.
func (m *Model) FragRows() []*FragProc { return ranked(m.frag) }

// HugeRows returns the huge-page rows, newest first.
func (m *Model) HugeRows() []HugeRow {
	out := make([]HugeRow, len(m.huge))
	for i, r := range m.huge {
		out[len(m.huge)-1-i] = r
	}
	return out
}

// TopStacks returns the n most frequent failing stacks.
func (m *Model) TopStacks(n int) []*Stack {
	out := make([]*Stack, 0, len(m.stacks))
	for _, s := range m.stacks {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func rankKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
