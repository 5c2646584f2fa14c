// Command lab runs inside test/vm's guest (`make lab`, `go run ./test/vm
// -lab`) and reproduces the first seed's incident for real: free memory
// fragmented into order-0 blocks, then TCP connection bursts over
// loopback, whose child sockets and SYN-ACKs are allocated in NET_RX
// softirq. memtrace capture runs across the traffic; a tracefs counter
// of kmem:mm_page_alloc with no page counts the same window
// independently. memtrace doctor --measure recommends min_free_kbytes,
// which is applied before the same traffic runs again. It writes its
// findings as Markdown (-report) for docs/lab.md, and exits 1 when
// memtrace saw fewer failures than the counter.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/memtrace/memtrace/internal/probe/tracefs"
)

type options struct {
	memtrace, out string
	traffic       time.Duration
	conns         int
	leaveKB       uint64
}

func main() {
	var o options
	flag.StringVar(&o.memtrace, "memtrace", "/vm/bin/memtrace", "memtrace binary")
	flag.StringVar(&o.out, "out", "/tmp/lab", "directory for captures and the report")
	flag.DurationVar(&o.traffic, "traffic", 30*time.Second, "how long each traffic run lasts")
	flag.IntVar(&o.conns, "conns", 4000, "connections held per burst (client and server side each count one)")
	flag.Uint64Var(&o.leaveKB, "leave-kb", 8<<10, "MemFree left unfragmented before the odd pages are given back")
	flag.Parse()
	ok, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// phase is one traffic run with memtrace and the counter attached.
type phase struct {
	name    string
	minFree string
	traffic trafficStats
	counter counted
	capture *captureSummary
	doctor  string
	capFile string
	prepare func() error // before the capture starts
}

func run(o options) (bool, error) {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return false, err
	}
	unix := syscall.Rlimit{Cur: 1 << 16, Max: 1 << 16}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &unix); err != nil {
		return false, fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
	}
	tfs, unmount, err := tracefs.Mount()
	if err != nil {
		return false, err
	}
	defer unmount()
	sc := sysctls{}
	defer sc.restore()
	for _, kv := range [][2]string{
		{"vm.compaction_proactiveness", "0"}, {"vm.compact_unevictable_allowed", "0"},
		{"net.core.somaxconn", "4096"}, {"net.ipv4.tcp_max_syn_backlog", "4096"},
	} {
		if err := sc.set(kv[0], kv[1]); err != nil {
			return false, err
		}
	}
	rep := &report{kernel: strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")), o: o}
	rep.memTotal, _ = meminfo("MemTotal")
	rep.buddyBoot = readFile("/proc/buddyinfo")
	var fr fragmenter
	defer fr.release()
	// Fragmenting happens before memtrace starts: started first, its
	// movable pages lie in unfragmented memory and kcompactd moves them
	// into the holes, rebuilding order-3 blocks (a run with no failure).
	// Starting a process afterwards needs an order-1 PGD under page-table
	// isolation, which nothing can provide: the guest boots with nopti.
	fragment := func() error {
		t0 := time.Now()
		taken, err := fr.fragment(o.leaveKB)
		if err != nil {
			return err
		}
		rep.takenKB, rep.fragTook = taken, time.Since(t0)
		rep.freeAfterFrag, _ = meminfo("MemFree")
		rep.buddyFrag = readFile("/proc/buddyinfo")
		fmt.Printf("lab: took %d MiB, gave every other page back: MemFree %d MiB\n%s", taken>>10, rep.freeAfterFrag>>10, rep.buddyFrag)
		return nil
	}

	before := &phase{name: "before", minFree: strings.TrimSpace(readFile("/proc/sys/vm/min_free_kbytes")), prepare: fragment}
	if err := runPhase(o, tfs, before, true); err != nil {
		return false, err
	}
	rep.phases = append(rep.phases, before)
	m := regexp.MustCompile(`sysctl -w vm\.min_free_kbytes=(\d+)`).FindStringSubmatch(before.doctor)
	if m == nil {
		rep.notes = append(rep.notes, "doctor --measure made no min_free_kbytes recommendation: the second run keeps the same settings")
	} else {
		if err := sc.set("vm.min_free_kbytes", m[1]); err != nil {
			return false, err
		}
		// kswapd reclaims (and kcompactd compacts) towards the new
		// watermarks; give it a moment, as an operator's sysctl would.
		time.Sleep(3 * time.Second)
	}
	after := &phase{name: "after", minFree: strings.TrimSpace(readFile("/proc/sys/vm/min_free_kbytes"))}
	if err := runPhase(o, tfs, after, false); err != nil {
		return false, err
	}
	rep.phases = append(rep.phases, after)
	rep.buddyEnd = readFile("/proc/buddyinfo")
	ok := rep.check()
	md := rep.markdown()
	fmt.Print(md)
	return ok, os.WriteFile(filepath.Join(o.out, "lab.md"), []byte(md), 0o644)
}

// smallGo keeps memtrace's heaps small: two of them (capture and doctor)
// decode the kernel's BTF at once in a 512 MiB guest whose free memory
// the lab has mostly taken.
var smallGo = append(os.Environ(), "GOMEMLIMIT=48MiB")

// runPhase starts memtrace capture, waits for its probes, counts failed
// allocations with tracefs while the traffic (and in the first phase
// doctor --measure) runs, then stops the capture with SIGINT.
func runPhase(o options, tfs string, p *phase, measure bool) error {
	p.capFile = filepath.Join(o.out, "capture-"+p.name+".json")
	ready := filepath.Join(o.out, "ready-"+p.name)
	if p.prepare != nil {
		if err := p.prepare(); err != nil {
			return err
		}
	}
	capt := exec.Command(o.memtrace, "capture", "--duration", "0", "--signals", "alloc,extfrag", "-o", p.capFile, "--ready-file", ready)
	capt.Stdout, capt.Stderr, capt.Env = os.Stdout, os.Stderr, smallGo
	if err := capt.Start(); err != nil {
		return fmt.Errorf("starting memtrace capture: %w", err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			capt.Process.Kill()
			capt.Wait()
			return errors.New("memtrace capture did not attach within 2 minutes")
		}
	}
	c, err := tracefs.NewCounter(tfs, "kmem", "mm_page_alloc", "pfn == 18446744073709551615")
	if err != nil {
		capt.Process.Kill()
		capt.Wait()
		return err
	}
	// doctor --measure samples the last 10s of the traffic, when free
	// blocks of order 3 are gone and the failures come.
	docDone := make(chan string, 1)
	if measure {
		go func() {
			time.Sleep(max(o.traffic-12*time.Second, 0))
			doc := exec.Command(o.memtrace, "doctor", "--measure", "10s")
			doc.Env = smallGo
			t0 := time.Now().UTC()
			out, _ := doc.CombinedOutput()
			docDone <- fmt.Sprintf("(lab: doctor ran %s to %s)\n%s", t0.Format("15:04:05.0"), time.Now().UTC().Format("15:04:05.0"), out) // exit 1 when a finding is a problem: expected here
		}()
	}
	p.traffic, err = traffic(o.traffic, o.conns)
	if measure {
		p.doctor = <-docDone
		os.WriteFile(filepath.Join(o.out, "doctor-"+p.name+".txt"), []byte(p.doctor), 0o644)
	}
	p.counter, _ = countTrace(c)
	c.Close()
	capt.Process.Signal(os.Interrupt)
	if werr := capt.Wait(); werr != nil {
		return fmt.Errorf("memtrace capture: %w", werr)
	}
	if err != nil {
		return fmt.Errorf("traffic: %w", err)
	}
	p.capture, err = summarize(p.capFile)
	return err
}

// counted is the tracefs counter's view: the exact total (entries plus
// overruns) and, from the records the buffer kept, the split by context
// (the irq-info column: 's' serving softirq, 'h' hardirq, 'H' hardirq in
// softirq) and by order.
type counted struct {
	Total, Kept, Softirq uint64
	ByOrder              map[int]uint64
	SoftirqByOrder       map[int]uint64
}

var flagsCol = regexp.MustCompile(`\[\d+\]\s+(\S{4,5})\s+\d+\.\d+:\s+mm_page_alloc:.*order=(\d+)`)

func countTrace(c *tracefs.Counter) (counted, error) {
	n := counted{ByOrder: map[int]uint64{}, SoftirqByOrder: map[int]uint64{}}
	var err error
	if n.Total, err = c.Count(); err != nil {
		return n, err
	}
	b, err := os.ReadFile(filepath.Join(c.Dir(), "trace"))
	if err != nil {
		return n, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		m := flagsCol.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		order, _ := strconv.Atoi(m[2])
		n.Kept++
		n.ByOrder[order]++
		if f := m[1]; len(f) > 2 && (f[2] == 's' || f[2] == 'H') {
			n.Softirq++
			n.SoftirqByOrder[order]++
		}
	}
	return n, nil
}
