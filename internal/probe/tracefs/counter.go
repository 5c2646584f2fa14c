package tracefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// InstancePrefix starts the name of every trace instance this package
// creates; instances are named InstancePrefix<pid>-<n>.
const InstancePrefix = "memtrace-"

// bufferKB is the per-CPU ring buffer of a counter instance. Counters are
// meant for rare events; overwritten events are still counted (overrun).
const bufferKB = 512

var instanceSeq atomic.Uint64

// Counter counts hits of one tracepoint in a private trace instance, so it
// neither disturbs nor is disturbed by the top-level trace buffer or other
// tracers (including memtrace's own BPF programs).
type Counter struct {
	dir      string // the instance directory
	eventDir string // <instance>/events/<system>/<event>
}

// NewCounter creates the trace instance instances/memtrace-<pid>-<n> under
// dir (a tracefs mount, see Mount), sets filter on system:event (ftrace
// filter syntax, "" for none) and enables the event.
//
// Unsigned fields reject negative literals: to match the failed-allocation
// case of kmem:mm_page_alloc (pfn == -1UL) write
// "pfn == 18446744073709551615" (or 0xffffffffffffffff), not "pfn == -1".
// The pseudo fields comm and common_pid select the task ("comm == \"x\"").
func NewCounter(dir, system, event, filter string) (*Counter, error) {
	if _, err := os.Stat(filepath.Join(dir, "events", system, event)); err != nil {
		return nil, fmt.Errorf("finding event %s:%s: %w", system, event, explain(err))
	}
	inst, err := makeInstance(dir)
	if err != nil {
		return nil, err
	}
	c := &Counter{dir: inst, eventDir: filepath.Join(inst, "events", system, event)}
	if err := c.setup(filter); err != nil {
		removeInstance(inst)
		return nil, err
	}
	return c, nil
}

func makeInstance(dir string) (string, error) {
	for {
		name := fmt.Sprintf("%s%d-%d", InstancePrefix, os.Getpid(), instanceSeq.Add(1))
		inst := filepath.Join(dir, "instances", name)
		err := os.Mkdir(inst, 0o700)
		if err == nil {
			return inst, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("creating trace instance: %w", explain(err))
		}
	}
}

func (c *Counter) setup(filter string) error {
	if err := writeFile(filepath.Join(c.dir, "buffer_size_kb"), strconv.Itoa(bufferKB)); err != nil {
		return fmt.Errorf("sizing trace buffer: %w", err)
	}
	// record-tgid adds the process id to each line, for Hit.Tgid. Older
	// kernels only allow it at top level; the tid is still there without it.
	_ = writeFile(filepath.Join(c.dir, "options", "record-tgid"), "1")
	// The filter must be in place before enabling: a rejected filter
	// leaves the event unfiltered, which would count everything.
	if filter != "" {
		if err := writeFile(filepath.Join(c.eventDir, "filter"), filter); err != nil {
			msg, _ := os.ReadFile(filepath.Join(c.eventDir, "filter"))
			return fmt.Errorf("setting filter %q: %w: %s", filter, err, strings.TrimSpace(string(msg)))
		}
	}
	if err := writeFile(filepath.Join(c.eventDir, "enable"), "1"); err != nil {
		return fmt.Errorf("enabling event: %w", err)
	}
	return nil
}

// Dir is the trace instance directory, for reading its files directly.
func (c *Counter) Dir() string { return c.dir }

// Count returns how many times the event fired (and passed the filter)
// since the counter was created or last Reset, including events that
// were overwritten in the ring buffer.
func (c *Counter) Count() (uint64, error) {
	files, err := filepath.Glob(filepath.Join(c.dir, "per_cpu", "cpu*", "stats"))
	if err != nil || len(files) == 0 {
		return 0, fmt.Errorf("finding per-cpu stats in %s: %v", c.dir, err)
	}
	var total uint64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", f, explain(err))
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || (k != "entries" && k != "overrun") {
				continue
			}
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing %q in %s: %w", line, f, err)
			}
			total += n
		}
	}
	return total, nil
}

// WaitCount polls Count until it reaches at least want or timeout passes,
// and returns the last count. Events are in the buffer as soon as the
// traced code ran, so the wait only covers callers racing a child process.
func (c *Counter) WaitCount(want uint64, timeout time.Duration) (uint64, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := c.Count()
		if err != nil || n >= want || time.Now().After(deadline) {
			return n, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Hits parses the events still held in the instance's ring buffer.
func (c *Counter) Hits() ([]Hit, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "trace"))
	if err != nil {
		return nil, fmt.Errorf("reading trace: %w", explain(err))
	}
	return ParseTrace(string(b)), nil
}

// Reset empties the ring buffer and restarts the count from zero.
func (c *Counter) Reset() error {
	f, err := os.OpenFile(filepath.Join(c.dir, "trace"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("clearing trace: %w", explain(err))
	}
	return f.Close()
}

// Close disables the event and removes the instance.
func (c *Counter) Close() error {
	if c == nil || c.dir == "" {
		return nil
	}
	errDisable := writeFile(filepath.Join(c.eventDir, "enable"), "0")
	err := removeInstance(c.dir)
	c.dir = ""
	if err != nil {
		return err
	}
	if errDisable != nil {
		return fmt.Errorf("disabling event: %w", errDisable)
	}
	return nil
}

// removeInstance removes a trace instance, retrying while a reader (for
// example a concurrent `cat trace`) keeps it busy. ENODEV means another
// process (RemoveStale in another test binary) removed it meanwhile.
func removeInstance(inst string) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = unix.Rmdir(inst); err == nil || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("removing trace instance %s: %w", inst, err)
}

// RemoveStale removes instances left behind by processes that no longer
// exist (a test binary killed before its cleanup ran).
func RemoveStale(dir string) error {
	entries, err := os.ReadDir(filepath.Join(dir, "instances"))
	if err != nil {
		return fmt.Errorf("listing trace instances: %w", explain(err))
	}
	var errs []error
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), InstancePrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || processExists(pid) {
			continue
		}
		errs = append(errs, removeInstance(filepath.Join(dir, "instances", e.Name())))
	}
	return errors.Join(errs...)
}

func processExists(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// writeFile writes s in one write(2), as tracefs control files expect. It
// does not truncate: O_TRUNC means "clear" for files such as set_event.
func writeFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return explain(err)
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return explain(err)
}
