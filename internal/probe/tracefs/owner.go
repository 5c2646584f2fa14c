package tracefs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/memtrace/memtrace/internal/decode/mounts"
	"golang.org/x/sys/unix"
)

// Ownership of a tracefs mount is shared by the users of this package in
// one mount namespace, across processes. Three files, named after the
// namespace, hold it:
//
//   - <base>.lock: flock'd exclusively around every decision below;
//   - <base>.users: flock'd shared by every process using tracefs, so the
//     last one can tell that it is last (an exclusive try-lock succeeds);
//   - <base>.mounted: the marker, written by the process that mounted
//     tracefs, naming the mount it made.
//
// Flocks die with their process, so after a crash the first user of the
// next run finds no one holding <base>.users and drops the marker: a
// tracefs that is mounted when a run starts is never that run's to undo,
// whoever mounted it. Files of other namespaces are never read, so a run
// in one namespace cannot unmount another namespace's tracefs, and the
// marker names the very mount (its ID), so a tracefs mounted over or
// instead of ours while we ran is left alone.

// owner is this process's membership of its namespace's users.
type owner struct {
	base  string   // lockDir()/memtrace-tracefs-mnt<namespace inode>
	users *os.File // flock'd shared while this process uses tracefs
}

// nsBase names the files of the calling process's mount namespace. The
// inode of /proc/self/ns/mnt is unique among namespaces that exist.
func nsBase() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/mnt", &st); err != nil {
		return "", fmt.Errorf("identifying the mount namespace: %w", err)
	}
	return filepath.Join(lockDir(), "memtrace-tracefs-mnt"+strconv.FormatUint(st.Ino, 10)), nil
}

// lockDir holds the lock files.
func lockDir() string {
	if st, err := os.Stat("/run/lock"); err == nil && st.IsDir() {
		return "/run/lock"
	}
	return os.TempDir()
}

// lockMutex takes <base>.lock. The last user removes the lock file while
// holding it, so a lock taken on a file that has since been unlinked or
// replaced is dropped and taken again on the current file.
func lockMutex(base string) (*os.File, error) {
	path := base + ".lock"
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening tracefs lock: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if sameFile(f, path) {
			return f, nil
		}
		f.Close()
	}
}

func sameFile(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Stat(path)
	return err == nil && os.SameFile(fi, pi)
}

// join makes this process a user of tracefs in its namespace. The caller
// holds the mutex. The first user drops a marker left by a run whose
// processes all died before unmounting.
func join(base string) (*owner, error) {
	users, err := os.OpenFile(base+".users", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening tracefs users lock: %w", err)
	}
	if unix.Flock(int(users.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		if err := os.Remove(base + ".mounted"); err != nil && !errors.Is(err, os.ErrNotExist) {
			users.Close()
			return nil, fmt.Errorf("removing stale tracefs marker: %w", err)
		}
	}
	// Converting the lock is not atomic, but every flock of this file is
	// taken under the mutex.
	if err := unix.Flock(int(users.Fd()), unix.LOCK_SH); err != nil {
		users.Close()
		return nil, fmt.Errorf("locking tracefs users: %w", err)
	}
	return &owner{base: base, users: users}, nil
}

// record writes the marker naming the tracefs this process just mounted
// at dir. The caller holds the mutex.
func (o *owner) record(dir string) error {
	id, err := mountID(dir)
	if err != nil {
		return err
	}
	marker := dir + "\n" + id + "\n"
	for _, p := range automountPoints() {
		marker += p + "\n"
	}
	if err := os.WriteFile(o.base+".mounted", []byte(marker), 0o600); err != nil {
		return fmt.Errorf("recording tracefs mount: %w", err)
	}
	return nil
}

// automountPoints are the tracing directories of mounted debugfs that have
// no tracefs on them yet. Looking up such a path makes the kernel mount
// tracefs there, and cilium/ebpf does so when its copy of the mount
// table, read once at the process's first BPF system call, predates our
// mount: the last user removes those automounts with ours.
func automountPoints() []string {
	tracefs := mounts.MountPoints("tracefs")
	var out []string
	for _, d := range mounts.MountPoints("debugfs") {
		p := filepath.Join(d, "tracing")
		if !slices.Contains(tracefs, p) {
			out = append(out, p)
		}
	}
	return out
}

// leave ends this process's use of tracefs. The last user in the
// namespace unmounts the tracefs named by the marker if it is still the
// mount on top at its directory, and removes the files. The caller holds
// the mutex; last says whether it is to remove the mutex file too.
func (o *owner) leave() (last bool, err error) {
	defer o.users.Close()
	// Exclusive only if no other process holds it shared, i.e. uses tracefs.
	if unix.Flock(int(o.users.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false, nil
	}
	if b, rerr := os.ReadFile(o.base + ".mounted"); rerr == nil {
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(lines) >= 2 && lines[1] != "" && isTracefs(lines[0]) && ownMount(lines[0], lines[1]) {
			if uerr := unix.Unmount(lines[0], 0); uerr != nil {
				err = fmt.Errorf("unmounting tracefs at %s: %w", lines[0], uerr)
			}
			// Automounts our run caused under debugfs, from the table:
			// a lookup of one that is gone would mount it again.
			now := mounts.MountPoints("tracefs")
			for _, p := range lines[min(2, len(lines)):] {
				if slices.Contains(now, p) {
					if uerr := unix.Unmount(p, 0); uerr != nil {
						err = errors.Join(err, fmt.Errorf("unmounting the tracefs automounted at %s: %w", p, uerr))
					}
				}
			}
		}
	}
	for _, suffix := range []string{".mounted", ".users"} {
		if rerr := os.Remove(o.base + suffix); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("removing tracefs lock file: %w", rerr))
		}
	}
	return true, err
}

// ownMount says whether the mount on top at dir is the one named id.
func ownMount(dir, id string) bool {
	now, err := mountID(dir)
	return err == nil && now == id
}

// unlockMutex releases the mutex, removing its file after the last user
// left (a process waiting for the old file then retries on a new one).
func unlockMutex(f *os.File, remove bool) error {
	var err error
	if remove {
		if rerr := os.Remove(f.Name()); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = fmt.Errorf("removing tracefs lock file: %w", rerr)
		}
	}
	f.Close()
	return err
}

// mountID identifies the mount on top at dir in this namespace: by the
// unique 64-bit ID, never reused, where statx has it (Linux 6.8+); else by
// the mount ID of /proc/self/mountinfo, which a later mount may reuse
// once this one is gone.
func mountID(dir string) (string, error) {
	var st unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_NO_AUTOMOUNT, unix.STATX_MNT_ID|unix.STATX_MNT_ID_UNIQUE, &st)
	switch {
	case err == nil && st.Mask&unix.STATX_MNT_ID_UNIQUE != 0:
		return "unique " + strconv.FormatUint(st.Mnt_id, 10), nil
	case err == nil && st.Mask&unix.STATX_MNT_ID != 0:
		return "id " + strconv.FormatUint(st.Mnt_id, 10), nil
	case err != nil && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL):
		return "", fmt.Errorf("identifying the mount at %s: %w", dir, err)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("identifying the mount at %s: %w", dir, err)
	}
	defer f.Close()
	id, err := topMount(f, dir)
	if err != nil {
		return "", fmt.Errorf("identifying the mount at %s: %w", dir, err)
	}
	return "id " + strconv.FormatUint(id, 10), nil
}

// topMount finds, in a mountinfo table, the ID of the mount that a path
// lookup of dir reaches: of the mounts at dir, the one no other mount at
// dir is mounted on. (A mount propagated under an existing one becomes
// that one's parent, so the order of the table is not enough.)
func topMount(r io.Reader, dir string) (uint64, error) {
	var at []uint64
	parents := map[uint64]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || mounts.Unescape(fields[4]) != dir {
			continue
		}
		id, err1 := strconv.ParseUint(fields[0], 10, 64)
		parent, err2 := strconv.ParseUint(fields[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		at = append(at, id)
		parents[parent] = true
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	for i := len(at) - 1; i >= 0; i-- {
		if !parents[at[i]] {
			return at[i], nil
		}
	}
	return 0, fmt.Errorf("nothing is mounted at %s", dir)
}
