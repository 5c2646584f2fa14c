// Command benchrun measures memtrace side by side with an empty-program
// floor, bpftrace and bcc on this machine, in one run: start-up and peak
// RSS, in-kernel cost per hit, slowdown of a page-allocation workload and
// of pgbench (configurations interleaved round by round), the stall
// families' cost on a reclaim-heavy workload, bursts of
// injected allocation failures, and a long run. It writes the raw rows as
// CSV and a Markdown summary with 95% intervals. Run it through
// `make bench` (scripts/bench.sh), as root.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// plan sizes every phase; quick mode is a smoke test, not a result.
type plan struct {
	startupReps  int
	overheadRuns int // rounds of the page workload
	touchIters   int // 256 MiB cycles per page-workload run
	pgRounds     int
	pgSeconds    int
	kcostRounds  int
	// stallRounds: rounds of the reclaim-heavy workload (stall phase);
	// stallCostRounds: rounds of it with BPF run-time statistics.
	stallRounds, stallCostRounds int
	burstSeconds                 float64
	longRun                      time.Duration
	settle                       time.Duration
	pgScale                      int
	quick                        bool
	phases                       map[string]bool
	keep                         bool
	quietLoad                    float64
	quietWait                    time.Duration
	burstThreads                 int
	burstBatch                   int
	longInjectHz                 int
	longBatch                    int
	longSampleSec                time.Duration
	// procsRun and procsRate size the longprocs phase: how long, and how
	// many new failing processes a second.
	procsRun  time.Duration
	procsRate float64
	// baseline is another memtrace binary started beside bin/memtrace in
	// the start-up phase ("memtrace-baseline"), to compare two builds in
	// one run; "" for none.
	baseline string
	// startupPeers: bpftrace and bcc are part of the start-up phase.
	startupPeers bool
	// signals, when set, is passed to every memtrace run as --signals
	// (e.g. every family, where some are opt-in).
	signals string
}

func fullPlan() plan {
	return plan{startupReps: 8, overheadRuns: 20, touchIters: 6, pgRounds: 8, pgSeconds: 4,
		kcostRounds: 6, burstSeconds: 2, longRun: 10 * time.Minute, settle: 200 * time.Millisecond,
		pgScale: 10, burstThreads: 1, burstBatch: 2000, longInjectHz: 10, longBatch: 100,
		longSampleSec: 10 * time.Second, stallRounds: 15, stallCostRounds: 5, procsRun: time.Hour, procsRate: 3}
}

func quickPlan() plan {
	p := fullPlan()
	p.quick = true
	p.startupReps, p.overheadRuns, p.touchIters = 1, 3, 2
	p.pgRounds, p.pgSeconds, p.pgScale = 2, 1, 2
	p.kcostRounds, p.burstSeconds = 1, 0.5
	p.stallRounds, p.stallCostRounds = 2, 1
	p.longRun, p.longSampleSec = 15*time.Second, 2*time.Second
	p.procsRun = 15 * time.Second
	return p
}

const allPhases = "startup,kcost,overhead,pgbench,stall,burst,longrun"

// knownPhases are allPhases and those run only when asked for: longprocs
// takes an hour.
const knownPhases = allPhases + ",longprocs"

func main() {
	quick := flag.Bool("quick", false, "smoke test (~2 minutes): few repetitions, short long run")
	out := flag.String("out", "docs/bench", "directory for results.csv and summary.md")
	bin := flag.String("bin", "bin", "directory holding memtrace, floor and pagetouch")
	phases := flag.String("phases", allPhases, "phases to run, comma-separated, of "+knownPhases+" (longprocs: only when named)")
	long := flag.Duration("long", 0, "override the long run's duration")
	procsRun := flag.Duration("procs-run", 0, "longprocs phase: how long to run (default 1h)")
	procsRate := flag.Float64("procs-rate", 0, "longprocs phase: new failing processes per second (default 3)")
	keep := flag.Bool("keep", false, "keep the scratch directory (tracer logs) for debugging")
	quietLoad := flag.Float64("quiet-load", 1.0, "before starting, wait for the 1-minute load average to fall below this")
	fromCSV := flag.String("from-csv", "", "only render summary.md into -out from this results.csv of an earlier run")
	quietWait := flag.Duration("quiet-wait", 10*time.Minute, "wait at most this long for a quiet machine (0: do not wait)")
	baseline := flag.String("baseline", "", "start-up phase: also start this memtrace binary (an earlier build), interleaved with bin/memtrace")
	startupReps := flag.Int("startup-reps", 0, "override the number of start-up rounds")
	startupPeers := flag.Bool("startup-peers", true, "start-up phase: include bpftrace and bcc (false: only floor and memtrace, e.g. to compare builds)")
	signals := flag.String("memtrace-signals", "", "run memtrace (and -baseline) with --signals this list, e.g. alloc,extfrag,hugetlb,reclaim,compaction")
	flag.Parse()
	p := fullPlan()
	if *quick {
		p = quickPlan()
	}
	if *long > 0 {
		p.longRun = *long
	}
	// A rate outside these bounds makes no ticker (or no sense here).
	if *procsRun < 0 || math.IsNaN(*procsRate) || (*procsRate != 0 && (*procsRate < 0.001 || *procsRate > 1000)) {
		fmt.Fprintf(os.Stderr, "benchrun: -procs-run must be positive and -procs-rate within 0.001 to 1000 per second\n")
		flag.Usage()
		os.Exit(2)
	}
	if *procsRun > 0 {
		p.procsRun = *procsRun
	}
	if *procsRate > 0 {
		p.procsRate = *procsRate
	}
	if *startupReps > 0 {
		p.startupReps = *startupReps
	}
	p.baseline, p.startupPeers, p.signals = *baseline, *startupPeers, *signals
	p.phases = map[string]bool{}
	for _, ph := range strings.Split(*phases, ",") {
		ph = strings.TrimSpace(ph)
		if !slices.Contains(strings.Split(knownPhases, ","), ph) {
			fmt.Fprintf(os.Stderr, "benchrun: unknown phase %q (known: %s)\n", ph, knownPhases)
			flag.Usage()
			os.Exit(2)
		}
		p.phases[ph] = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p.keep = *keep
	if *fromCSV != "" {
		if err := renderFromCSV(*fromCSV, *out); err != nil {
			fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if *quick {
		*quietWait = 0
	}
	p.quietLoad, p.quietWait = *quietLoad, *quietWait
	if err := run(ctx, p, *out, *bin); err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		os.Exit(1)
	}
}

// env is what every phase shares: binaries, the scratch directory, the
// tracers started and not yet stopped, and the results.
type env struct {
	plan
	binDir         string
	work           string
	seq            int
	live           map[int]*running
	forcedStops    map[string]int
	machineSeq     int
	version        string // memtrace --version
	mode           string // how memtrace ran, when rendering an earlier run
	bpftraceScript string
	tracerEnv      []string
	watch          bool // memtrace watch exists: use it instead of capture
	res            results
	// tracerStdout, when set, is memtrace watch's stdout in the next
	// startTracer instead of /dev/null (longprocs reads it).
	tracerStdout *os.File
	started      time.Time
	cleanups     []func()
}

func (e *env) bin(name string) string { return filepath.Join(e.binDir, name) }

// memtraceArgs is "memtrace with every signal on", as a user leaves it
// running: watch with JSON lines thrown away once it exists, capture
// until interrupted before that.
func (e *env) memtraceArgs(ready string, extra ...string) []string {
	return e.memtraceArgsOf(e.bin("memtrace"), ready, extra...)
}

// memtraceArgsOf is memtraceArgs for another memtrace binary (-baseline),
// which must have watch if bin/memtrace has it.
func (e *env) memtraceArgsOf(bin, ready string, extra ...string) []string {
	if e.signals != "" {
		extra = append([]string{"--signals", e.signals}, extra...)
	}
	if e.watch {
		return append([]string{bin, "watch", "--json", "--ready-file", ready}, extra...)
	}
	return append([]string{bin, "capture", "--duration", "0", "-o", "/dev/null", "--ready-file", ready}, extra...)
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(e.started).Seconds(), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, p plan, outDir, binDir string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("running the benchmarks needs root (BPF programs, tracefs, bpf stats)")
	}
	e := &env{plan: p, binDir: binDir, live: map[int]*running{}, forcedStops: map[string]int{}, started: time.Now()}
	defer e.cleanup()
	var err error
	if e.work, err = os.MkdirTemp("", "memtrace-bench-"); err != nil {
		return fmt.Errorf("creating scratch directory: %w", err)
	}
	e.onCleanup(func() {
		if e.keep {
			e.logf("kept %s", e.work)
			return
		}
		os.RemoveAll(e.work)
	})
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", outDir, err)
	}
	if err := e.setup(); err != nil {
		return err
	}
	e.waitQuiet(ctx)
	e.res.add("meta", "-", "-", 0, 0, "run_start_unix", float64(time.Now().Unix()), "s")
	progsBefore := loadedProgIDs()
	type phase struct {
		name string
		run  func(context.Context) error
	}
	for _, ph := range []phase{
		{"startup", e.startupPhase}, {"kcost", e.kcostPhase}, {"overhead", e.overheadPhase},
		{"pgbench", e.pgbenchPhase}, {"stall", e.stallPhase}, {"burst", e.burstPhase}, {"longrun", e.longrunPhase},
		{"longprocs", e.longprocsPhase},
	} {
		if !p.phases[ph.name] {
			continue
		}
		e.logf("phase %s", ph.name)
		e.noteMachine(ph.name, "start")
		err := ph.run(ctx)
		e.noteMachine(ph.name, "end")
		if err != nil {
			e.writeOut(outDir)
			return fmt.Errorf("phase %s: %w", ph.name, err)
		}
		if err := e.writeOut(outDir); err != nil {
			return err
		}
	}
	e.cleanup()
	// Programs are freed after their last descriptor closes, not at once:
	// give the kernel a few seconds before calling one left behind.
	for try := 0; ; try++ {
		left := newProgIDs(progsBefore)
		if len(left) == 0 {
			break
		}
		if try == 5 {
			return fmt.Errorf("BPF programs left loaded after the run: ids %v", left)
		}
		time.Sleep(time.Second)
	}
	e.logf("done: %s/results.csv, %s/summary.md", outDir, outDir)
	return nil
}

func (e *env) writeOut(outDir string) error {
	if err := e.res.writeCSV(filepath.Join(outDir, "results.csv")); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(outDir, "summary.md"), []byte(e.summary()), 0o644)
}

// waitQuiet waits, up to quietWait, for the machine to be idle: every
// interval widens with other work on a 2-core machine.
func (e *env) waitQuiet(ctx context.Context) {
	deadline := time.Now().Add(e.quietWait)
	for time.Now().Before(deadline) {
		if l := loadavg1(); l < e.quietLoad {
			return
		} else {
			e.logf("waiting for a quiet machine: load average %.2f ≥ %.2f (up to %s more)", l, e.quietLoad, time.Until(deadline).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(15 * time.Second):
		}
	}
	if e.quietWait > 0 {
		e.logf("starting with load average %.2f", loadavg1())
	}
}

func loadavg1() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	var load float64
	fmt.Sscan(string(b), &load)
	return load
}

// noteMachine records the 1-minute load average and how many BPF programs
// others have loaded (none of ours runs between phases): this machine is
// shared, and a busy one widens every interval.
func (e *env) noteMachine(phase, when string) {
	e.machineSeq++
	e.res.add("machine", phase, when, e.machineSeq, 0, "loadavg1", loadavg1(), "")
	e.res.add("machine", phase, when, e.machineSeq, 0, "foreign_bpf_progs", float64(len(loadedProgIDs())), "programs")
}

func (e *env) onCleanup(f func()) { e.cleanups = append(e.cleanups, f) }

// cleanup stops every tracer still running, then undoes the setup in
// reverse order. It runs once.
func (e *env) cleanup() {
	for pid, r := range e.live {
		r.stop()
		delete(e.live, pid)
	}
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	e.cleanups = nil
}

// setup mounts tracefs if nobody has, prepares bcc's kernel headers and
// bpftrace's script, and finds out whether memtrace has watch.
func (e *env) setup() error {
	for _, b := range []string{"memtrace", "floor", "pagetouch"} {
		if _, err := os.Stat(e.bin(b)); err != nil {
			return fmt.Errorf("missing %s (scripts/bench.sh builds it): %w", e.bin(b), err)
		}
	}
	if e.baseline != "" {
		if _, err := os.Stat(e.baseline); err != nil {
			return fmt.Errorf("missing the baseline binary: %w", err)
		}
	}
	for _, b := range []string{"bpftrace", "trace-bpfcc"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("missing %s (scripts/bench.sh installs bpftrace and bpfcc-tools): %w", b, err)
		}
	}
	if err := e.ensureTracefs(); err != nil {
		return err
	}
	if err := e.bccHeaders(); err != nil {
		return err
	}
	e.bpftraceScript = filepath.Join(e.work, "memtrace.bt")
	if err := os.WriteFile(e.bpftraceScript, bpftraceScript, 0o644); err != nil {
		return fmt.Errorf("writing bpftrace script: %w", err)
	}
	e.watch = exec.Command(e.bin("memtrace"), "help", "watch").Run() == nil
	if out, err := exec.Command(e.bin("memtrace"), "--version").Output(); err == nil {
		e.version = strings.TrimSpace(string(out))
	}
	e.logf("memtrace runs as: %s", e.memtraceMode())
	// Metadata rows, so that a summary can be rendered from the CSV alone.
	e.res.add("meta", "-", e.version, 0, 0, "memtrace_version", 0, "")
	e.res.add("meta", "-", e.memtraceMode(), 0, 0, "memtrace_mode", 0, "")
	runMode := "full"
	if e.quick {
		runMode = "quick"
	}
	e.res.add("meta", "-", runMode, 0, 0, "run_mode", 0, "")
	return nil
}
