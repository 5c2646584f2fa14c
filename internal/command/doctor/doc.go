// Package doctor checks a host's memory settings against the failures its
// kernel has logged, the checklist of the incident write-ups memtrace
// started from, as findings an operator can act on: each has a severity, the
// values read, why it matters and the exact sysctl or limits line to change.
//
// It reads only procfs, sysfs and the kernel log (never tracing), so it is
// fast and works without root, with fewer findings: what was skipped and
// why is part of the report.
//
// Gather reads a host into Inputs; Check turns Inputs into a Report. The
// split keeps every check a pure function of files that tests can hold in
// testdata/.
package doctor
