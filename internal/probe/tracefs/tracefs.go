// Package tracefs finds or mounts the kernel's tracing filesystem and counts
// tracepoint hits through private trace instances.
//
// It exists so that memtrace's privileged tests can check, independently of
// the eBPF programs under test, that a kernel event really happened: the
// counter uses ftrace's own ring buffer, not BPF. memtrace itself mounts
// tracefs through it for cilium/ebpf, which finds the classic tracepoints
// by path under /sys/kernel/tracing.
//
// Mount unmounts only what it mounted. Ownership is per mount namespace
// and tied to the mount itself: the process that mounts tracefs records
// the ID of that mount in a marker named after its mount namespace, and
// the last user of this package in that namespace (across processes)
// unmounts it only if the tracefs on top at that directory is still that
// mount. A run is the time during which some process of the namespace
// uses tracefs through this package; a tracefs that was mounted when the
// run started (by the admin, by systemd, in the namespace this one was
// copied from, or left behind by a memtrace that was killed) is never
// unmounted: a marker whose processes all died is dropped by the next
// run's first user, so a mount left by a killed memtrace stays. The mount
// is an ordinary one at /sys/kernel/tracing, not a detached one (fsmount),
// because cilium/ebpf looks tracefs up by that path; where /sys propagates
// mounts to other namespaces (shared or slave), they see it and its
// unmount too.
package tracefs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/memtrace/memtrace/internal/decode/mounts"
	"golang.org/x/sys/unix"
)

// DefaultDir is where tracefs is mounted when no mount is found.
const DefaultDir = "/sys/kernel/tracing"

// Mount state of this process: users of Mount in one process (parallel
// tests) share one reference on the mount.
var (
	mountMu    sync.Mutex
	mountRefs  int
	mountDir   string
	mountOwner *owner // this process's share of the namespace's users
)

// Mount returns the directory of a mounted tracefs, mounting it at
// DefaultDir if none is found. The returned unmount func undoes only what
// Mount did, in this mount namespace: a tracefs that was mounted when
// Mount found no other user of this package in the namespace is left
// alone, and one that Mount mounted is unmounted by the last user in the
// namespace to let go, in whichever process that is, and only if it is
// still the very mount that was made. (Several test binaries run in
// parallel; unmounting under another one would make its trace instances
// unreachable and leak them.)
func Mount() (dir string, unmount func() error, err error) {
	mountMu.Lock()
	defer mountMu.Unlock()
	if mountRefs > 0 {
		mountRefs++
		return mountDir, releaseOnce(), nil
	}
	if os.Geteuid() != 0 {
		if dir, ok := findMounted(); ok {
			return dir, func() error { return nil }, nil
		}
		return "", nil, fmt.Errorf("mounting tracefs at %s: not root (euid %d) and no tracefs is mounted", DefaultDir, os.Geteuid())
	}
	base, err := nsBase()
	if err != nil {
		return "", nil, err
	}
	mutex, err := lockMutex(base)
	if err != nil {
		return "", nil, err
	}
	o, err := join(base)
	if err != nil {
		return "", nil, errors.Join(err, unlockMutex(mutex, false))
	}
	// fail leaves as the last user would, so a failed first Mount
	// leaves no lock files behind.
	fail := func(err error) (string, func() error, error) {
		last, lerr := o.leave()
		return "", nil, errors.Join(err, lerr, unlockMutex(mutex, last))
	}
	dir, ok := findMounted()
	if !ok {
		if err := unix.Mount("nodev", DefaultDir, "tracefs", 0, ""); err != nil {
			if lock := lockdownMode(); lock != "" && lock != "none" {
				return fail(fmt.Errorf("mounting tracefs at %s: %w (kernel lockdown is %q)", DefaultDir, err, lock))
			}
			return fail(fmt.Errorf("mounting tracefs at %s: %w", DefaultDir, err))
		}
		dir = DefaultDir
		// The marker tells the last user, maybe in another process of
		// this namespace, which mount is ours to undo.
		if err := o.record(dir); err != nil {
			return fail(errors.Join(err, unix.Unmount(dir, 0)))
		}
	}
	mutex.Close()
	mountDir, mountRefs, mountOwner = dir, 1, o
	return dir, releaseOnce(), nil
}

// releaseOnce returns a func that drops one reference. The last reference
// in the last process of the namespace unmounts tracefs if this package
// mounted it.
func releaseOnce() func() error {
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			mountMu.Lock()
			defer mountMu.Unlock()
			mountRefs--
			if mountRefs > 0 {
				return
			}
			o := mountOwner
			mountOwner, mountDir = nil, ""
			mutex, lerr := lockMutex(o.base)
			if lerr != nil {
				o.users.Close()
				err = lerr
				return
			}
			last, lerr := o.leave()
			err = errors.Join(lerr, unlockMutex(mutex, last))
		})
		return err
	}
}

// findMounted looks for tracefs in the usual places, then in /proc/mounts.
func findMounted() (string, bool) {
	if isTracefs(DefaultDir) {
		return DefaultDir, true
	}
	// From the mount table, not by probing legacyDir: a stat there makes
	// debugfs automount tracefs, which nobody would then unmount.
	for _, dir := range mounts.MountPoints("tracefs") {
		if isTracefs(dir) {
			return dir, true
		}
	}
	return "", false
}

func isTracefs(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == unix.TRACEFS_MAGIC
}

// lockdownMode returns the active lockdown mode ("none", "integrity",
// "confidentiality"), or "" if the lockdown LSM is not present.
func lockdownMode() string {
	b, err := os.ReadFile("/sys/kernel/security/lockdown")
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.IndexByte(s, '['); i >= 0 {
		if j := strings.IndexByte(s[i:], ']'); j > 0 {
			return s[i+1 : i+j]
		}
	}
	return ""
}

// explain adds the likely cause to a permission error on a tracefs file.
func explain(err error) error {
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w (not root)", err)
	}
	if lock := lockdownMode(); lock != "" && lock != "none" {
		return fmt.Errorf("%w (kernel lockdown is %q)", err, lock)
	}
	return err
}
