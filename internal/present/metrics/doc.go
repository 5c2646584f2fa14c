// Package metrics exports memtrace's exact in-kernel counts, its huge-page
// requests, the host's memory state and its own health as Prometheus
// metrics, as constant metrics written by promtext at each scrape.
//
// Counters are kept in Go: each sync adds the growth of every in-kernel
// aggregate since the previous sync, so they stay monotonic when the
// aggregates of idle processes are deleted from the kernel's maps to keep
// them from filling up on a long run. High-cardinality labels (comm and
// the container labels) can be turned off, and are bounded: see family.
package metrics
