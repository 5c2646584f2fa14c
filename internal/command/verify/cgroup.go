package verify

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/memtrace/memtrace/internal/decode/mounts"
)

// Following a command and all its children: the kernel programs filter on
// one tgid, and PostgreSQL, Oracle and pg_ctl fork and daemonize, so verify
// puts the command into a cgroup of its own and filters on that cgroup in
// the kernel. Every descendant inherits the cgroup at fork, so no child is
// missed however short-lived, and no /proc lookup races with an exit.
//
// The cgroup is created where the kernel programs can match it: in the v2
// hierarchy when one is mounted (unified or hybrid hosts, matched by
// bpf_get_current_cgroup_id), else in the v1 memory hierarchy (matched by
// the task's memory cgroup id). It is created below memtrace's own cgroup
// in that hierarchy, so limits that apply to memtrace still apply.
//
// To start the command inside it without a helper process, memtrace moves
// itself in, forks the command, and moves itself back: writing a pid to
// cgroup.procs moves the whole process, on v1 and v2 alike.

// placement is a cgroup made for one verify run.
type placement struct {
	dir  string // the new cgroup
	home string // memtrace's own cgroup in that hierarchy
	id   uint64 // what the kernel filter matches
	v2   bool
}

// cgroupMount is one mounted hierarchy from mountinfo.
type cgroupMount struct {
	root, mountPoint string
	v2               bool
	memory           bool
}

// makePlacement makes the cgroup for a command; tests replace it to
// follow a command as on a host where no cgroup can be made.
var makePlacement = newPlacement

func newPlacement(procRoot, name string) (*placement, error) {
	mounts, err := cgroupMounts(filepath.Join(procRoot, "self/mountinfo"))
	if err != nil {
		return nil, err
	}
	own, err := ownCgroups(filepath.Join(procRoot, "self/cgroup"))
	if err != nil {
		return nil, err
	}
	homes := cgroupHomes(mounts, own)
	if len(homes) == 0 {
		return nil, errors.New("no cgroup v2 or v1 memory hierarchy is mounted where memtrace's own cgroup is visible")
	}
	var errs []error
	for _, h := range homes {
		dir := filepath.Join(h.dir, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("creating %s: %w", dir, err))
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			os.Remove(dir)
			errs = append(errs, err)
			continue
		}
		return &placement{dir: dir, home: h.dir, id: st.Ino, v2: h.v2}, nil
	}
	return nil, errors.Join(errs...)
}

// home is memtrace's own cgroup directory in one hierarchy.
type home struct {
	dir string
	v2  bool
}

// cgroupHomes lists where a cgroup for the command can go, best first: v2
// (whose id bpf_get_current_cgroup_id returns), then the v1 memory
// hierarchy (matched through the task's memory cgroup id).
func cgroupHomes(mounts []cgroupMount, own map[string]string) []home {
	var out []home
	for _, wantV2 := range []bool{true, false} {
		for _, m := range mounts {
			if m.v2 != wantV2 || (!m.v2 && !m.memory) {
				continue
			}
			key := "memory"
			if m.v2 {
				key = ""
			}
			path, ok := own[key]
			if !ok {
				continue
			}
			// The mount shows the hierarchy from m.root down (a
			// container sees only its own subtree).
			rel, ok := strings.CutPrefix(path, m.root)
			if !ok || (rel != "" && !strings.HasPrefix(rel, "/") && m.root != "/") {
				continue
			}
			out = append(out, home{dir: filepath.Join(m.mountPoint, rel), v2: m.v2})
		}
	}
	return out
}

// enter moves memtrace into the new cgroup; leave moves it back.
func (p *placement) enter() error { return writePid(p.dir, os.Getpid()) }
func (p *placement) leave() error { return writePid(p.home, os.Getpid()) }

// remove moves whatever still runs in the cgroup (a database that keeps
// running after verify) back to memtrace's own cgroup and removes it.
// Processes may fork meanwhile, so it loops until the cgroup is empty.
func (p *placement) remove() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, err := readPids(filepath.Join(p.dir, "cgroup.procs"))
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("reading %s: %w", p.dir, err)
		}
		for _, pid := range pids {
			if err := writePid(p.home, pid); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("moving pid %d out of %s: %w", pid, p.dir, err)
			}
		}
		err = os.Remove(p.dir)
		if err == nil || os.IsNotExist(err) {
			return nil
		}
		// EBUSY: a process forked during the move, or an exiting task
		// has not left the cgroup yet.
		if time.Now().After(deadline) {
			return fmt.Errorf("removing %s: %w", p.dir, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writePid(dir string, pid int) error {
	f, err := os.OpenFile(filepath.Join(dir, "cgroup.procs"), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strconv.Itoa(pid))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func readPids(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// cgroupMounts lists the cgroup hierarchies of a mountinfo file.
func cgroupMounts(path string) ([]cgroupMount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 {
			continue
		}
		switch b[0] {
		case "cgroup2":
			out = append(out, cgroupMount{root: a[3], mountPoint: mounts.Unescape(a[4]), v2: true})
		case "cgroup":
			mem := false
			for _, o := range strings.Split(b[2], ",") {
				mem = mem || o == "memory"
			}
			out = append(out, cgroupMount{root: a[3], mountPoint: mounts.Unescape(a[4]), memory: mem})
		}
	}
	return out, sc.Err()
}

// ownCgroups parses /proc/self/cgroup: "" is the v2 path, controller
// names the v1 paths.
func ownCgroups(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, nil
}
