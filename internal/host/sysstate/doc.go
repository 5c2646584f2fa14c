// Package sysstate takes a snapshot of the kernel memory state that matters
// when atomic page allocations fail or a database does not get its huge
// pages: free blocks per order and watermarks per zone, the huge page pools,
// the reclaim and compaction counters, and the vm sysctls that tune them.
//
// A snapshot is taken before and after a capture and once a second by
// "memtrace watch", so a Reader reads only the files it needs and keeps what
// cannot change while the system runs (the pageblock order).
//
// Every reader takes the procfs and sysfs mount points as roots, so the
// tests run on copies of those trees in testdata/. Parsers that
// github.com/prometheus/procfs provides are used as they are (meminfo,
// buddyinfo, zoneinfo, sysctls); this package parses only what procfs does
// not: /proc/vmstat, the header of /proc/pagetypeinfo and the hugetlb pools
// in sysfs.
package sysstate
