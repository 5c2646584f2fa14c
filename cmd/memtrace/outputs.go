package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// readyFile is --ready-file: a file created once every probe is attached,
// for scripts and tests to wait on, and removed at exit.
//
// memtrace runs as root and the file is often in a directory anyone can
// write (/tmp): it is created with O_EXCL|O_NOFOLLOW, so a file or symlink
// planted there is never overwritten or followed. Because the file must not
// exist, that is checked before any probe is attached (newReadyFile), and
// the file is removed at exit so the next run can create it again.
type readyFile struct {
	path     string
	dev, ino uint64 // of the file created, to remove that one only
}

// newReadyFile checks that path can be created: it does not exist (not even
// as a dangling symlink) and its directory is writable. An empty path is no
// ready file: nil, whose methods do nothing.
func newReadyFile(path string) (*readyFile, error) {
	if path == "" {
		return nil, nil
	}
	if fi, err := os.Lstat(path); err == nil {
		what := "a file"
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			what = "a symlink"
		case fi.IsDir():
			what = "a directory"
		}
		return nil, fmt.Errorf("--ready-file %s: %s is already there; memtrace creates the file itself and never overwrites or follows one (remove it first)", path, what)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--ready-file %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := unix.Faccessat(unix.AT_FDCWD, dir, unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
		return nil, fmt.Errorf("--ready-file %s: cannot create files in %s: %w", path, dir, err)
	}
	return &readyFile{path: path}, nil
}

// create makes the file, holding memtrace's pid, once the probes are attached.
func (r *readyFile) create() error {
	if r == nil {
		return nil
	}
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("creating the ready file: %w", err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err == nil {
		r.dev, r.ino = st.Dev, st.Ino
	}
	if _, err := f.WriteString(strconv.Itoa(os.Getpid()) + "\n"); err != nil {
		return fmt.Errorf("writing the ready file: %w", err)
	}
	return nil
}

// remove deletes the file at exit, unless what is at the path now is not
// the file create made (someone replaced it).
func (r *readyFile) remove() {
	if r == nil || r.ino == 0 {
		return
	}
	var st unix.Stat_t
	if unix.Lstat(r.path, &st) == nil && st.Dev == r.dev && st.Ino == r.ino {
		os.Remove(r.path)
	}
}

// checkStdoutOpen fails when standard output was closed when memtrace
// started (`memtrace watch >&-`). Go's runtime then opens /dev/null
// read-write in its place, so every write would succeed and go nowhere;
// a shell's `>/dev/null` opens it write-only, and is left alone.
func checkStdoutOpen(w io.Writer) error {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	closed := false
	rc.Control(func(fd uintptr) { closed = fd == 1 && isRuntimeDevNull(int(fd)) })
	if closed {
		return errors.New("standard output is closed: nothing would see the output (give it a file, a pipe or a terminal)")
	}
	return nil
}

// isRuntimeDevNull: fd is /dev/null opened read-write.
func isRuntimeDevNull(fd int) bool {
	var st, null unix.Stat_t
	if unix.Fstat(fd, &st) != nil || unix.Stat(os.DevNull, &null) != nil {
		return false
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != null.Rdev {
		return false
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_ACCMODE == unix.O_RDWR
}
