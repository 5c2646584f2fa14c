package capture

import "sort"

// sortAggregates orders rows by count, largest first, so a reader of the
// file sees the worst offenders at the top; ties keep a stable order.
func sortAggregates(doc *Document) {
	sort.SliceStable(doc.AllocFailures, func(i, j int) bool {
		a, b := doc.AllocFailures[i], doc.AllocFailures[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Pid < b.Pid
	})
	sort.SliceStable(doc.Extfrag, func(i, j int) bool {
		a, b := doc.Extfrag[i], doc.Extfrag[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Pid < b.Pid
	})
}
