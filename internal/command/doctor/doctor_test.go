package doctor

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/pkg/gfp"
	"github.com/memtrace/memtrace/pkg/kmsg"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// testTime is when the tests pretend to run: after the logs' failures.
var testTime = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// run gathers a test tree and checks it, deterministically: fixed time,
// no live log, this host's GFP table replaced by the built-in 6.18 one.
// A log outside testdata/logs is named by its path.
func run(t testing.TB, tree, log string, cfg Config, mod ...func(*Options)) (*Inputs, *Report) {
	t.Helper()
	opt := Options{
		ProcRoot: filepath.Join(tree, "proc"), SysRoot: filepath.Join(tree, "sys"),
		PasswdFile: "testdata/passwd", NoLog: log == "", Now: testTime,
		LogText: kmsg.TextOptions{Now: testTime, Location: time.UTC},
	}
	if log != "" {
		opt.LogFile = filepath.Join("testdata/logs", log)
		if strings.Contains(log, "/") {
			opt.LogFile = log
		}
	}
	for _, m := range mod {
		m(&opt)
	}
	in := Gather(context.Background(), opt)
	if cfg.HostGFP == nil {
		cfg.HostGFP = func(string) (*gfp.Table, error) { return gfp.ForRelease("6.18") }
	}
	r := Check(in, cfg)
	r.Host.CPUs = 0
	return in, r
}

func find(t *testing.T, r *Report, id string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("no finding %q", id)
	return Finding{}
}

// TestGolden pins the text and JSON reports of the test trees.
func TestGolden(t *testing.T) {
	for _, c := range []struct{ name, tree, log string }{
		{"vm", "testdata/vm", "6.18-host.dmesg"},
		{"db", "testdata/db", "5.15-journal.log"},
		{"db-seed", "testdata/db", "seed-000.log"},
		{"vm-nolog", "testdata/vm", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, r := run(t, c.tree, c.log, Config{})
			var text, js bytes.Buffer
			if err := WriteText(&text, r); err != nil {
				t.Fatal(err)
			}
			if err := WriteJSON(&js, r); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata/golden", c.name+".txt"), text.Bytes())
			golden(t, filepath.Join("testdata/golden", c.name+".json"), js.Bytes())
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update if intended):\n%s", path, got)
	}
}

// TestSeedLine is the issue's acceptance case: the seed's "order:1,
// mode:0x20" lines from a copied 2.6.32 log decode as atomic requests.
func TestSeedLine(t *testing.T) {
	_, r := run(t, "testdata/db", "seed-000.log", Config{})
	if len(r.Failures) != 2 {
		t.Fatalf("groups = %+v", r.Failures)
	}
	for _, g := range r.Failures {
		if g.Decoded != "GFP_ATOMIC" || g.Class != gfp.ClassAtomic || g.CanSleep || g.Order != 1 || g.ModeHex != "0x20" {
			t.Errorf("%s: decoded %q class %q sleep %v order %d mode %s", g.Comm, g.Decoded, g.Class, g.CanSleep, g.Order, g.ModeHex)
		}
		if g.DecodedWith != "built-in table for 2.6.32" {
			t.Errorf("%s: decoded with %q", g.Comm, g.DecodedWith)
		}
	}
	sw := r.Failures[1]
	if sw.Comm != "swapper" || sw.Path.String() != "softirq network receive: tcp_v4_rcv → sk_clone" {
		t.Errorf("swapper group = %s %q", sw.Comm, sw.Path)
	}
	if !strings.Contains(strings.Join(sw.Notes, " "), "idle CPU") {
		t.Errorf("notes %q: want the idle task explained", sw.Notes)
	}
	if f := find(t, r, "alloc-failures"); f.Severity != Problem {
		t.Errorf("alloc-failures severity %v", f.Severity)
	}
	wm := find(t, r, "watermarks")
	if wm.Severity != Problem || len(wm.Fix) == 0 || !strings.HasPrefix(wm.Fix[0], "sysctl -w vm.min_free_kbytes=92160") {
		t.Errorf("watermarks: %v, fix %q, notes %q", wm.Severity, wm.Fix, wm.Notes)
	}
}

// TestKernelFlag decodes the same log for another layout when asked.
func TestKernelFlag(t *testing.T) {
	_, r := run(t, "testdata/db", "seed-000.log", Config{Kernel: "6.8"})
	g := r.Failures[0]
	if g.DecodedWith != "built-in table for 6.8" || g.Decoded != "__GFP_HIGH" {
		t.Errorf("decoded %q with %q", g.Decoded, g.DecodedWith)
	}
}

// TestThisHostsFailure: the real vmalloc error copied from this machine.
func TestThisHostsFailure(t *testing.T) {
	_, r := run(t, "testdata/vm", "6.18-host.dmesg", Config{})
	if len(r.Failures) != 1 {
		t.Fatalf("groups = %+v", r.Failures)
	}
	g := r.Failures[0]
	if g.Comm != "f" || g.Kind != kmsg.KindVmalloc || g.Decoded != "GFP_KERNEL_ACCOUNT|__GFP_HIGHMEM" || g.Class != gfp.ClassKernel || !g.CanSleep {
		t.Errorf("group = %+v", g)
	}
	if f := find(t, r, "alloc-failures"); f.Severity != Warn {
		t.Errorf("severity %v, want warn: the request could sleep", f.Severity)
	}
	if r.Worst() != Warn {
		t.Errorf("worst %v", r.Worst())
	}
}

func TestDatabaseHost(t *testing.T) {
	_, r := run(t, "testdata/db", "", Config{})
	hp := find(t, r, "hugepages")
	if hp.Severity != Problem || !strings.Contains(hp.Summary, "on 4 KiB pages") {
		t.Errorf("hugepages: %v %q", hp.Severity, hp.Summary)
	}
	// hugepages_settings.sh: 1 + (4096+1) + (12288+1) + (1+1) for the
	// SysV segments, and PostgreSQL's 2 GiB mmap: 1024 + 1.
	if !strings.Contains(strings.Join(hp.Fix, "\n"), "vm.nr_hugepages=17414   # 2 MiB pages: SysV segments 16389 + postgres's shared memory 1025") {
		t.Errorf("fix %q", hp.Fix)
	}
	var pool string
	for _, row := range hp.Tables[0].Rows {
		if row[0] == "2 MiB" {
			pool = strings.Join(row, " ")
		}
	}
	// The seed's arithmetic (with the digest's correction: 8441, not 8841).
	if pool != "2 MiB 13007 11813 3372 0 1194 4566 8441 (16.5 GiB)" {
		t.Errorf("pool row %q", pool)
	}
	shm := find(t, r, "shared-memory")
	fix := strings.Join(shm.Fix, "\n")
	if shm.Severity != Warn || !strings.Contains(fix, "oracle soft memlock") || !strings.Contains(fix, "huge_pages = on") {
		t.Errorf("shared-memory: %v fix %q", shm.Severity, shm.Fix)
	}
	zr := find(t, r, "zone-reclaim")
	if zr.Severity != Warn || !strings.Contains(zr.Evidence[0].Value, "1 reclaim the local node first") {
		t.Errorf("zone-reclaim: %v %+v", zr.Severity, zr.Evidence)
	}
	wm := find(t, r, "watermarks")
	if wm.Severity != Warn || !strings.Contains(wm.Summary, "node 1 Normal (orders 1, 2, 3)") {
		t.Errorf("watermarks: %v %q", wm.Severity, wm.Summary)
	}
	if f := find(t, r, "thp"); f.Severity != Warn {
		t.Errorf("thp %v", f.Severity)
	}
	if f := find(t, r, "page-tables"); f.Severity != Warn {
		t.Errorf("page-tables %v %q", f.Severity, f.Summary)
	}
	pr := find(t, r, "pressure")
	if pr.Severity != Warn || !strings.Contains(pr.Summary, "4480 of 5210 direct compactions") {
		t.Errorf("pressure %v %q", pr.Severity, pr.Summary)
	}
	if f := find(t, r, "alloc-failures"); f.Severity != OK || f.Summary != "not checked" {
		t.Errorf("alloc-failures without a log: %v %q", f.Severity, f.Summary)
	}
}

// TestSince leaves out failures older than the window, and counts those
// a copied log dates only relative to boot.
func TestSince(t *testing.T) {
	since := func(d time.Duration) func(*Options) { return func(o *Options) { o.Since = d } }
	_, r := run(t, "testdata/db", "5.15-journal.log", Config{}, since(24*time.Hour))
	if len(r.Failures) != 0 || r.Log.Total != 2 {
		t.Errorf("24h window: %d groups of %d failures", len(r.Failures), r.Log.Total)
	}
	if f := find(t, r, "alloc-failures"); f.Severity != OK {
		t.Errorf("severity %v", f.Severity)
	}
	_, r = run(t, "testdata/db", "5.15-journal.log", Config{}, since(31*24*time.Hour))
	if len(r.Failures) != 2 {
		t.Errorf("31 day window: %d groups", len(r.Failures))
	}
	_, r = run(t, "testdata/db", "3.10-dmesg.log", Config{}, since(time.Hour))
	if r.Log.Undated != 3 || len(r.Failures) != 2 {
		t.Errorf("undated %d, groups %d", r.Log.Undated, len(r.Failures))
	}
}

// TestUnreadableLog is the non-root case: no log, a finding that says
// so, and the check listed as skipped.
func TestUnreadableLog(t *testing.T) {
	in := Gather(context.Background(), Options{
		ProcRoot: "testdata/vm/proc", SysRoot: "testdata/vm/sys",
		Live: kmsg.LiveOptions{DevKmsg: filepath.Join(t.TempDir(), "kmsg"), Dmesg: "-"},
	})
	r := Check(in, Config{HostGFP: func(string) (*gfp.Table, error) { return gfp.ForRelease("6.18") }})
	f := find(t, r, "alloc-failures")
	if f.Severity != Warn || f.Summary != "could not read the kernel log" || len(r.Skipped) == 0 || r.Skipped[0].Check != "kernel log" {
		t.Errorf("finding %+v, skipped %+v", f, r.Skipped)
	}
}

func TestSuggestMinFree(t *testing.T) {
	atomic := FailureGroup{Class: gfp.ClassAtomic, Group: kmsg.Group{Count: 3, Order: 1, Example: kmsg.Failure{
		Zones: []kmsg.ZoneState{{Zone: "Normal", HasWatermarks: true, FreeKB: 100, MinKB: 200}},
	}}}
	for _, c := range []struct {
		name string
		in   minFreeInput
		want int64
	}{
		{"nothing wrong", minFreeInput{cur: 67584, memTotalKB: 24 << 20, lowmemKB: 7 << 20}, 67584},
		{"atomic failures double it", minFreeInput{cur: 67584, memTotalKB: 24 << 20, lowmemKB: 7 << 20, groups: []FailureGroup{atomic}}, 135168},
		{"a burst bigger than that", minFreeInput{cur: 67584, memTotalKB: 24 << 20, lowmemKB: 7 << 20, groups: []FailureGroup{atomic}, burstKB: 100000, interval: 10 * time.Second, sampleEvery: 100 * time.Millisecond}, 200704},
		{"capped at 5%", minFreeInput{cur: 67584, memTotalKB: 1 << 20, lowmemKB: 1 << 20, belowMin: true}, 67584},
		{"at least the kernel default", minFreeInput{cur: 1000, memTotalKB: 64 << 20, lowmemKB: 64 << 20, fragmented: true}, 32768},
	} {
		s := suggestMinFree(c.in)
		if s.value != c.want {
			t.Errorf("%s: %d, want %d; reasons %q", c.name, s.value, c.want, s.reasons)
		}
	}
}

// TestInterval takes the second snapshot: rate columns, kswapd over the
// interval and the burst estimate appear (all zero on a static tree).
func TestInterval(t *testing.T) {
	in := Gather(context.Background(), Options{
		ProcRoot: "testdata/db/proc", SysRoot: "testdata/db/sys", NoLog: true,
		Interval: 300 * time.Millisecond, SampleEvery: 50 * time.Millisecond,
	})
	if in.Later == nil || len(in.KswapdLater) != 2 {
		t.Fatalf("later snapshot %v, kswapd later %+v", in.Later != nil, in.KswapdLater)
	}
	r := Check(in, Config{HostGFP: func(string) (*gfp.Table, error) { return gfp.ForRelease("6.18") }})
	pr := find(t, r, "pressure")
	if h := pr.Tables[0].Header; in.Interval < 300*time.Millisecond || h[len(h)-1] != "last "+duration(in.Interval) || in.Interrupted {
		t.Errorf("header %q, interval %v", h, in.Interval)
	}
	var sawKswapd bool
	for _, e := range pr.Evidence {
		if e.Label == "kswapd0 CPU" && strings.HasPrefix(e.Value, "0% of a CPU") {
			sawKswapd = true
		}
	}
	if !sawKswapd {
		t.Errorf("evidence %+v", pr.Evidence)
	}
	wm := find(t, r, "watermarks")
	if !strings.Contains(fmt.Sprint(wm.Evidence), "largest fall of free memory") {
		t.Errorf("evidence %+v", wm.Evidence)
	}
}
