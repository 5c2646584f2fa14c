package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/memtrace/memtrace/internal/probe/tracefs"
)

// runPhase starts memtrace capture, waits for its probes, counts failed
// allocations with tracefs while the traffic runs, then stops the capture
// with SIGINT. In the measured phase doctor --measure starts before the
// traffic and is interrupted after it: its window covers all of it.
func runPhase(o options, tfs string, p *phase) error {
	p.capFile = filepath.Join(o.out, "capture-"+p.tag+".json")
	ready := filepath.Join(o.out, "ready-"+p.tag)
	if p.prepare != nil {
		if err := p.prepare(); err != nil {
			return err
		}
	}
	p.minFree = strings.TrimSpace(readFile("/proc/sys/vm/min_free_kbytes"))
	p.wsf = strings.TrimSpace(readFile("/proc/sys/vm/watermark_scale_factor"))
	p.compact = strings.TrimSpace(readFile("/proc/sys/vm/compaction_proactiveness")) + " / " + strings.TrimSpace(readFile("/proc/sys/vm/compact_unevictable_allowed"))
	// The independent count runs over capture's window: from capture's
	// probes until the failures have stopped, when capture is stopped. Its
	// trace instance is made first: making one creates a file per event,
	// and in this fragmented memory the inode slab's growth fails (1,601
	// order-1 failures in one run, all in tracefs_create_file), which
	// capture would count and the counter, not yet enabled, would not.
	c, err := tracefs.NewCounter(tfs, "kmem", "mm_page_alloc", "pfn == 18446744073709551615")
	if err != nil {
		return err
	}
	defer c.Close()
	capt := exec.Command(o.memtrace, "capture", "--duration", "0", "--signals", "alloc,extfrag", "-o", p.capFile, "--ready-file", ready)
	capt.Stdout, capt.Stderr, capt.Env = os.Stdout, os.Stderr, smallGo
	capt.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := capt.Start(); err != nil {
		return fmt.Errorf("starting memtrace capture: %w", err)
	}
	defer capt.Process.Kill() // after Wait below: a no-op
	if err := waitFor("memtrace capture's probes", 2*time.Minute, capt, func() bool { _, err := os.Stat(ready); return err == nil }); err != nil {
		return err
	}
	// The counter counts from here, when capture's probes are attached.
	if err := c.Reset(); err != nil {
		return err
	}
	var doc *exec.Cmd
	var docOut strings.Builder
	var docStart time.Time
	if p.measure {
		// Longer than the traffic: it is interrupted after it, and
		// reports what it measured until then.
		doc = exec.Command(o.memtrace, "doctor", "--measure", (o.traffic + 5*time.Minute).String())
		doc.Stdout, doc.Stderr, doc.Env = &docOut, &docOut, smallGo
		doc.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := doc.Start(); err != nil {
			return fmt.Errorf("starting memtrace doctor: %w", err)
		}
		defer doc.Process.Kill()
		if err := waitFor("memtrace doctor's probes", 2*time.Minute, doc, func() bool { return bpfLinks(doc.Process.Pid) > 0 }); err != nil {
			return err
		}
		docStart = time.Now().UTC()
	}
	var wire *wireListener
	if p.wireOn {
		if wire, err = listenWire(); err != nil {
			return fmt.Errorf("listening for the wire: %w", err)
		}
		// First only the host's connections, held: with the guest
		// otherwise idle their receive softirq interrupts the idle
		// task, as the seed's did (during the loopback bursts the vCPU
		// is never idle), and their TCP slabs grow on the fragmented
		// memory the warm-up left, as the first burst's would.
		time.Sleep(o.wireOnly)
		p.wireIdle = wire.accepted.Load()
	}
	p.traffic, err = traffic(o.traffic, o.conns)
	if wire != nil {
		p.wire = wire.close()
	}
	if doc != nil {
		doc.Process.Signal(os.Interrupt)
		doc.Wait() // exit 1 when a finding is a problem: expected here
		p.doctor = fmt.Sprintf("(lab: doctor measured from %s, when its probes were attached, until interrupted at %s, after the traffic)\n%s",
			docStart.Format("15:04:05.0"), time.Now().UTC().Format("15:04:05.0"), docOut.String())
		os.WriteFile(filepath.Join(o.out, "doctor-"+p.tag+".txt"), []byte(p.doctor), 0o644)
	}
	// Closing thousands of connections goes on in the kernel after
	// close() returns (FINs, TIME_WAIT sockets from their own slab), and
	// its allocations fail too: wait until the counter stops moving, so
	// that both counts end together.
	quiet(c, 2*time.Second, 30*time.Second)
	p.counter, _ = countTrace(c)
	capt.Process.Signal(os.Interrupt)
	if werr := capt.Wait(); werr != nil {
		return fmt.Errorf("memtrace capture: %w", werr)
	}
	if err != nil {
		return fmt.Errorf("traffic: %w", err)
	}
	if p.capture, err = summarize(p.capFile); err != nil {
		return err
	}
	// Sent back over the guest's serial port: 14 MiB of JSON takes
	// minutes there, a twentieth of it seconds.
	return gzipFile(p.capFile)
}

// quiet waits until c has not moved for still, or for at most limit.
func quiet(c *tracefs.Counter, still, limit time.Duration) {
	last, _ := c.Count()
	since := time.Now()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline) && time.Since(since) < still; {
		time.Sleep(250 * time.Millisecond)
		if n, _ := c.Count(); n != last {
			last, since = n, time.Now()
		}
	}
}

// gzipFile replaces path by path.gz.
func gzipFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(path+".gz", z.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing %s.gz: %w", path, err)
	}
	return os.Remove(path)
}

// waitFor polls until ready, failing when the process exits first or the
// time is up.
func waitFor(what string, d time.Duration, cmd *exec.Cmd, ready func() bool) error {
	for deadline := time.Now().Add(d); !ready(); time.Sleep(100 * time.Millisecond) {
		// Not Wait (the caller waits): gone, or a zombie not yet reaped.
		st := readFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
		if _, rest, _ := strings.Cut(st, ") "); rest == "" || rest[0] == 'Z' {
			return fmt.Errorf("%s: the process exited before they were attached", what)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s were not attached within %s", what, d)
		}
	}
	return nil
}

// bpfLinks counts the BPF links a process holds (fdinfo names their
// type): doctor has attached its probes, and its measurement has begun,
// once it holds one.
func bpfLinks(pid int) int {
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if strings.Contains(readFile(filepath.Join(dir, e.Name())), "link_type:") {
			n++
		}
	}
	return n
}
