package verify

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// What the command leaves behind. The command may exit while processes it
// started still run: pg_ctl without -w leaves a postmaster that has not
// mapped its shared memory yet, a script leaves its background jobs. So
// verify keeps watching until none of them runs (or a large mapping was
// seen), and on an interrupt it kills them all.
//
// The run's cgroup knows them all, whoever their parent is now: v2 says
// "populated 0" in cgroup.events once the last one exited, and signals each
// change to inotify; in a v1 memory cgroup cgroup.procs is read. Without a
// cgroup, memtrace is the child subreaper of the command, so everything the
// command started stays below memtrace in /proc.

const (
	// pollEvery is how often the processes are counted when nothing
	// signals their exit (v1, no cgroup); with inotify on cgroup.events,
	// notifyEvery is only a safety net.
	pollEvery   = 100 * time.Millisecond
	notifyEvery = time.Second
	// killWait bounds the wait for killed processes to go (a process in
	// uninterruptible sleep dies only when it wakes).
	killWait = 5 * time.Second
)

// anythingLeft reports whether a process of the command still runs.
func (w *watch) anythingLeft() bool {
	if w.place != nil {
		left, err := w.place.populated()
		// Unreadable: the cgroup is gone, and with it every way to
		// wait for its processes.
		return err == nil && left
	}
	if w.subreaper {
		w.reapOrphans()
		return len(liveDescendants(w.opts.ProcRoot, w.self)) > 0
	}
	return false
}

// reapOrphans reaps the exited processes that were reparented to memtrace
// as child subreaper: left as zombies they would fill the pid table when
// the command forks many short-lived children. The command itself is left
// to its own Wait.
func (w *watch) reapOrphans() {
	for _, pid := range zombieChildren(w.opts.ProcRoot, w.self) {
		if w.res.Command == nil || pid != w.res.Command.Pid {
			var st unix.WaitStatus
			unix.Wait4(pid, &st, unix.WNOHANG, nil)
		}
	}
}

// allExited reports, once the command exited, whether everything it
// started has too.
func (w *watch) allExited() bool {
	if w.anythingLeft() {
		return false
	}
	w.opts.Logf("everything the command started has exited")
	return true
}

// interrupted ends the run on a signal: the command and everything it
// started are killed (verify started them; left running they would hold
// the cgroup and its memory with nobody watching), and the command's end
// is recorded.
func (w *watch) interrupted() {
	if w.res.Command == nil {
		return
	}
	if err := w.killAll(); err != nil {
		w.res.Warnings = append(w.res.Warnings, fmt.Sprintf("interrupted: killing the command: %v", err))
	} else {
		w.res.Warnings = append(w.res.Warnings, "interrupted: the command and everything it started were killed")
	}
	if w.exited == nil {
		return
	}
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case err := <-w.exited:
		w.exited = nil
		w.commandExited(err)
	case <-t.C:
	}
}

// leftWatch tells the loop when to count the command's processes again:
// on a change of the cgroup's cgroup.events (v2), else every pollEvery.
// Counting (and reaping) stays in the loop's goroutine.
type leftWatch struct {
	changed <-chan struct{}
	ticker  *time.Ticker
}

// watchLeft starts watching; stop ends it.
func (w *watch) watchLeft(stop <-chan struct{}) *leftWatch {
	every := pollEvery
	var changed <-chan struct{}
	if w.place != nil && w.place.v2 {
		if changed = notifyChanges(filepath.Join(w.place.dir, "cgroup.events"), stop); changed != nil {
			every = notifyEvery
		}
	}
	return &leftWatch{changed: changed, ticker: time.NewTicker(every)}
}

func (l *leftWatch) stop() { l.ticker.Stop() }

// killAll kills the command and everything it started, and waits until
// they are gone.
func (w *watch) killAll() error {
	if w.place != nil {
		return w.place.kill()
	}
	if w.subreaper {
		return killUntilGone(func() ([]int, error) {
			w.reapOrphans()
			return liveDescendants(w.opts.ProcRoot, w.self), nil
		})
	}
	// Neither: the command and what is still linked to it.
	root := w.res.Command.Pid
	return killUntilGone(func() ([]int, error) {
		pids := liveDescendants(w.opts.ProcRoot, root)
		if _, state, ok := readStat(filepath.Join(w.opts.ProcRoot, strconv.Itoa(root), "stat")); ok && w.exited != nil && state != 'Z' {
			pids = append(pids, root)
		}
		return pids, nil
	})
}

// populated reports whether a process runs in the cgroup or below it.
func (p *placement) populated() (bool, error) {
	if !p.v2 {
		pids, err := p.pids()
		return len(pids) > 0, err
	}
	b, err := os.ReadFile(filepath.Join(p.dir, "cgroup.events"))
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "populated "); ok {
			return v != "0", nil
		}
	}
	return false, fmt.Errorf("no populated line in %s/cgroup.events", p.dir)
}

// pids lists the processes of the cgroup and of the cgroups below it.
func (p *placement) pids() ([]int, error) {
	var all []int
	err := filepath.WalkDir(p.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a cgroup below was removed meanwhile
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		pids, err := readPids(filepath.Join(path, "cgroup.procs"))
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		all = append(all, pids...)
		return nil
	})
	return all, err
}

// kill ends every process of the cgroup. v2's cgroup.kill is atomic
// against forks; elsewhere each process is sent SIGKILL until none is
// left, which a fork storm cannot outrun: a process with SIGKILL pending
// cannot fork. memtrace itself is spared in case it could not leave the
// cgroup after starting the command.
func (p *placement) kill() error {
	self := os.Getpid()
	list := func() ([]int, error) {
		pids, err := p.pids()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p.dir, err)
		}
		return slices.DeleteFunc(pids, func(pid int) bool { return pid == self }), nil
	}
	pids, err := p.pids()
	if err != nil {
		return fmt.Errorf("reading %s: %w", p.dir, err)
	}
	if p.v2 && !slices.Contains(pids, self) {
		// Before 5.14 there is no cgroup.kill: SIGKILL one by one.
		if writeFile(filepath.Join(p.dir, "cgroup.kill"), "1") == nil {
			return waitGone(list)
		}
	}
	return killUntilGone(list)
}

// killUntilGone sends SIGKILL to the listed processes until none is left.
func killUntilGone(list func() ([]int, error)) error {
	deadline := time.Now().Add(killWait)
	for {
		pids, err := list()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes of the command still run %s after SIGKILL: %v", len(pids), killWait, pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitGone waits until the listed processes are gone.
func waitGone(list func() ([]int, error)) error {
	deadline := time.Now().Add(killWait)
	for {
		pids, err := list()
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes of the command still run %s after SIGKILL: %v", len(pids), killWait, pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

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

// notifyChanges sends on the returned channel when the file at path is
// modified (nil channel: no inotify). The kernel signals each change of a
// cgroup.events file to inotify.
func notifyChanges(path string, stop <-chan struct{}) <-chan struct{} {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return nil
	}
	changed := make(chan struct{}, 1)
	go func() {
		defer unix.Close(fd)
		var buf [4096]byte
		for {
			// A timeout to notice stop; EINTR (the runtime's
			// preemption signal) is just another turn.
			unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(notifyEvery.Milliseconds()))
			select {
			case <-stop:
				return
			default:
			}
			if k, _ := unix.Read(fd, buf[:]); k > 0 {
				for k > 0 {
					k, _ = unix.Read(fd, buf[:])
				}
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}
	}()
	return changed
}

// zombieChildren lists the children of parent that have exited.
func zombieChildren(procRoot string, parent int) []int {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := readStat(filepath.Join(procRoot, e.Name(), "stat")); ok && ppid == parent && state == 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

// liveDescendants lists the processes below root in /proc, zombies
// excepted (they have exited and wait only to be reaped).
func liveDescendants(procRoot string, root int) []int {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	live := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, state, ok := readStat(filepath.Join(procRoot, e.Name(), "stat"))
		if !ok {
			continue
		}
		children[ppid] = append(children[ppid], pid)
		live[pid] = state != 'Z' && state != 'X'
	}
	var out []int
	seen := map[int]bool{root: true}
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if seen[c] {
				continue
			}
			seen[c] = true
			if live[c] {
				out = append(out, c)
			}
			queue = append(queue, c)
		}
	}
	return out
}

// readStat reads the parent and state of /proc/PID/stat: "pid (comm) S
// ppid ...", where comm may hold spaces and parentheses.
func readStat(path string) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0][0], err == nil
}
