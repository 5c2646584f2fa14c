// Package tracefs finds or mounts the kernel's tracing filesystem and counts
// tracepoint hits through private trace instances.
//
// It exists so that memtrace's privileged tests can check, independently of
// the eBPF programs under test, that a kernel event really happened: the
// counter uses ftrace's own ring buffer, not BPF.
package tracefs

import (
	"bufio"
	"errors"
	"fmt"
	"github.com/memtrace/memtrace/pkg/mounts"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// DefaultDir is where tracefs is mounted when no mount is found.
const DefaultDir = "/sys/kernel/tracing"

// legacyDir is the debugfs path; debugfs automounts tracefs there on access.
const legacyDir = "/sys/kernel/debug/tracing"

// Mount state of this process: users of Mount in one process (parallel
// tests) share one reference on the mount.
var (
	mountMu   sync.Mutex
	mountRefs int
	mountDir  string
	usersLock *os.File // shared flock held while mountRefs > 0
)

// Mount returns the directory of a mounted tracefs, mounting it at
// DefaultDir if none is found. The returned unmount func undoes only what
// Mount did: when tracefs was mounted by someone else it does nothing, and
// when Mount mounted it, tracefs is unmounted by the last user of this
// package to let go, in whichever process that is. (Several test binaries
// run in parallel; unmounting under another one would make its trace
// instances unreachable and leak them.)
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
	unlock, err := lockFile(mutexLockName, unix.LOCK_EX)
	if err != nil {
		return "", nil, err
	}
	defer unlock()
	users, err := openLockFile(usersLockName)
	if err != nil {
		return "", nil, err
	}
	if err := unix.Flock(int(users.Fd()), unix.LOCK_SH); err != nil {
		users.Close()
		return "", nil, fmt.Errorf("locking tracefs users: %w", err)
	}
	dir, ok := findMounted()
	if !ok {
		if err := unix.Mount("nodev", DefaultDir, "tracefs", 0, ""); err != nil {
			users.Close()
			if lock := lockdownMode(); lock != "" && lock != "none" {
				return "", nil, fmt.Errorf("mounting tracefs at %s: %w (kernel lockdown is %q)", DefaultDir, err, lock)
			}
			return "", nil, fmt.Errorf("mounting tracefs at %s: %w", DefaultDir, err)
		}
		dir = DefaultDir
		// The marker tells the last user, maybe in another process, that
		// the mount is ours to undo.
		if err := os.WriteFile(markerPath(), []byte(dir), 0o600); err != nil {
			unix.Unmount(dir, 0)
			users.Close()
			return "", nil, fmt.Errorf("recording tracefs mount: %w", err)
		}
	}
	mountDir, mountRefs, usersLock = dir, 1, users
	return dir, releaseOnce(), nil
}

// releaseOnce returns a func that drops one reference. The last reference
// in the last process unmounts tracefs if this package mounted it.
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
			err = releaseMount(usersLock)
			usersLock, mountDir = nil, ""
		})
		return err
	}
}

func releaseMount(users *os.File) error {
	defer users.Close()
	unlock, err := lockFile(mutexLockName, unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	// Exclusive only if no other process holds it shared, i.e. uses tracefs.
	if unix.Flock(int(users.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return nil
	}
	b, err := os.ReadFile(markerPath())
	if err != nil {
		return nil // not mounted by us
	}
	dir := string(b)
	if isTracefs(dir) {
		if err := unix.Unmount(dir, 0); err != nil {
			return fmt.Errorf("unmounting tracefs at %s: %w", dir, err)
		}
	}
	os.Remove(markerPath())
	return nil
}

const (
	mutexLockName = "memtrace-tracefs-mount.lock"
	usersLockName = "memtrace-tracefs-users.lock"
)

// lockDir holds the lock files; they stay there, removing them would race.
func lockDir() string {
	if st, err := os.Stat("/run/lock"); err == nil && st.IsDir() {
		return "/run/lock"
	}
	return os.TempDir()
}

func markerPath() string { return filepath.Join(lockDir(), "memtrace-tracefs.mounted") }

func openLockFile(name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(lockDir(), name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening tracefs lock: %w", err)
	}
	return f, nil
}

func lockFile(name string, how int) (unlock func(), err error) {
	f, err := openLockFile(name)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// findMounted looks for tracefs in the usual places, then in /proc/mounts.
func findMounted() (string, bool) {
	for _, dir := range []string{DefaultDir, legacyDir} {
		if isTracefs(dir) {
			return dir, true
		}
	}
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "tracefs" && isTracefs(mounts.Unescape(fields[1])) {
			return mounts.Unescape(fields[1]), true
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
