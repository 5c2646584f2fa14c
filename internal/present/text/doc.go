// Package text holds how memtrace writes for people to read, the same way
// in every command: untrusted text escaped (process names, cgroup paths and
// kernel log lines, which whoever runs a process on the host chooses), byte
// sizes in binary units, and terminal tables.
package text
