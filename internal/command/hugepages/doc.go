// Package hugepages answers, from /proc and /sys alone, whether a host's
// shared memory is on huge pages: pool accounting per page size, which
// processes map huge pages (from smaps), which System V segments exist and
// who attaches them, the vm.nr_hugepages and memlock a set of segments or a
// planned size needs, and the page-table cost of mapping the same memory
// with 4 KiB pages.
//
// Everything read from the monitored system (process names, paths) is
// returned as is; callers escape it before printing it to a terminal.
package hugepages
