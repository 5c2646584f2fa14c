package kmsg

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fileNow dates syslog lines of the test logs (no year in them).
var fileNow = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

// parsed is a Result with every failure found, which the parser itself
// does not keep.
type parsed struct {
	Result
	Reports []Failure `json:"reports"`
}

func parseFile(t testing.TB, name string) parsed {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r parsed
	p := Parser{Each: func(f Failure) { r.Reports = append(r.Reports, f) }}
	if err := ReadText(f, TextOptions{Now: fileNow, Location: time.UTC}, p.Feed); err != nil {
		t.Fatal(err)
	}
	r.Result = p.Result()
	return r
}

// TestGolden pins everything parsed from each log: failures, groups and
// paths, as JSON.
func TestGolden(t *testing.T) {
	for _, name := range []string{
		"seed-000.log", "2.6.32-messages.log", "3.10-dmesg.log", "4.18-dmesg-T.log",
		"5.15-journal.log", "6.8-dmesg-caller.log", "6.18-host.dmesg", "6.18-host.kmsg",
		"bad-truncated.log", "bad-binary.log",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(parseFile(t, name), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (run with -update if intended)", name, golden)
			}
		})
	}
}

// failures returns the n failures found, failing the test otherwise.
func failures(t *testing.T, r parsed, n int) []Failure {
	t.Helper()
	if len(r.Reports) != n || r.Failures != n {
		for _, f := range r.Reports {
			t.Logf("failure: %s order %d %s", f.Comm, f.Order, f.Path)
		}
		t.Fatalf("got %d failures (%d counted), want %d", len(r.Reports), r.Failures, n)
	}
	return r.Reports
}

// TestSeed reads the seed article's lines as they were pasted: a syslog
// line with RHEL 6's "kernel: :" quirk, then lines with a bare "kernel:"
// prefix and the markdown's trailing spaces.
func TestSeed(t *testing.T) {
	fs := failures(t, parseFile(t, "seed-000.log"), 2)
	py, sw := fs[0], fs[1]
	if py.Comm != "python2.6" || py.Order != 1 || py.Mode != 0x20 || !py.ModeKnown || py.Kind != KindPage {
		t.Errorf("python2.6 failure = %+v", py)
	}
	if want := 21289479063 * time.Microsecond; py.Stamp.Uptime != want || py.Stamp.Wall.IsZero() {
		t.Errorf("python2.6 stamp = %+v, want uptime %v and a wall time", py.Stamp, want)
	}
	if sw.Comm != "swapper" || sw.PID != 0 || sw.Order != 1 || sw.Mode != 0x20 || sw.Release != "2.6.32-358.2.1.el6.x86_64" {
		t.Errorf("swapper failure = %+v", sw)
	}
	if got, want := sw.Path.String(), "softirq network receive: tcp_v4_rcv → sk_clone"; got != want {
		t.Errorf("swapper path = %q, want %q", got, want)
	}
	if len(sw.Trace) != 37 || !sw.Trace[0].Unreliable || sw.Trace[0].Section != "IRQ" || sw.Trace[33].Section != "EOI" {
		t.Errorf("swapper trace: %d frames, first %+v", len(sw.Trace), sw.Trace[0])
	}
	if sw.Trace[22].Module != "vmxnet3" {
		t.Errorf("frame 22 = %+v, want module vmxnet3", sw.Trace[22])
	}
}

func TestRHEL6Messages(t *testing.T) {
	r := parseFile(t, "2.6.32-messages.log")
	fs := failures(t, r, 3)
	if r.Release != "2.6.32-358.2.1.el6.x86_64" || r.Boots != 1 {
		t.Errorf("release %q boots %d", r.Release, r.Boots)
	}
	py := fs[0]
	if py.PID != 23811 || py.Path.String() != "softirq network receive: tcp_v4_rcv → sk_clone" {
		t.Errorf("python2.6: pid %d path %q", py.PID, py.Path)
	}
	if want := time.Date(2024, 10, 24, 11, 27, 42, 0, time.UTC).AddDate(-1, 0, 0); !py.Stamp.Wall.Equal(want) {
		t.Errorf("wall %v, want %v (the year before the file's, since October is after June)", py.Stamp.Wall, want)
	}
	z := zone(t, py, 0, "Normal")
	if n, _ := z.BlocksAtLeast(1); n != 0 || z.FreeKB != 43232 || z.MinKB != 36556 || z.BelowMin() {
		t.Errorf("Normal at failure = %+v", z)
	}
	if n, _ := zone(t, py, 0, "DMA32").BlocksAtLeast(1); n != 249 {
		t.Errorf("DMA32 order>=1 blocks = %d, want 249", n)
	}
	gs, _ := GroupFailures(fs)
	if len(gs) != 2 || gs[0].Comm != "swapper" || gs[0].Count != 2 || gs[1].Comm != "python2.6" {
		t.Fatalf("groups = %+v", gs)
	}
}

func zone(t *testing.T, f Failure, node int, name string) ZoneState {
	t.Helper()
	for _, z := range f.Zones {
		if z.Node == node && z.Zone == name {
			return z
		}
	}
	t.Fatalf("no zone %d %s in %+v", node, name, f.Zones)
	return ZoneState{}
}

func TestRHEL7(t *testing.T) {
	r := parseFile(t, "3.10-dmesg.log")
	fs := failures(t, r, 3)
	if r.Suppressed != 212 {
		t.Errorf("suppressed = %d, want 212", r.Suppressed)
	}
	for _, f := range fs[:2] {
		if f.Mode != 0x104020 || f.Order != 2 || f.Path.String() != "softirq network receive: __netif_receive_skb_core → tpacket_rcv" {
			t.Errorf("%s: mode %#x order %d path %q", f.Comm, f.Mode, f.Order, f.Path)
		}
	}
	if z := zone(t, fs[0], 1, "Normal"); z.Blocks[1] != 706 || z.PageKB != 4 || len(z.Blocks) != 11 {
		t.Errorf("node 1 Normal = %+v", z)
	}
	vm := fs[2]
	if vm.Kind != KindVmalloc || vm.Comm != "modprobe" || vm.Size != 2101248 || vm.Mode != 0xd2 || vm.Order != 0 ||
		vm.PID != 31337 || vm.CPU != 2 || vm.Path.String() != "module load: load_module → module_alloc" {
		t.Errorf("vmalloc failure = %+v, path %q", vm, vm.Path)
	}
	gs, _ := GroupFailures(fs)
	if len(gs) != 2 || gs[0].Comm != "ksoftirqd/*" || gs[0].Count != 2 || len(gs[0].Comms) != 2 {
		t.Errorf("groups = %+v", gs)
	}
}

func TestRHEL8(t *testing.T) {
	r := parseFile(t, "4.18-dmesg-T.log")
	fs := failures(t, r, 2)
	f := fs[0]
	if f.Comm != "swapper/5" || f.CPU != 5 || f.Cpuset != "/" || f.MemsAllowed != "0-1" || f.Release != "4.18.0-305.el8.x86_64" {
		t.Errorf("failure = %+v", f)
	}
	if f.ModeText != "GFP_ATOMIC|__GFP_COMP" || f.Mode != 0x484020 {
		t.Errorf("mode %#x %q", f.Mode, f.ModeText)
	}
	if got := f.Path.String(); got != "softirq network receive: net_rx_action → ixgbe_clean_rx_irq" {
		t.Errorf("path %q", got)
	}
	if want := time.Date(2024, 3, 12, 3, 14, 7, 0, time.UTC); !f.Stamp.Wall.Equal(want) {
		t.Errorf("wall %v, want %v", f.Stamp.Wall, want)
	}
	if n, _ := zone(t, f, 1, "Normal").BlocksAtLeast(2); n != 0 {
		t.Errorf("node 1 Normal has %d blocks of order >= 2, want 0", n)
	}
	gs, _ := GroupFailures(fs)
	if len(gs) != 1 || gs[0].Count != 2 || gs[0].Comm != "swapper/*" || !gs[0].First.Before(gs[0].Last) {
		t.Errorf("groups = %+v", gs)
	}
	if r.Suppressed != 37 {
		t.Errorf("suppressed %d", r.Suppressed)
	}
}

func TestUbuntuJournal(t *testing.T) {
	fs := failures(t, parseFile(t, "5.15-journal.log"), 2)
	vm := fs[0]
	if vm.Kind != KindVmalloc || vm.Comm != "iptables-restor" || vm.Size != 8392704 || vm.Order != 0 ||
		vm.Reason != "page order 0, failed to allocate pages" || vm.Mode != 0xdc0 || vm.ModeText != "GFP_KERNEL|__GFP_ZERO" {
		t.Errorf("vmalloc = %+v", vm)
	}
	if got := vm.Path.String(); got != "setsockopt system call: do_replace → xt_alloc_table_info" {
		t.Errorf("path %q", got)
	}
	if z := zone(t, vm, 0, "Normal"); !z.BelowMin() {
		t.Errorf("zone %+v: want free below min", z)
	}
	pg := fs[1]
	if got := pg.Path.String(); got != "network transmit: tcp_sendmsg → tcp_sendmsg_locked" || pg.Path.Context != "process" {
		t.Errorf("postgres path %q context %q", got, pg.Path.Context)
	}
}

// TestCallerInterleaved checks that a line of another task, printed in the
// middle of a report (CONFIG_PRINTK_CALLER), does not end or join it.
func TestCallerInterleaved(t *testing.T) {
	fs := failures(t, parseFile(t, "6.8-dmesg-caller.log"), 1)
	f := fs[0]
	if f.Caller != "C3" || f.Mode != 0x820 || f.Order != 0 {
		t.Errorf("failure = %+v", f)
	}
	if got := f.Path.String(); got != "softirq network receive: tcp_v4_rcv → __tcp_send_ack" {
		t.Errorf("path %q", got)
	}
	if len(f.Trace) != 41 {
		t.Errorf("%d frames", len(f.Trace))
	}
	if z := zone(t, f, 0, "Normal"); !z.BelowMin() || z.Blocks[10] != 1 {
		t.Errorf("zone = %+v", z)
	}
}

// TestThisHost reads the same failure from this machine's dmesg output
// and from its raw /dev/kmsg records.
func TestThisHost(t *testing.T) {
	for _, name := range []string{"6.18-host.dmesg", "6.18-host.kmsg"} {
		t.Run(name, func(t *testing.T) {
			f := failures(t, parseFile(t, name), 1)[0]
			if f.Kind != KindVmalloc || f.Comm != "f" || f.PID != 17681 || f.CPU != 1 || f.Size != 0 ||
				f.Reason != "failed to allocate pages" || f.Mode != 0x400cc2 || f.ModeText != "GFP_KERNEL_ACCOUNT|__GFP_HIGHMEM" ||
				f.Release != "6.18.44-fc-v669" || f.Cpuset != "/" || f.MemsAllowed != "0" {
				t.Errorf("failure = %+v", f)
			}
			if got := f.Path.String(); got != "fsetxattr system call: simple_xattr_set → simple_xattr_alloc" {
				t.Errorf("path %q", got)
			}
			if len(f.Zones) != 3 {
				t.Errorf("zones = %+v", f.Zones)
			}
			if f.Stamp.Uptime != 1176181446*time.Microsecond {
				t.Errorf("uptime %v", f.Stamp.Uptime)
			}
		})
	}
}

func TestLinePrefixes(t *testing.T) {
	for _, c := range []struct {
		line, text, caller string
		level              int
		uptime             time.Duration
		wall               time.Time
		skip               bool
	}{
		{line: "[   12.345678] hello", text: "hello", uptime: 12345678 * time.Microsecond, level: -1},
		{line: "<4>[   12.345678] hello", text: "hello", uptime: 12345678 * time.Microsecond, level: 4},
		{line: "kern  :warn  : [   12.345678] hello", text: "hello", uptime: 12345678 * time.Microsecond, level: 4},
		{line: "[ 8812.330021][    C3] x: y", text: "x: y", caller: "C3", uptime: 8812330021 * time.Microsecond, level: -1},
		{line: "[Tue Mar 12 03:14:07 2024] hello", text: "hello", wall: time.Date(2024, 3, 12, 3, 14, 7, 0, time.UTC), level: -1},
		{line: "2025-11-20T21:54:00,123456+00:00 hello", text: "hello", wall: time.Date(2025, 11, 20, 21, 54, 0, 123456000, time.UTC), level: -1},
		{line: "2024-05-02T10:21:33+0000 db2 kernel: hi", text: "hi", wall: time.Date(2024, 5, 2, 10, 21, 33, 0, time.UTC), level: -1},
		{line: "2024-05-02T10:21:33+0000 db2 sshd[1]: hi", skip: true},
		{line: "May  2 10:21:33 db2 kernel: [ 1.5] hi", text: "hi", wall: time.Date(2024, 5, 2, 10, 21, 33, 0, time.UTC), uptime: 1500 * time.Millisecond, level: -1},
		{line: "May  2 10:21:33 db2 crond[77]: x", skip: true},
		{line: "6,349,1176181446,-,caller=T17681;f: x\\x5cy", text: `f: x\y`, caller: "T17681", uptime: 1176181446 * time.Microsecond, level: 6},
	} {
		var p LineParser
		p.Options = TextOptions{Now: fileNow, Location: time.UTC}
		r, ok := p.Parse(c.line)
		if ok == c.skip {
			t.Errorf("%q: kept %v, want %v", c.line, ok, !c.skip)
			continue
		}
		if c.skip {
			continue
		}
		if r.Text != c.text || r.Caller != c.caller || r.Level != c.level || r.Stamp.Uptime != c.uptime || !r.Stamp.Wall.Equal(c.wall) {
			t.Errorf("%q: got %+v", c.line, r)
		}
	}
}
