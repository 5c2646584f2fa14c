package doctor

import (
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/memtrace/memtrace/internal/decode/mounts"
	"github.com/memtrace/memtrace/internal/host/rawbtf"
	"github.com/memtrace/memtrace/pkg/gfp"
)

// Config tunes the checks.
type Config struct {
	// Kernel is the release whose GFP layout decodes the log's modes;
	// empty means the release the log names, else this host's kernel.
	Kernel string
	// Top is how many processes the page table check lists (5 when 0).
	Top int
	// HostGFP loads the running kernel's GFP table; nil uses LiveGFP.
	HostGFP func(release string) (*gfp.Table, error)
	// Hostname overrides the name read from procfs (for tests).
	Hostname string
}

// Report is the outcome of a doctor run.
type Report struct {
	Time     time.Time      `json:"time"`
	Host     Host           `json:"host"`
	Log      *LogSummary    `json:"log,omitempty"`
	Interval *Interval      `json:"interval,omitempty"`
	Failures []FailureGroup `json:"failures"`
	Findings []Finding      `json:"findings"`
	// Measured is what --measure traced.
	Measured *Measurement `json:"measured,omitempty"`
	Skipped  []Skip       `json:"skipped,omitempty"`
	// Errors are the files that could not be read.
	Errors []string `json:"errors,omitempty"`
	// Elapsed is how long gathering and checking took.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Interval is the time the rates were measured over: less than asked
// when Ctrl-C ended the wait (Interrupted).
type Interval struct {
	Asked       time.Duration `json:"asked_ns"`
	Measured    time.Duration `json:"measured_ns"`
	Interrupted bool          `json:"interrupted"`
}

// Host describes the machine checked.
type Host struct {
	Hostname   string        `json:"hostname,omitempty"`
	Release    string        `json:"release,omitempty"`
	CPUs       int           `json:"cpus"`
	MemTotalKB uint64        `json:"mem_total_kb"`
	Uptime     time.Duration `json:"uptime_ns"`
	NUMANodes  int           `json:"numa_nodes"`
}

// Worst is the highest severity among the findings.
func (r *Report) Worst() Severity {
	w := OK
	for _, f := range r.Findings {
		if f.Severity > w {
			w = f.Severity
		}
	}
	return w
}

// Count returns how many findings have severity s.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Check runs every check on in.
func Check(in *Inputs, cfg Config) *Report {
	if cfg.Top <= 0 {
		cfg.Top = 5
	}
	if cfg.HostGFP == nil {
		cfg.HostGFP = LiveGFP
	}
	r := &Report{
		Time:    in.Time,
		Skipped: append([]Skip(nil), in.Skipped...),
		Errors:  in.Errors,
		Host: Host{
			Hostname: cfg.Hostname, Release: in.Release, CPUs: runtime.NumCPU(),
			MemTotalKB: in.Snap.Memory.MemTotalKB, Uptime: in.Uptime, NUMANodes: len(in.NUMA.Nodes),
		},
	}
	if r.Host.Hostname == "" {
		r.Host.Hostname = in.Hostname
	}
	if in.IntervalAsked > 0 {
		r.Interval = &Interval{Asked: in.IntervalAsked, Interrupted: in.Interrupted}
		if in.Later != nil {
			r.Interval.Measured = in.Interval
		}
	}
	lc := checkLog(in, cfg, r)
	r.Findings = append(r.Findings,
		lc,
		checkWatermarks(in, r.Failures),
		checkZoneReclaim(in, r.Failures),
		checkHugePools(in),
		checkSharedMemory(in),
		checkTHP(in),
		checkPageTables(in, cfg.Top),
		checkPressure(in),
	)
	if in.Measured != nil {
		r.Measured = in.Measured
		r.Findings = append(r.Findings, checkAtomicDemand(in))
	}
	r.Findings = append(r.Findings, readErrorFindings(in.Errors)...)
	return r
}

// LiveGFP loads the running kernel's GFP names: the tracepoint format if
// tracefs is mounted, else kernel BTF, else the built-in table for the
// release (gfp.Load's order).
func LiveGFP(release string) (*gfp.Table, error) {
	dir := ""
	// Where tracefs is mounted, from the mount table: doctor never mounts
	// it, and a stat of /sys/kernel/debug/tracing would have debugfs do so.
	for _, d := range mounts.MountPoints("tracefs") {
		if _, err := os.Stat(filepath.Join(d, gfp.FormatPath)); err == nil {
			dir = d
			break
		}
	}
	return gfp.Load(dir, kernelGFPEnum(rawbtf.KernelPath), release)
}
