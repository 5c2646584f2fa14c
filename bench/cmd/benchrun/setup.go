package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ensureTracefs mounts tracefs for the run when nothing has: bpftrace, bcc,
// the floor and memtrace all attach classic tracepoints. Unmounted after.
func (e *env) ensureTracefs() error {
	for _, d := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(d + "/events"); err == nil {
			return nil
		}
	}
	if err := unix.Mount("nodev", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		return fmt.Errorf("mounting tracefs on /sys/kernel/tracing: %w", err)
	}
	e.logf("mounted tracefs on /sys/kernel/tracing for the run")
	e.onCleanup(func() {
		if err := unix.Unmount("/sys/kernel/tracing", unix.MNT_DETACH); err != nil {
			e.logf("unmounting tracefs: %v", err)
		}
	})
	return nil
}

// bccHeaders gives bcc kernel headers when the running kernel has none
// (no /lib/modules/RELEASE/build, no kheaders): Debian's split header
// packages (-common and the arch part) merged into one symlink tree in the
// scratch directory, named by BCC_KERNEL_SOURCE. The trace tool only needs
// them for basic includes; tracepoint records come from tracefs.
func (e *env) bccHeaders() error {
	var u unix.Utsname
	unix.Uname(&u)
	release := unix.ByteSliceToString(u.Release[:])
	if _, err := os.Stat("/lib/modules/" + release + "/build"); err == nil {
		return nil
	}
	if _, err := os.Stat("/sys/kernel/kheaders.tar.xz"); err == nil {
		return nil
	}
	commons, _ := filepath.Glob("/usr/src/linux-headers-*-common")
	sort.Strings(commons)
	if len(commons) == 0 {
		return errors.New("bcc needs kernel headers and this kernel has none: install linux-headers-" + runtime.GOARCH + " (scripts/bench.sh does)")
	}
	common := commons[len(commons)-1]
	// Debian names its architectures as Go does (amd64, arm64).
	arch := strings.TrimSuffix(common, "-common") + "-" + runtime.GOARCH
	if _, err := os.Stat(arch); err != nil {
		return fmt.Errorf("found %s but not %s: %w", common, arch, err)
	}
	tree := filepath.Join(e.work, "kernel-headers")
	if err := mergeTrees(tree, common, arch); err != nil {
		return fmt.Errorf("preparing headers for bcc: %w", err)
	}
	e.tracerEnv = append(e.tracerEnv, "BCC_KERNEL_SOURCE="+tree)
	e.logf("bcc uses headers %s + %s (the running kernel ships none)", filepath.Base(common), filepath.Base(arch))
	return nil
}

// mergeTrees makes dst the union of the source trees: a directory that
// more than one source has is made and merged entry by entry; any other
// entry is a symbolic link to its source, the last source winning.
func mergeTrees(dst string, srcs ...string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries := map[string][]string{}
	var names []string
	for _, src := range srcs {
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if entries[e.Name()] == nil {
				names = append(names, e.Name())
			}
			entries[e.Name()] = append(entries[e.Name()], filepath.Join(src, e.Name()))
		}
	}
	for _, name := range names {
		paths := entries[name]
		var dirs []string
		for _, p := range paths {
			if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
				dirs = append(dirs, p)
			}
		}
		if len(dirs) > 1 {
			if err := mergeTrees(filepath.Join(dst, name), dirs...); err != nil {
				return err
			}
			continue
		}
		if err := os.Symlink(paths[len(paths)-1], filepath.Join(dst, name)); err != nil {
			return err
		}
	}
	return nil
}

// loadedProgIDs lists every BPF program loaded in the kernel.
func loadedProgIDs() map[ebpf.ProgramID]bool {
	ids := map[ebpf.ProgramID]bool{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return ids
		}
		ids[next] = true
		id = next
	}
}

// newProgIDs lists programs loaded now that were not before, ignoring
// those whose owner is still alive and not ours (others' tests may run).
func newProgIDs(before map[ebpf.ProgramID]bool) []ebpf.ProgramID {
	var out []ebpf.ProgramID
	for id := range loadedProgIDs() {
		if before[id] {
			continue
		}
		if owners := progOwners(uint32(id)); len(owners) > 0 {
			continue
		}
		out = append(out, id)
	}
	return out
}

// progOwners lists the processes holding a descriptor of a program.
func progOwners(id uint32) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid == os.Getpid() {
			continue
		}
		if fdinfoIDs(pid, "prog_id")[id] {
			pids = append(pids, pid)
		}
	}
	return pids
}
