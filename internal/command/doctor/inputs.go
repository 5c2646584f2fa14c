package doctor

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"

	"github.com/memtrace/memtrace/internal/command/hugepages"
	"github.com/memtrace/memtrace/internal/host/hugetlbcg"
	"github.com/memtrace/memtrace/internal/host/sysstate"
	"github.com/memtrace/memtrace/pkg/kmsg"
)

// Options say what to read.
type Options struct {
	// ProcRoot and SysRoot are where procfs and sysfs are mounted
	// ("/proc", "/sys" when empty); tests point them at copies.
	ProcRoot, SysRoot string
	// PasswdFile names users in fixes ("/etc/passwd" when empty).
	PasswdFile string
	// LogFile is a copy of a kernel log to read instead of the running
	// kernel's ("-": Stdin). Empty reads the live log.
	LogFile string
	Stdin   io.Reader
	// LogText dates the lines of LogFile (zero: the file's time, local
	// time zone).
	LogText kmsg.TextOptions
	// LogMaxBytes bounds what is read of a LogFile that is not a regular
	// file (see kmsg.FileOptions.MaxBytes).
	LogMaxBytes int64
	// Since keeps failures logged this long before Now or later out of
	// the groups (zero: the whole log).
	Since time.Duration
	// Now is when the doctor runs (zero: time.Now()); tests fix it.
	Now time.Time
	// Live says where the live log is; ignored with LogFile.
	Live kmsg.LiveOptions
	// NoLog skips the kernel log (tests of the other checks).
	NoLog bool
	// Interval, when not zero, takes a second snapshot that long after
	// the first, for rates and the largest short drop of free memory.
	Interval time.Duration
	// SampleEvery is how often free memory is sampled during Interval
	// (100 ms when zero).
	SampleEvery time.Duration
}

// Inputs is everything the checks look at.
type Inputs struct {
	Time     time.Time `json:"time"`
	Release  string    `json:"release"` // running kernel (uname -r)
	Hostname string    `json:"hostname"`
	Uptime   time.Duration
	// Snap is the memory state; Later is the second snapshot, taken
	// Interval after it (nil without one). Interval is the time measured
	// between the two; IntervalAsked what --interval asked for, which is
	// longer when Interrupted (Ctrl-C) ended the wait.
	Snap          sysstate.Snapshot
	Later         *sysstate.Snapshot
	Interval      time.Duration
	IntervalAsked time.Duration
	Interrupted   bool
	// MaxDropKB is the largest fall of free memory between two samples
	// SampleEvery apart during Interval: a lower bound on one burst.
	MaxDropKB   uint64
	SampleEvery time.Duration
	Meminfo     Meminfo
	NUMA        NUMA
	// NodePools are the huge page pools per node; HugetlbLimits the
	// hugetlb cgroups that limit a page size.
	NodePools     []sysstate.NodePool
	HugetlbLimits []hugetlbcg.Limits
	// RemoteHuge are processes with huge pages on nodes none of their
	// allowed CPUs are on.
	RemoteHuge  []hugepages.RemoteHuge
	THP         THP
	Shm         []hugepages.Segment
	Procs       Processes
	KswapdLater []KernelThread // kswapd CPU after Interval
	Users       map[uint64]string
	Log         *kmsg.Log
	LogErr      error
	// LogSince is the --since window applied to the log.
	LogSince time.Duration
	// Measured is what --measure traced (nil without it).
	Measured *Measurement
	// Errors are files that could not be read, as "reading PATH: why".
	Errors []string
	// Skipped are checks, or parts, that could not run.
	Skipped []Skip
}

// Meminfo holds the /proc/meminfo lines beyond sysstate.Memory's.
type Meminfo struct {
	CachedKB         uint64 `json:"cached_kb"`
	ShmemKB          uint64 `json:"shmem_kb"`
	AnonHugePagesKB  uint64 `json:"anon_huge_pages_kb"`
	ShmemHugePagesKB uint64 `json:"shmem_huge_pages_kb"`
	SwapTotalKB      uint64 `json:"swap_total_kb"`
}

func (o *Options) defaults() {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.PasswdFile == "" {
		o.PasswdFile = "/etc/passwd"
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = 100 * time.Millisecond
	}
}

// Gather reads the host. It does not fail: what cannot be read is in
// Errors or Skipped, and the checks say what they could not do.
func Gather(ctx context.Context, opt Options) *Inputs {
	opt.defaults()
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	in := &Inputs{Time: opt.Now, IntervalAsked: opt.Interval, SampleEvery: opt.SampleEvery, LogSince: opt.Since}
	fail := func(err error) {
		if err != nil {
			in.Errors = append(in.Errors, err.Error())
		}
	}
	// The log first: a large copy takes seconds to read, which must not
	// fall between the two snapshots of an interval.
	if !opt.NoLog {
		in.Log, in.LogErr = readLog(ctx, opt)
	}
	in.Release = readSysKernel(opt.ProcRoot, "osrelease")
	in.Hostname = readSysKernel(opt.ProcRoot, "hostname")

	reader, err := sysstate.NewReader(opt.ProcRoot, opt.SysRoot)
	if err != nil {
		fail(err)
		in.Snap = sysstate.Snapshot{Time: in.Time}
	} else {
		in.Snap = reader.Take()
	}
	in.Errors = append(in.Errors, in.Snap.Errors...)

	up, err := readUptime(opt.ProcRoot)
	fail(err)
	in.Uptime = up
	in.NUMA, err = readNUMA(opt.SysRoot)
	fail(err)
	in.NodePools, err = sysstate.ReadNodePools(opt.SysRoot)
	fail(err)
	in.HugetlbLimits = readHugetlbLimits(opt.ProcRoot, in.Snap.HugePools)
	in.THP, err = readTHP(opt.SysRoot)
	fail(err)
	in.Shm, err = hugepages.ReadSysVShm(opt.ProcRoot)
	fail(err)
	if fs, err := procfs.NewFS(opt.ProcRoot); err == nil {
		in.Meminfo = readMeminfo(fs)
		in.Procs, err = scanProcesses(fs, in.Snap.Memory.MemTotalKB)
		if err != nil {
			fail(fmt.Errorf("reading processes in %s: %w", opt.ProcRoot, err))
		}
		if in.Procs.Unreadable > 0 {
			in.Skipped = append(in.Skipped, Skip{Check: "page tables, huge pages",
				Reason: fmt.Sprintf("%d processes' status could not be read (hidepid or another user's process); their page tables and shared memory are not counted", in.Procs.Unreadable)})
		}
	}
	var hugeUsers []int
	for _, p := range in.Procs.List {
		if p.HugetlbPages > 0 {
			hugeUsers = append(hugeUsers, p.PID)
		}
	}
	in.RemoteHuge, err = hugepages.ReadRemote(opt.ProcRoot, opt.SysRoot, hugeUsers)
	fail(err)
	in.Users = readUsers(opt.PasswdFile, uids(in))

	if opt.Interval > 0 && reader != nil {
		measureInterval(ctx, in, reader, opt)
	}
	return in
}

// measureInterval takes the second snapshot for rates. Ctrl-C ends the
// wait early: the rates are then over the time actually measured, and
// the report says so. Interrupted before the wait began, there is no
// second snapshot.
func measureInterval(ctx context.Context, in *Inputs, reader *sysstate.Reader, opt Options) {
	if ctx.Err() != nil {
		in.Interrupted = true
		return
	}
	in.MaxDropKB = sampleFree(ctx, opt.ProcRoot, opt.Interval, opt.SampleEvery)
	in.Interrupted = ctx.Err() != nil
	later := reader.Take()
	in.Interval = later.Time.Sub(in.Snap.Time)
	if in.Interval <= 0 {
		return
	}
	in.Later = &later
	if fs, err := procfs.NewFS(opt.ProcRoot); err == nil {
		if p, err := scanKswapd(fs); err == nil {
			in.KswapdLater = p
		}
	}
}

func readLog(ctx context.Context, opt Options) (*kmsg.Log, error) {
	var since time.Time
	if opt.Since > 0 {
		since = opt.Now.Add(-opt.Since)
	}
	if opt.LogFile != "" {
		return kmsg.ReadFile(ctx, opt.LogFile, opt.Stdin, kmsg.FileOptions{Text: opt.LogText, MaxBytes: opt.LogMaxBytes, Since: since})
	}
	live := opt.Live
	live.Since = since
	return kmsg.ReadLive(ctx, live)
}

func readMeminfo(fs procfs.FS) Meminfo {
	mi, err := fs.Meminfo()
	if err != nil {
		// sysstate has reported the same file.
		return Meminfo{}
	}
	v := func(p *uint64) uint64 {
		if p == nil {
			return 0
		}
		return *p
	}
	return Meminfo{
		CachedKB: v(mi.Cached), ShmemKB: v(mi.Shmem), AnonHugePagesKB: v(mi.AnonHugePages),
		ShmemHugePagesKB: v(mi.ShmemHugePages), SwapTotalKB: v(mi.SwapTotal),
	}
}

// readUptime reads the first number of /proc/uptime.
func readUptime(procRoot string) (time.Duration, error) {
	path := filepath.Join(procRoot, "uptime")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, unwrapPath(err))
	}
	d, err := parseUptime(string(b))
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return d, nil
}

// parseUptime reads "2140.57 4120.33": seconds since boot, then idle.
func parseUptime(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, fmt.Errorf("empty, want seconds since boot")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil || !(v >= 0 && v < 1e10) { // NaN fails both
		return 0, fmt.Errorf("%q is not a time since boot", truncate(f[0]))
	}
	return time.Duration(v * float64(time.Second)), nil
}

// readSysKernel reads /proc/sys/kernel/NAME (the release, the host name):
// from procfs rather than uname, so a copied tree names its own.
func readSysKernel(procRoot, name string) string {
	b, err := os.ReadFile(filepath.Join(procRoot, "sys/kernel", name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func uids(in *Inputs) []uint64 {
	var out []uint64
	for _, p := range in.Procs.List {
		if p.MemlockKnown {
			out = append(out, p.UID)
		}
	}
	for _, s := range in.Shm {
		out = append(out, uint64(s.UID))
	}
	return out
}

// readUsers names the uids asked for from a passwd file. It reads the
// file rather than asking NSS, which may be a slow network directory.
func readUsers(path string, want []uint64) map[uint64]string {
	users := map[uint64]string{}
	if len(want) == 0 {
		return users
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return users
	}
	return parsePasswd(string(b), want)
}

// parsePasswd maps the wanted uids to names from passwd lines
// ("name:x:uid:gid:..."); the first line for a uid wins, as in getpwuid.
func parsePasswd(s string, want []uint64) map[uint64]string {
	users := map[uint64]string{}
	need := map[uint64]bool{}
	for _, u := range want {
		need[u] = true
	}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		uid, err := strconv.ParseUint(f[2], 10, 32)
		if err == nil && need[uid] {
			if _, dup := users[uid]; !dup {
				users[uid] = f[0]
			}
		}
	}
	return users
}

// sampleFree reads nr_free_pages every step for d and returns the
// largest fall between two samples, in kB.
func sampleFree(ctx context.Context, procRoot string, d, step time.Duration) uint64 {
	path := filepath.Join(procRoot, "vmstat")
	pageKB := uint64(os.Getpagesize() / 1024)
	var prev, maxDrop uint64
	have := false
	t := time.NewTicker(step)
	defer t.Stop()
	end := time.After(d)
	for {
		if v, ok := readFreePages(path); ok {
			if have && v < prev {
				maxDrop = max(maxDrop, (prev-v)*pageKB)
			}
			prev, have = v, true
		}
		select {
		case <-ctx.Done():
			return maxDrop
		case <-end:
			return maxDrop
		case <-t.C:
		}
	}
}

func readFreePages(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.SplitN(string(b), "\n", 8) {
		if v, ok := strings.CutPrefix(line, "nr_free_pages "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

func scanKswapd(fs procfs.FS) ([]KernelThread, error) {
	procs, err := fs.AllProcs()
	if err != nil {
		return nil, err
	}
	var out []KernelThread
	for _, p := range procs {
		s, err := p.Stat()
		if err != nil || !strings.HasPrefix(s.Comm, "kswapd") {
			continue
		}
		out = append(out, KernelThread{PID: p.PID, Comm: s.Comm, CPUSeconds: s.CPUTime()})
	}
	return out, nil
}
