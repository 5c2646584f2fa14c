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
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// DefaultDir is where tracefs is mounted when no mount is found.
const DefaultDir = "/sys/kernel/tracing"

// legacyDir is the debugfs path; debugfs automounts tracefs there on access.
const legacyDir = "/sys/kernel/debug/tracing"

// A process-wide reference count, so that several users of Mount in one
// process (parallel tests) share one mount and only the last one unmounts.
var (
	mountMu   sync.Mutex
	mountRefs int
	mountedBy string // directory we mounted ourselves, "" if none
)

// Mount returns the directory of a mounted tracefs, mounting it at
// DefaultDir if none is found. The returned unmount func undoes only what
// Mount did: it is a no-op when tracefs was already mounted, and it
// unmounts only when the last caller in this process releases it.
func Mount() (dir string, unmount func() error, err error) {
	mountMu.Lock()
	defer mountMu.Unlock()

	if mountedBy != "" {
		mountRefs++
		return mountedBy, releaseOnce(), nil
	}
	if dir, ok := findMounted(); ok {
		return dir, func() error { return nil }, nil
	}
	if os.Geteuid() != 0 {
		return "", nil, fmt.Errorf("mounting tracefs at %s: not root (euid %d) and no tracefs is mounted", DefaultDir, os.Geteuid())
	}
	if err := unix.Mount("nodev", DefaultDir, "tracefs", 0, ""); err != nil {
		if lock := lockdownMode(); lock != "" && lock != "none" {
			return "", nil, fmt.Errorf("mounting tracefs at %s: %w (kernel lockdown is %q)", DefaultDir, err, lock)
		}
		return "", nil, fmt.Errorf("mounting tracefs at %s: %w", DefaultDir, err)
	}
	mountedBy = DefaultDir
	mountRefs = 1
	return DefaultDir, releaseOnce(), nil
}

// releaseOnce returns a func that drops one reference, unmounting on the last.
func releaseOnce() func() error {
	var once sync.Once
	return func() error {
		var err error
		once.Do(func() {
			mountMu.Lock()
			defer mountMu.Unlock()
			mountRefs--
			if mountRefs > 0 || mountedBy == "" {
				return
			}
			if e := unix.Unmount(mountedBy, 0); e != nil {
				err = fmt.Errorf("unmounting tracefs at %s: %w", mountedBy, e)
				return
			}
			mountedBy = ""
		})
		return err
	}
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
		if len(fields) >= 3 && fields[2] == "tracefs" && isTracefs(unescapeMount(fields[1])) {
			return unescapeMount(fields[1]), true
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

// unescapeMount undoes the octal escaping of /proc/mounts (\040 for space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
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
