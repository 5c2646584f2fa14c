// Command recbench measures memtrace's flight recorder as it is meant to
// run, all the time: the CPU time and resident memory of `memtrace record`
// over a long idle run, the same while real failure bursts (provoke) set
// off an incident every interval, and the time from each trigger (the
// triggering event's kernel time) to the first bytes of its incident file
// on disk (the temporary file's creation, inotify) and to the first part
// renamed in place. Evidence for docs/benchmarks.md; not a test.
//
//	recbench -memtrace bin/memtrace -idle 10m -bursts 10 -every 30s
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// usage is a process's CPU time and memory.
type usage struct {
	cpu            time.Duration
	rss, hwm, anon uint64 // kB
}

func readUsage(pid int) (usage, error) {
	var u usage
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	u.cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(s), "\n") {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			u.rss = n
		case "VmHWM":
			u.hwm = n
		case "RssAnon":
			u.anon = n
		}
	}
	return u, nil
}

type recorder struct {
	cmd *exec.Cmd
	dir string
}

func start(bin, name string, args ...string) (*recorder, error) {
	dir, err := os.MkdirTemp("", "recbench-"+name+"-")
	if err != nil {
		return nil, err
	}
	ready := filepath.Join(dir, "ready")
	inc := filepath.Join(dir, "incidents")
	cmd := exec.Command(bin, append([]string{"record", "--dir", inc, "--ready-file", ready}, args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return nil, fmt.Errorf("%s: not ready within a minute", name)
		}
	}
	return &recorder{cmd: cmd, dir: inc}, nil
}

func (r *recorder) stop() {
	r.cmd.Process.Signal(syscall.SIGTERM)
	r.cmd.Wait()
	os.RemoveAll(filepath.Dir(r.dir))
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func report(name string, d time.Duration, a, b usage) {
	share := 100 * float64(b.cpu-a.cpu) / float64(d)
	fmt.Printf("%-28s %8s  cpu %7.3f s  %6.3f%% of a core  rss %5.1f MiB (anonymous %5.1f)  peak %5.1f MiB  load %s\n",
		name, d.Round(time.Second), (b.cpu - a.cpu).Seconds(), share, float64(b.rss)/1024, float64(b.anon)/1024, float64(b.hwm)/1024, loadavg())
}

// idle runs recorders with nothing provoked for d.
func idle(bin string, d time.Duration) error {
	all, err := start(bin, "idle", "--quiet", "0", "--burst", "off", "--psi", "0", "--huge=false")
	if err != nil {
		return err
	}
	defer all.stop()
	// The same with every event filtered out in the kernel: the floor of
	// sampling the state every second.
	none, err := start(bin, "floor", "--comm", "recbench-none", "--quiet", "0", "--burst", "off", "--psi", "0", "--huge=false")
	if err != nil {
		return err
	}
	defer none.stop()
	time.Sleep(5 * time.Second) // past start-up
	a1, _ := readUsage(all.cmd.Process.Pid)
	a2, _ := readUsage(none.cmd.Process.Pid)
	t0 := time.Now()
	time.Sleep(d)
	b1, _ := readUsage(all.cmd.Process.Pid)
	b2, _ := readUsage(none.cmd.Process.Pid)
	report("idle, every event", time.Since(t0), a1, b1)
	report("idle, events filtered out", time.Since(t0), a2, b2)
	return nil
}

// watchDir reports the time of each inotify event in dir.
type fsEvent struct {
	at   time.Time
	name string
	mask uint32
}

func watchDir(dir string) (<-chan fsEvent, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		return nil, err
	}
	out := make(chan fsEvent, 256)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := unix.Read(fd, buf)
			now := time.Now()
			if err != nil || n <= 0 {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)], "\x00")
				out <- fsEvent{now, string(name), ev.Mask}
				off += unix.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}()
	return out, nil
}

// bursts provokes n real failure bursts, one every interval, each an
// incident, and measures trigger to first bytes.
func bursts(bin string, n int, every time.Duration) error {
	const comm = "recbench-burst"
	r, err := start(bin, "bursts", "--comm", comm, "--quiet", "0", "--burst", "10/1s", "--after", "5s",
		"--cooldown", "0", "--rate-limit", "off", "--psi", "0", "--huge=false")
	if err != nil {
		return err
	}
	defer r.stop()
	events, err := watchDir(r.dir)
	if err != nil {
		return err
	}
	a, _ := readUsage(r.cmd.Process.Pid)
	t0 := time.Now()
	var firstBytes, firstPart []time.Duration
	for i := range n {
		next := t0.Add(time.Duration(i+1) * every)
		if _, err := provoke.AllocFailures(20, provoke.WithComm(comm)); err != nil {
			return err
		}
		created, renamed := map[string]time.Time{}, map[string]time.Time{}
		for time.Now().Before(next) {
			select {
			case ev := <-events:
				if ev.mask&unix.IN_CREATE != 0 && strings.HasPrefix(ev.name, ".incident-") {
					if _, ok := created[ev.name]; !ok {
						created[ev.name] = ev.at
					}
				}
				if ev.mask&unix.IN_MOVED_TO != 0 && strings.HasPrefix(ev.name, "incident-") {
					if _, ok := renamed[ev.name]; !ok {
						renamed[ev.name] = ev.at
					}
				}
			case <-time.After(time.Until(next)):
			}
		}
		trig, err := triggerTime(r.dir)
		if err != nil {
			return err
		}
		var fb, fp time.Time
		for _, at := range created {
			if fb.IsZero() || at.Before(fb) {
				fb = at
			}
		}
		for _, at := range renamed {
			if fp.IsZero() || at.Before(fp) {
				fp = at
			}
		}
		firstBytes = append(firstBytes, fb.Sub(trig))
		firstPart = append(firstPart, fp.Sub(trig))
		clearDir(r.dir)
	}
	b, _ := readUsage(r.cmd.Process.Pid)
	report(fmt.Sprintf("%d bursts, one per %s", n, every), time.Since(t0), a, b)
	fmt.Printf("trigger to first bytes on disk:  %s\n", quantiles(firstBytes))
	fmt.Printf("trigger to first part in place:  %s\n", quantiles(firstPart))
	return nil
}

// triggerTime reads the newest incident file's trigger time.
func triggerTime(dir string) (time.Time, error) {
	names, _ := filepath.Glob(filepath.Join(dir, "incident-*.json"))
	sort.Strings(names)
	if len(names) == 0 {
		return time.Time{}, fmt.Errorf("no incident file in %s", dir)
	}
	b, err := os.ReadFile(names[len(names)-1])
	if err != nil {
		return time.Time{}, err
	}
	var doc struct {
		Incident struct {
			Trigger struct {
				Time time.Time `json:"time"`
			} `json:"trigger"`
		} `json:"incident"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return time.Time{}, err
	}
	return doc.Incident.Trigger.Time, nil
}

func clearDir(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, "incident-*.json"))
	for _, n := range names {
		os.Remove(n)
	}
}

func quantiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration {
		return s[min(len(s)-1, int(p*float64(len(s))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("n=%d min %s median %s max %s", len(s), s[0].Round(10*time.Microsecond), q(0.5), s[len(s)-1].Round(10*time.Microsecond))
}

func main() {
	bin := flag.String("memtrace", "bin/memtrace", "the memtrace binary")
	idleFor := flag.Duration("idle", 10*time.Minute, "idle run (0: none)")
	n := flag.Int("bursts", 10, "failure bursts (0: none)")
	every := flag.Duration("every", 30*time.Second, "one burst per")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "recbench: needs root (BPF programs, cgroups for the bursts)")
		os.Exit(1)
	}
	fmt.Printf("recbench: %s, load %s\n", time.Now().UTC().Format(time.RFC3339), loadavg())
	if *idleFor > 0 {
		if err := idle(*bin, *idleFor); err != nil {
			fmt.Fprintln(os.Stderr, "recbench:", err)
			os.Exit(1)
		}
	}
	if *n > 0 {
		if err := bursts(*bin, *n, *every); err != nil {
			fmt.Fprintln(os.Stderr, "recbench:", err)
			os.Exit(1)
		}
	}
}
