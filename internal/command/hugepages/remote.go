package hugepages

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// Huge pages remote from a process's CPUs: a fault takes its page from
// the node of the CPU it runs on while that node's pool has one, else from
// another node (or, under a memory policy, from the nodes it names). A
// database whose CPUs are on one node (a cpuset, taskset, numactl
// --cpunodebind) but whose shared memory was faulted on another, because
// its own node's pool ran dry or another process touched the pages first,
// reads it across the interconnect for as long as it runs.

// RemoteHuge is a process with huge pages on nodes none of its allowed
// CPUs are on.
type RemoteHuge struct {
	Pid  int    `json:"pid"`
	Comm string `json:"comm"`
	// CPUs is its Cpus_allowed_list (/proc/PID/status); CPUNodes the
	// nodes those CPUs are on.
	CPUs     string `json:"cpus_allowed"`
	CPUNodes []int  `json:"cpu_nodes"`
	// Remote are its huge pages on other nodes; LocalKB and RemoteKB sum
	// its huge pages on and off its CPUs' nodes.
	Remote   []NodeUse `json:"remote"`
	LocalKB  uint64    `json:"local_kb"`
	RemoteKB uint64    `json:"remote_kb"`
}

// String is the finding, unescaped (Comm comes from the process).
func (r RemoteHuge) String() string {
	var parts []string
	for _, n := range r.Remote {
		parts = append(parts, fmt.Sprintf("%s of %s pages on node %d", kib(n.KB), kib(n.PageSizeKB), n.Node))
	}
	return fmt.Sprintf("%s[%d] may run only on CPUs %s (node %s) but %s of its %s of huge pages are on other nodes (%s): every access to them crosses the interconnect",
		r.Comm, r.Pid, r.CPUs, nodeList(r.CPUNodes), kib(r.RemoteKB), kib(r.LocalKB+r.RemoteKB), strings.Join(parts, ", "))
}

func nodeList(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// maxCPUs bounds a CPU list read from /proc or sysfs.
const maxCPUs = 1 << 16

// NodeCPUs reads each node's CPUs (/sys/devices/system/node/node<N>/
// cpulist). A kernel without NUMA has no node directories: none, no error.
func NodeCPUs(sysRoot string) (map[int][]int, error) {
	dir := filepath.Join(sysRoot, "devices/system/node")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	out := map[int][]int{}
	for _, e := range entries {
		id, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "node"))
		if err != nil || !strings.HasPrefix(e.Name(), "node") {
			continue
		}
		path := filepath.Join(dir, e.Name(), "cpulist")
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			continue // a tree (or kernel) without it: that node's CPUs are unknown
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if out[id], err = sysstate.ParseList(string(b), maxCPUs); err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	return out, nil
}

// FindRemote compares a process's huge pages per node with the nodes of
// the CPUs it may run on (cpus, its Cpus_allowed_list). It reports false
// when all its huge pages are on those nodes, or when nothing can be said
// (no CPU list, fewer than two nodes).
func FindRemote(pid int, comm, cpus string, use []NodeUse, nodeCPUs map[int][]int) (RemoteHuge, bool) {
	allowed, err := sysstate.ParseList(cpus, maxCPUs)
	if err != nil || len(allowed) == 0 || len(nodeCPUs) < 2 {
		return RemoteHuge{}, false
	}
	r := RemoteHuge{Pid: pid, Comm: comm, CPUs: cpus}
	for node, list := range nodeCPUs {
		for _, c := range list {
			if slices.Contains(allowed, c) {
				r.CPUNodes = append(r.CPUNodes, node)
				break
			}
		}
	}
	slices.Sort(r.CPUNodes)
	if len(r.CPUNodes) == 0 {
		return RemoteHuge{}, false
	}
	for _, n := range use {
		if slices.Contains(r.CPUNodes, n.Node) {
			r.LocalKB += n.KB
			continue
		}
		r.Remote = append(r.Remote, n)
		r.RemoteKB += n.KB
	}
	return r, r.RemoteKB > 0
}

// ReadRemote reads, for each of pids, its huge pages per node
// (numa_maps) and its allowed CPUs (status), and returns the processes
// with huge pages remote from them. Processes that exited or cannot be
// read are skipped.
func ReadRemote(procRoot, sysRoot string, pids []int) ([]RemoteHuge, error) {
	if len(pids) == 0 {
		return nil, nil
	}
	nodeCPUs, err := NodeCPUs(sysRoot)
	if err != nil || len(nodeCPUs) < 2 {
		return nil, err
	}
	var out []RemoteHuge
	for _, pid := range pids {
		ms, err := ReadNumaMaps(procRoot, pid)
		if err != nil {
			continue
		}
		st, err := ReadStatus(procRoot, pid)
		if err != nil {
			continue
		}
		if r, ok := FindRemote(pid, st.Comm, st.CPUsAllowed, HugeByNode(ms), nodeCPUs); ok {
			out = append(out, r)
		}
	}
	return out, nil
}
