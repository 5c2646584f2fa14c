// Command lab runs inside test/vm's guest (`make lab`, `go run ./test/vm
// -lab`) and reproduces the first seed's incident for real: free memory
// fragmented into order-0 blocks, then TCP connection bursts over
// loopback, whose child sockets and SYN-ACKs are allocated in NET_RX
// softirq, and connections from the host through a virtio-net device
// (wire.go), received in the softirq after its interrupt, where an idle
// CPU's interrupted task is the idle task. memtrace capture runs across
// the traffic; a tracefs counter
// of kmem:mm_page_alloc with no page counts the same window
// independently. memtrace doctor --measure recommends min_free_kbytes,
// which is applied before the same traffic runs again. It writes its
// findings as Markdown (-report) for docs/lab.md, and exits 1 when
// memtrace saw fewer failures than the counter.
package main

import (
	"flag"
	"fmt"
	"os"
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
	wireOnly      time.Duration
	conns         int
	leaveKB       uint64
	scenarios     string
	shmMB         uint64
	workers       int
	warmUp        int
	deadline      time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.memtrace, "memtrace", "/vm/bin/memtrace", "memtrace binary")
	flag.StringVar(&o.out, "out", "/tmp/lab", "directory for captures and the report")
	flag.StringVar(&o.scenarios, "scenarios", "2,1", "which scenarios to run: 1 (softirq failures), 2 (SysV segment page tables); 2 runs first, on unfragmented memory")
	flag.DurationVar(&o.traffic, "traffic", 45*time.Second, "how long each traffic run lasts")
	flag.DurationVar(&o.wireOnly, "wire-only", 15*time.Second, "how long each traffic run first receives only the host's connections (the wire), the guest otherwise idle")
	flag.IntVar(&o.conns, "conns", 4000, "connections held per burst (client and server side each count one)")
	flag.Uint64Var(&o.leaveKB, "leave-kb", 4<<10, "MemFree left unfragmented before the odd pages are given back")
	flag.IntVar(&o.warmUp, "warm-up", 1000, "connections opened after fragmenting and held through every run (0: none)")
	flag.Uint64Var(&o.shmMB, "shm-mb", 128, "scenario 2's segment in MiB")
	flag.IntVar(&o.workers, "shm-workers", 8, "scenario 2's worker processes")
	flag.DurationVar(&o.deadline, "deadline", 12*time.Minute, "give up (exit 1, with the memory state) after this long")
	// The database and its workers of scenario 2 are this binary too.
	db := flag.Bool("shm-db", false, "run as scenario 2's database (internal)")
	worker := flag.Int("shm-worker", -1, "run as a worker attaching this segment (internal)")
	key := flag.Int("shm-key", 0, "the database's segment key (internal)")
	workerBin := flag.String("shm-worker-bin", "", "the workers' binary (internal)")
	ready := flag.String("shm-ready", "", "the database's ready file (internal)")
	flag.Parse()
	switch {
	case *db:
		if err := runDB(*key, o.shmMB<<20, o.workers, *workerBin, *ready); err != nil {
			fmt.Fprintln(os.Stderr, "shm-db:", err)
			os.Exit(1)
		}
		return
	case *worker >= 0:
		if err := runWorker(*worker); err != nil {
			fmt.Fprintln(os.Stderr, "shm-worker:", err)
			os.Exit(1)
		}
		return
	}
	// A guest that thrashes or loses a process to the OOM killer must
	// end the lab with the reason, not leave it to qemu's timeout.
	time.AfterFunc(o.deadline, func() {
		free, _ := meminfo("MemFree")
		fmt.Fprintf(os.Stderr, "lab: FAIL: still running after %s (MemFree %d MiB, oom_kill %d)\n%s", o.deadline, free>>10, vmstat("oom_kill"), readFile("/proc/buddyinfo"))
		os.Exit(1)
	})
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
	name     string
	tag      string // in file names
	minFree  string // vm.min_free_kbytes during the run
	wsf      string // vm.watermark_scale_factor
	compact  string // vm.compaction_proactiveness / compact_unevictable_allowed
	measure  bool   // doctor --measure across the traffic
	traffic  trafficStats
	counter  counted
	capture  *captureSummary
	doctor   string
	capFile  string
	prepare  func() error // before the capture starts
	oomKills uint64
	valve    int   // fragmenter regions given back (safety valve), cumulative
	wireOn   bool  // accept the host's connections during the traffic (wire.go)
	wire     int64 // connections accepted from the wire
	wireIdle int64 // of them, while only the wire's arrived (o.wireOnly)
}

func run(o options) (bool, error) {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return false, err
	}
	unix := syscall.Rlimit{Cur: 1 << 16, Max: 1 << 16}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &unix); err != nil {
		return false, fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
	}
	// Scenario 2's database outlives memtrace verify, which starts it:
	// reparented here, it can be waited for.
	if err := prctlSubreaper(); err != nil {
		return false, err
	}
	sc := sysctls{}
	defer sc.restore()
	rep := &report{kernel: strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")), o: o}
	rep.memTotal, _ = meminfo("MemTotal")
	rep.buddyBoot = readFile("/proc/buddyinfo")
	if strings.Contains(o.scenarios, "2") {
		t0 := time.Now()
		oom := vmstat("oom_kill")
		runs, err := scenario2(o, sc)
		rep.shm, rep.shmTook = runs, time.Since(t0)
		if err != nil {
			return false, fmt.Errorf("scenario 2: %w", err)
		}
		if n := vmstat("oom_kill") - oom; n > 0 {
			rep.problems = append(rep.problems, fmt.Sprintf("scenario 2: the guest's OOM killer ran %d time(s) (console.log has its report)", n))
		}
		rep.problems = append(rep.problems, checkShm(runs, o)...)
	}
	if strings.Contains(o.scenarios, "1") {
		if err := scenario1(o, sc, rep); err != nil {
			return false, fmt.Errorf("scenario 1: %w", err)
		}
	}
	ok := rep.check()
	md := rep.markdown()
	fmt.Print(md)
	return ok, os.WriteFile(filepath.Join(o.out, "lab.md"), []byte(md), 0o644)
}

// scenario1 fragments free memory, runs the traffic with memtrace capture
// and doctor --measure attached, applies doctor's recommendation and runs
// the same traffic again; then once more with compaction allowed again.
func scenario1(o options, sc sysctls, rep *report) error {
	tfs, unmount, err := tracefs.Mount()
	if err != nil {
		return err
	}
	defer unmount()
	for _, kv := range [][2]string{
		{"vm.compaction_proactiveness", "0"}, {"vm.compact_unevictable_allowed", "0"},
		// Every fragmenting fallback boosts the zone's watermarks (by up
		// to 1.5 times high), and without swap kswapd cannot reclaim the
		// boost away: with 30 MiB free and min boosted to 33 MiB, an
		// order-0 GFP_KERNEL request OOM-killed the lab (20:30 run).
		{"vm.watermark_boost_factor", "0"},
		{"net.core.somaxconn", "4096"}, {"net.ipv4.tcp_max_syn_backlog", "4096"},
	} {
		if err := sc.set(kv[0], kv[1]); err != nil {
			return err
		}
	}
	// The device's modules load before fragmenting: their allocations
	// would fail after.
	if name, err := wireUp(); err != nil {
		rep.notes = append(rep.notes, "no traffic from the wire: "+err.Error())
	} else {
		rep.wire = name
	}
	rep.buddyStart = readFile("/proc/buddyinfo")
	var fr fragmenter
	defer fr.release()
	var warm *holder
	defer func() {
		if warm != nil {
			warm.close()
		}
	}()
	// Fragmenting happens before memtrace starts: started first, its
	// movable pages lie in unfragmented memory and kcompactd moves them
	// into the holes, rebuilding order-3 blocks (a run with no failure).
	// Starting a process afterwards needs an order-1 PGD under page-table
	// isolation, which nothing can provide: the guest boots with nopti.
	fragment := func() error {
		// Recorded for restore, then taken directly by the valve.
		if err := sc.set("vm.nr_hugepages", "0"); err != nil {
			return err
		}
		if err := fr.reserveHuge(valveHugePages); err != nil {
			return err
		}
		t0 := time.Now()
		taken, err := fr.fragment(o.leaveKB)
		if err != nil {
			return err
		}
		rep.takenKB, rep.fragTook = taken, time.Since(t0)
		fr.startValve()
		if o.warmUp > 0 {
			if warm, err = warmUp(o.warmUp); err != nil {
				return fmt.Errorf("warming up: %w", err)
			}
			rep.warmHeld = warm.held()
		}
		rep.freeAfterFrag, _ = meminfo("MemFree")
		rep.buddyFrag = readFile("/proc/buddyinfo")
		fmt.Printf("lab: took %d MiB, gave every other page back, holding %d sockets: MemFree %d MiB\n%s", taken>>10, rep.warmHeld, rep.freeAfterFrag>>10, rep.buddyFrag)
		return nil
	}
	phases := []*phase{
		{name: "before", tag: "before", prepare: fragment, measure: true},
		{name: "after (doctor's settings)", tag: "after", prepare: func() error { return applyDoctor(rep, sc) }},
		{name: "after (and compaction)", tag: "after-compaction", prepare: func() error {
			// The lab's own settings that keep the fragmentation:
			// back to the kernel's defaults, as on any host.
			for _, kv := range [][2]string{{"vm.compaction_proactiveness", "20"}, {"vm.compact_unevictable_allowed", "1"}} {
				if err := sc.set(kv[0], kv[1]); err != nil {
					return err
				}
			}
			said := ""
			if strings.Contains(rep.phases[0].doctor, "vm.compaction_proactiveness=20") || strings.Contains(rep.phases[0].doctor, "vm.compact_unevictable_allowed=1") {
				said = "; doctor --measure said to, its failures having been fragmentation"
			}
			rep.applied = append(rep.applied, "vm.compaction_proactiveness=20 and vm.compact_unevictable_allowed=1 (the kernel's defaults"+said+") for the third run")
			time.Sleep(3 * time.Second)
			return nil
		}},
	}
	for _, p := range phases {
		oom := vmstat("oom_kill")
		p.wireOn = rep.wire != ""
		err := runPhase(o, tfs, p)
		rep.phases = append(rep.phases, p)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		p.oomKills = vmstat("oom_kill") - oom
		p.valve = fr.opened()
	}
	fr.stopValve()
	rep.buddyEnd = readFile("/proc/buddyinfo")
	return nil
}

// applyDoctor applies the vm sysctls doctor --measure recommended in the
// first run (min_free_kbytes, watermark_scale_factor) and the compaction
// it says to run now, as an operator would, and lets kswapd and kcompactd
// work towards the new watermarks.
func applyDoctor(rep *report, sc sysctls) error {
	doc := rep.phases[0].doctor
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`sysctl -w (vm\.(?:min_free_kbytes|watermark_scale_factor))=(\d+)`).FindAllStringSubmatch(doc, -1) {
		if seen[m[1]] {
			continue // the first finding that names it wins
		}
		seen[m[1]] = true
		if err := sc.set(m[1], m[2]); err != nil {
			return err
		}
		rep.applied = append(rep.applied, fmt.Sprintf("%s=%s (doctor's recommendation) from the second run on", m[1], m[2]))
	}
	if strings.Contains(doc, "echo 1 > /proc/sys/vm/compact_memory") {
		if err := os.WriteFile("/proc/sys/vm/compact_memory", []byte("1"), 0o200); err != nil {
			return fmt.Errorf("compacting memory: %w", err)
		}
		seen["compact_memory"] = true
		rep.applied = append(rep.applied, "echo 1 > /proc/sys/vm/compact_memory (doctor's recommendation: compacts once) before the second run")
	}
	if len(seen) == 0 {
		rep.notes = append(rep.notes, "doctor --measure made no min_free_kbytes, watermark or compaction recommendation: the second run keeps the first run's settings")
		return nil
	}
	time.Sleep(3 * time.Second)
	return nil
}

// smallGo keeps memtrace's heaps small: two of them (capture and doctor)
// decode the kernel's BTF at once in a 512 MiB guest whose free memory
// the lab has mostly taken.
var smallGo = append(os.Environ(), "GOMEMLIMIT=48MiB")

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
