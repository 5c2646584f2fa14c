package provoke

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// CgroupPrefix starts the name of every memory cgroup this package creates
// (CgroupPrefix<pid>-<n>, directly under the memory hierarchy's root).
const CgroupPrefix = "memtrace-provoke-"

var cgroupSeq atomic.Uint64

// hierarchy is where the memory controller is mounted.
type hierarchy struct {
	mnt string
	v2  bool
}

// memoryHierarchy finds the memory controller: a cgroup v1 mount with the
// "memory" option, else a cgroup2 mount that offers "memory". A controller
// is active in one hierarchy only, so at most one of them matches.
func memoryHierarchy() (hierarchy, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return hierarchy{}, fmt.Errorf("finding memory cgroup: %w", err)
	}
	defer f.Close()
	var v2 []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "36 25 0:31 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory"
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		mnt := pf[4]
		switch qf[0] {
		case "cgroup":
			if slices.Contains(strings.Split(qf[2], ","), "memory") {
				return hierarchy{mnt: mnt}, nil
			}
		case "cgroup2":
			v2 = append(v2, mnt)
		}
	}
	for _, mnt := range v2 {
		b, err := os.ReadFile(filepath.Join(mnt, "cgroup.controllers"))
		if err == nil && slices.Contains(strings.Fields(string(b)), "memory") {
			return hierarchy{mnt: mnt, v2: true}, nil
		}
	}
	return hierarchy{}, errors.New("finding memory cgroup: no cgroup v1 or v2 hierarchy has the memory controller")
}

// memcg is a memory cgroup created for one provoking run.
type memcg struct {
	hierarchy
	dir string
}

// newMemcg creates a memory cgroup limited to limit bytes. With noOOM (v1
// only) memory.oom_control disables its OOM killer: a kernel-side charge
// over the limit then fails with ENOMEM instead of killing a task.
func newMemcg(h hierarchy, limit int64, noOOM bool) (*memcg, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("creating memory cgroup: not root")
	}
	if noOOM && h.v2 {
		return nil, errors.New("creating memory cgroup: disabling the OOM killer needs cgroup v1 (memory.oom_control)")
	}
	dir := filepath.Join(h.mnt, fmt.Sprintf("%s%d-%d", CgroupPrefix, os.Getpid(), cgroupSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating memory cgroup: %w", err)
	}
	m := &memcg{hierarchy: h, dir: dir}
	if err := m.configure(limit, noOOM); err != nil {
		m.remove()
		return nil, err
	}
	return m, nil
}

func (m *memcg) configure(limit int64, noOOM bool) error {
	if m.v2 {
		// The parent must delegate the controller, else memory.max is absent.
		b, _ := os.ReadFile(filepath.Join(m.dir, "cgroup.controllers"))
		if !slices.Contains(strings.Fields(string(b)), "memory") {
			return fmt.Errorf("configuring memory cgroup: memory controller not enabled in %s/cgroup.subtree_control", m.mnt)
		}
		return writeFile(filepath.Join(m.dir, "memory.max"), strconv.FormatInt(limit, 10))
	}
	if err := writeFile(filepath.Join(m.dir, "memory.limit_in_bytes"), strconv.FormatInt(limit, 10)); err != nil {
		return fmt.Errorf("configuring memory cgroup: %w", err)
	}
	if noOOM {
		if err := writeFile(filepath.Join(m.dir, "memory.oom_control"), "1"); err != nil {
			return fmt.Errorf("disabling memory cgroup OOM killer: %w", err)
		}
	}
	return nil
}

// joinFile is the file a task writes its id to, to enter the cgroup: on v1
// a single thread can be moved (tasks), on v2 only a whole process.
func (m *memcg) joinFile(thread bool) (string, error) {
	return procsFile(m.hierarchy, m.dir, thread)
}

func procsFile(h hierarchy, dir string, thread bool) (string, error) {
	switch {
	case !thread:
		return filepath.Join(dir, "cgroup.procs"), nil
	case !h.v2:
		return filepath.Join(dir, "tasks"), nil
	}
	return "", errors.New("moving a single thread: cgroup v2 moves memory cgroup membership per process only")
}

// homeFile is the join file of the cgroup the task is in now, so that the
// child can go back before the cgroup is removed.
func (m *memcg) homeFile(pid, tid int, thread bool) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/cgroup", pid, tid))
	if err != nil {
		return "", fmt.Errorf("finding task's memory cgroup: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		// "7:memory:/user.slice" (v1) or "0::/user.slice" (v2)
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if (m.v2 && parts[0] == "0" && parts[1] == "") ||
			(!m.v2 && slices.Contains(strings.Split(parts[1], ","), "memory")) {
			return procsFile(m.hierarchy, filepath.Join(m.mnt, parts[2]), thread)
		}
	}
	return "", fmt.Errorf("finding task's memory cgroup: not in /proc/%d/task/%d/cgroup", pid, tid)
}

// remove deletes the cgroup. Its tasks must have left or exited; an exiting
// task can keep it busy for a moment, hence the retries.
func (m *memcg) remove() error {
	if m == nil || m.dir == "" {
		return nil
	}
	var err error
	for i := 0; i < 100; i++ {
		if err = unix.Rmdir(m.dir); err == nil || errors.Is(err, unix.ENOENT) {
			m.dir = ""
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("removing memory cgroup %s: %w", m.dir, err)
}

// RemoveStale removes memory cgroups left behind by processes that no
// longer exist (a test binary killed before its cleanup ran).
func RemoveStale() error {
	h, err := memoryHierarchy()
	if err != nil {
		return err
	}
	dirs, err := filepath.Glob(filepath.Join(h.mnt, CgroupPrefix+"*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range dirs {
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(dir), CgroupPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || processExists(pid) {
			continue
		}
		errs = append(errs, (&memcg{hierarchy: h, dir: dir}).remove())
	}
	return errors.Join(errs...)
}

func processExists(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// writeFile writes s in a single write(2), as kernel control files expect.
func writeFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}
