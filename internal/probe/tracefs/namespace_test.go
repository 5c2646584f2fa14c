package tracefs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The tests here run Mount in child processes (this test binary again,
// as TestMountHelper) inside private mount namespaces made with
// unshare(1), and look at those namespaces' mount tables: the host's
// tracefs, which other tests may be using, is never touched.

// helperEnv makes TestMountHelper act instead of skipping.
const helperEnv = "MEMTRACE_TRACEFS_MOUNT_HELPER"

// TestMountHelper is the child process of the namespace tests: it calls
// Mount, prints "mounted DIR", waits for a line on stdin, releases the
// mount and prints "released" (or "error ..." on failure).
func TestMountHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("child process of the mount namespace tests")
	}
	dir, unmount, err := Mount()
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("mounted %s\n", dir)
	bufio.NewReader(os.Stdin).ReadString('\n')
	if err := unmount(); err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	fmt.Println("released")
	os.Exit(0)
}

// mntNS is a private mount namespace kept alive by a shell waiting on
// its stdin; its mounts go with it when the test ends.
type mntNS struct {
	t   *testing.T
	pid int
}

// newNS makes a private mount namespace, a copy of parent's (or of the
// test's own when parent is nil).
func newNS(t *testing.T, parent *mntNS) *mntNS {
	t.Helper()
	args := []string{"unshare", "--mount", "--propagation", "private", "sh", "-c", "echo ready; read x"}
	if parent != nil {
		args = append([]string{"nsenter", "--target", strconv.Itoa(parent.pid), "--mount", "--"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", args, err)
	}
	t.Cleanup(func() {
		in.Close()
		cmd.Wait()
	})
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("%v: got %q, want ready", args, line)
	}
	return &mntNS{t: t, pid: cmd.Process.Pid}
}

// run runs a command in the namespace.
func (ns *mntNS) run(args ...string) {
	ns.t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--target", strconv.Itoa(ns.pid), "--mount", "--"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		ns.t.Fatalf("%v: %v: %s", args, err, out)
	}
}

// tracefs lists the namespace's tracefs mounts as "ID DIR".
func (ns *mntNS) tracefs() []string {
	ns.t.Helper()
	return ns.mounts("tracefs")
}

func (ns *mntNS) mounts(fstype string) []string {
	ns.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", ns.pid))
	if err != nil {
		ns.t.Fatal(err)
	}
	var list []string
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if f := strings.Fields(pre); ok && len(f) >= 5 && strings.HasPrefix(post, fstype+" ") {
			list = append(list, f[0]+" "+f[4])
		}
	}
	return list
}

// clear unmounts every tracefs (and debugfs, which would mount one on
// access) in the namespace: "tracefs is not mounted".
func (ns *mntNS) clear() {
	ns.t.Helper()
	for _, fstype := range []string{"tracefs", "debugfs"} {
		for m := ns.mounts(fstype); len(m) > 0; m = ns.mounts(fstype) {
			_, dir, _ := strings.Cut(m[len(m)-1], " ")
			ns.run("umount", dir)
		}
	}
}

// mountTracefs mounts tracefs as an admin would.
func (ns *mntNS) mountTracefs() {
	ns.t.Helper()
	ns.run("mount", "-t", "tracefs", "nodev", DefaultDir)
}

// lockFiles lists the files Mount keeps for the namespace.
func (ns *mntNS) lockFiles() []string {
	ns.t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/mnt", ns.pid), &st); err != nil {
		ns.t.Fatal(err)
	}
	m, err := filepath.Glob(filepath.Join(lockDir(), fmt.Sprintf("memtrace-tracefs-mnt%d.*", st.Ino)))
	if err != nil {
		ns.t.Fatal(err)
	}
	return m
}

// helper is a TestMountHelper process holding a Mount in a namespace.
type helper struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr bytes.Buffer
	dir    string
}

// startHelper calls Mount in a new process in the namespace and waits
// until it returned.
func (ns *mntNS) startHelper() *helper {
	ns.t.Helper()
	h := &helper{t: ns.t}
	h.cmd = exec.Command("nsenter", "--target", strconv.Itoa(ns.pid), "--mount", "--",
		os.Args[0], "-test.run=^TestMountHelper$", "-test.count=1")
	h.cmd.Env = append(os.Environ(), helperEnv+"=1")
	h.cmd.Stderr = &h.stderr
	var err error
	if h.in, err = h.cmd.StdinPipe(); err != nil {
		ns.t.Fatal(err)
	}
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		ns.t.Fatal(err)
	}
	h.out = bufio.NewReader(out)
	if err := h.cmd.Start(); err != nil {
		ns.t.Fatal(err)
	}
	ns.t.Cleanup(func() {
		if h.cmd.ProcessState == nil {
			h.cmd.Process.Kill()
			h.cmd.Wait()
		}
	})
	line, _ := h.out.ReadString('\n')
	dir, ok := strings.CutPrefix(strings.TrimSpace(line), "mounted ")
	if !ok {
		ns.t.Fatalf("helper: %q (stderr %q)", line, h.stderr.String())
	}
	h.dir = dir
	return h
}

// release lets the helper drop its mount and exit.
func (h *helper) release() {
	h.t.Helper()
	io.WriteString(h.in, "\n")
	line, _ := h.out.ReadString('\n')
	if err := h.cmd.Wait(); err != nil || line != "released\n" {
		h.t.Fatalf("helper release: %q, %v (stderr %q)", line, err, h.stderr.String())
	}
}

// kill ends the helper with SIGKILL: no cleanup runs.
func (h *helper) kill() {
	h.t.Helper()
	if err := h.cmd.Process.Kill(); err != nil {
		h.t.Fatal(err)
	}
	h.cmd.Wait()
}

func requireUnshare(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts tracefs in private mount namespaces")
	}
	for _, tool := range []string{"unshare", "nsenter", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s(8) from util-linux: %v", tool, err)
		}
	}
}

func wantMounts(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: tracefs mounts %q, want %q", what, got, want)
	}
}

// TestMountOwnMountOnly: where tracefs is not mounted, it is mounted for
// the run and unmounted after it, also when the process that mounted it
// is not the last to let go; one that was there before, or that replaced
// ours during the run, is left alone.
func TestMountOwnMountOnly(t *testing.T) {
	requireUnshare(t)
	ns := newNS(t, nil)
	ns.clear()
	h := ns.startHelper()
	if h.dir != DefaultDir || len(ns.tracefs()) != 1 {
		t.Fatalf("Mount returned %s; mounts %q", h.dir, ns.tracefs())
	}
	checkTopMount(t, ns)
	h.release()
	wantMounts(t, "after the run", ns.tracefs(), nil)

	h1, h2 := ns.startHelper(), ns.startHelper()
	mounted := ns.tracefs()
	h1.release()
	wantMounts(t, "after the first of two users left", ns.tracefs(), mounted)
	h2.release()
	wantMounts(t, "after both users left", ns.tracefs(), nil)

	ns.mountTracefs()
	before := ns.tracefs()
	ns.startHelper().release()
	wantMounts(t, "mounted before the run", ns.tracefs(), before)

	// A mount that replaced ours is told apart only by the never-reused
	// IDs of Linux 6.8+: before that the admin's new mount may get our
	// freed mount ID (owner.go's documented limit), seen on 6.1 and 5.10.
	if uniqueMountIDs(t) {
		ns.clear()
		h = ns.startHelper()
		ns.clear()
		ns.mountTracefs() // the admin's, in place of ours
		before = ns.tracefs()
		h.release()
		wantMounts(t, "replaced during the run", ns.tracefs(), before)
	} else {
		t.Log("not checking a mount replaced during the run: this kernel's mount IDs may be reused (no STATX_MNT_ID_UNIQUE before 6.8)")
	}
	if files := ns.lockFiles(); len(files) != 0 {
		t.Errorf("lock files left: %q", files)
	}
}

// TestMountNestedNamespaces: the repro. A run in a namespace
// copied from one where memtrace runs must not unmount the outer
// namespace's tracefs, and must not leave its own mounted.
func TestMountNestedNamespaces(t *testing.T) {
	requireUnshare(t)
	for _, preMounted := range []bool{false, true} {
		t.Run(fmt.Sprintf("outer tracefs mounted before: %v", preMounted), func(t *testing.T) {
			outer := newNS(t, nil)
			outer.clear()
			if preMounted {
				outer.mountTracefs()
			}
			before := outer.tracefs()
			o := outer.startHelper()
			during := outer.tracefs()
			inner := newNS(t, outer)
			inner.clear()
			i := inner.startHelper()
			if len(inner.tracefs()) != 1 {
				t.Fatalf("inner mounts %q, want its own tracefs", inner.tracefs())
			}
			i.release()
			wantMounts(t, "inner after its run", inner.tracefs(), nil)
			wantMounts(t, "outer after the inner run", outer.tracefs(), during)
			o.release()
			wantMounts(t, "outer after its run", outer.tracefs(), before)
			for _, ns := range []*mntNS{outer, inner} {
				if files := ns.lockFiles(); len(files) != 0 {
					t.Errorf("lock files left: %q", files)
				}
			}
		})
	}
}

// TestMountAfterKill: a memtrace killed with SIGKILL after mounting
// tracefs leaves its mount and marker; a later run, in another namespace
// or in the same one, must not unmount a tracefs that was mounted before
// it started.
func TestMountAfterKill(t *testing.T) {
	requireUnshare(t)
	killed := newNS(t, nil)
	killed.clear()
	killed.startHelper().kill()
	leaked := killed.tracefs()
	if len(leaked) != 1 {
		t.Fatalf("setup: after SIGKILL, mounts %q", leaked)
	}

	other := newNS(t, nil)
	other.clear()
	other.mountTracefs()
	before := other.tracefs()
	other.startHelper().release()
	wantMounts(t, "another namespace", other.tracefs(), before)

	killed.startHelper().release()
	wantMounts(t, "the killed run's namespace, its mount left", killed.tracefs(), leaked)

	killed.clear()
	killed.startHelper().kill()
	killed.clear()
	killed.mountTracefs() // the admin's, after the crash
	before = killed.tracefs()
	killed.startHelper().release()
	wantMounts(t, "the killed run's namespace, remounted by the admin", killed.tracefs(), before)
	if files := killed.lockFiles(); len(files) != 0 {
		t.Errorf("lock files left: %q", files)
	}
}

// checkTopMount checks mountID's fallback for kernels without statx's
// mount ID (before 5.8): topMount finds in mountinfo the ID statx gives.
func checkTopMount(t *testing.T, ns *mntNS) {
	t.Helper()
	var st unix.Statx_t
	root := fmt.Sprintf("/proc/%d/root", ns.pid)
	if err := unix.Statx(unix.AT_FDCWD, root+DefaultDir, 0, unix.STATX_MNT_ID, &st); err != nil || st.Mask&unix.STATX_MNT_ID == 0 {
		t.Logf("statx has no mount ID here (%v); topMount not cross-checked", err)
		return
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", ns.pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if id, err := topMount(f, DefaultDir); err != nil || id != st.Mnt_id {
		t.Errorf("topMount = %d, %v; statx says mount %d", id, err, st.Mnt_id)
	}
}

// uniqueMountIDs reports whether statx gives never-reused mount IDs.
func uniqueMountIDs(t *testing.T) bool {
	t.Helper()
	id, err := mountID("/")
	if err != nil {
		t.Fatal(err)
	}
	return strings.HasPrefix(id, "unique ")
}
