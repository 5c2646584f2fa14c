package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fdinfoIDs returns the BPF object ids a process holds file descriptors
// for: key is "prog_id" or "map_id". Links also show their prog_id.
func fdinfoIDs(pid int, key string) map[uint32]bool {
	out := map[uint32]bool{}
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || k != key {
				continue
			}
			if id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
				out[uint32(id)] = true
			}
		}
	}
	return out
}

// attachedPerfEvents counts a process's perf events that have a BPF
// program attached: how bpftrace and bcc attach tracepoints. It asks the
// kernel (BPF_TASK_FD_QUERY), so it is true attachment, not a log line.
func attachedPerfEvents(pid int) int {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || target != "anon_inode:[perf_event]" {
			continue
		}
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if taskFDQuery(pid, fd) {
			n++
		}
	}
	return n
}

// taskFDQuery reports whether the perf event behind pid's fd has a BPF
// program attached (union bpf_attr, task_fd_query member).
func taskFDQuery(pid, fd int) bool {
	var attr struct {
		pid, fd, flags, bufLen uint32
		buf                    uint64
		progID, fdType         uint32
		probeOffset, probeAddr uint64
	}
	attr.pid, attr.fd = uint32(pid), uint32(fd)
	const bpfTaskFDQuery = 20
	_, _, errno := unix.Syscall(unix.SYS_BPF, bpfTaskFDQuery, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	return errno == 0 && attr.progID != 0
}

// statusKB reads a "VmHWM:"-style field of /proc/PID/status in KiB.
func statusKB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == field {
			fs := strings.Fields(v)
			if len(fs) > 0 {
				n, _ := strconv.ParseInt(fs[0], 10, 64)
				return n
			}
		}
	}
	return -1
}

// cpuTicks is utime+stime of a process (all threads) in clock ticks.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	// The command name may hold spaces: fields start after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	fs := strings.Fields(s[i+1:])
	if len(fs) < 13 {
		return -1
	}
	ut, _ := strconv.ParseInt(fs[11], 10, 64)
	st, _ := strconv.ParseInt(fs[12], 10, 64)
	return ut + st
}

// clockTick is USER_HZ, 100 on every Linux architecture that matters here.
const clockTick = 100
