package kmsg

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// addLogSeeds seeds a fuzzer with the test logs in pieces of n lines:
// minimizing a new input as large as a whole file takes the engine minutes
// (or pass -fuzzminimizetime 2s).
func addLogSeeds(f *testing.F, n int) {
	paths, _ := filepath.Glob("testdata/*.log")
	paths = append(paths, "testdata/6.18-host.dmesg", "testdata/6.18-host.kmsg")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i := 0; i < len(lines); i += n {
			f.Add(strings.Join(lines[i:min(i+n, len(lines))], "\n"))
		}
	}
}

// collect is a Parser that also keeps every failure, for checkResult.
func collect() (*Parser, *[]Failure) {
	var all []Failure
	return &Parser{Each: func(f Failure) { all = append(all, f) }}, &all
}

// checkResult holds the invariants every parse must keep.
func checkResult(t *testing.T, r Result, all []Failure) {
	for _, x := range all {
		if x.Order < -1 || x.Order > 999 {
			t.Errorf("order %d", x.Order)
		}
		if len(x.Trace) > maxFrames || len(x.Zones) > maxZones {
			t.Errorf("%d frames, %d zones", len(x.Trace), len(x.Zones))
		}
		if x.Path.String() == "" {
			t.Error("empty path")
		}
		if len(x.Line) > maxLine || len(x.ModeText) > maxField || len(x.Release) > maxField {
			t.Errorf("line %d, mode text %d, release %d bytes", len(x.Line), len(x.ModeText), len(x.Release))
		}
	}
	n := r.Other.Reports
	for _, g := range r.Groups {
		n += g.Count
		if len(g.Example.Trace) > maxExampleFrames || len(g.Comms) > maxListed {
			t.Errorf("group example with %d frames, %d comms", len(g.Example.Trace), len(g.Comms))
		}
	}
	if n != len(all) || r.Failures != len(all) || len(r.Groups) > MaxGroups {
		t.Errorf("%d groups hold %d failures, counted %d, want %d", len(r.Groups), n, r.Failures, len(all))
	}
	if len(r.UnparsedExamples) > r.Unparsed || len(r.UnparsedExamples) > maxUnparsedExamples {
		t.Errorf("%d unparsed examples of %d", len(r.UnparsedExamples), r.Unparsed)
	}
}

func FuzzReadText(f *testing.F) {
	addLogSeeds(f, 24)
	f.Fuzz(func(t *testing.T, s string) {
		p, all := collect()
		if err := ReadText(strings.NewReader(s), TextOptions{Now: fileNow}, p.Feed); err != nil {
			t.Fatal(err)
		}
		checkResult(t, p.Result(), *all)
	})
}

func FuzzLineParser(f *testing.F) {
	addLogSeeds(f, 1)
	f.Fuzz(func(t *testing.T, line string) {
		var lp LineParser
		lp.Options.Boot = time.Unix(1700000000, 0)
		r, ok := lp.Parse(line)
		if ok && len(r.Text) > len(line)*4+16 {
			t.Errorf("text %d bytes from a %d-byte line", len(r.Text), len(line))
		}
		p, all := collect()
		p.Feed(r)
		checkResult(t, p.Result(), *all)
	})
}

func FuzzKmsgRecord(f *testing.F) {
	b, _ := os.ReadFile("testdata/6.18-host.kmsg")
	for _, l := range bytes.Split(b, []byte("\n")) {
		f.Add(append(l, '\n'))
	}
	f.Add([]byte("4,1,2,-;x\\x0ay\\x5c\\xzz\n SUBSYSTEM=x\n"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		lines, ok := parseKmsgRecord(rec, time.Unix(1700000000, 0))
		if ok && len(lines) == 0 {
			t.Error("accepted a record with no lines")
		}
	})
}

func FuzzHeader(f *testing.F) {
	for _, s := range []string{
		"python2.6: page allocation failure. order:1, mode:0x20",
		"swapper/5: page allocation failure: order:2, mode:0x484020(GFP_ATOMIC|__GFP_COMP), nodemask=(null)",
		"f: vmalloc error: size 0, failed to allocate pages, mode:0x400cc2(GFP_KERNEL_ACCOUNT|__GFP_HIGHMEM), nodemask=(null),cpuset=/,mems_allowed=0",
		"vmalloc: allocation failure, allocated 1048576 of 2101248 bytes",
		"x: page allocation stalls for 10012ms, order:0, mode:0x14200ca(GFP_HIGHUSER_MOVABLE)",
		"a: b: page allocation failure: order:0, mode:0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, ok := parseHeader(s)
		if !ok {
			return
		}
		if h.order < -1 || h.order > 999 || len(h.comm) > len(s) {
			t.Errorf("header %+v from %q", h, s)
		}
		if h.kind == KindPage && !h.modeKnown {
			t.Errorf("page failure without a mode from %q", s)
		}
	})
}

func FuzzZoneLine(f *testing.F) {
	for _, s := range []string{
		"Node 0 Normal: 4908*4kB (UME) 6596*8kB (UME) 4750*16kB (UM) = 1318800kB",
		"Node 0 Normal free:1318880kB boost:0kB min:36596kB low:45744kB high:54892kB reserved_highatomic:0KB",
		"Node 1 HighMem: 0*4kB 0*8kB = 0kB",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		zones, _ := zoneLine(s, nil)
		for _, z := range zones {
			if len(z.Blocks) > 64 {
				t.Errorf("%d orders", len(z.Blocks))
			}
			if z.HasBlocks && (z.PageKB == 0 || z.PageKB&(z.PageKB-1) != 0) {
				t.Errorf("page size %d", z.PageKB)
			}
			z.BlocksAtLeast(-1)
			z.BlocksAtLeast(100)
		}
	})
}

func FuzzTraceLine(f *testing.F) {
	for _, s := range []string{
		"<IRQ>  [<ffffffff8112c207>] ? __alloc_pages_nodemask+0x757/0x8d0",
		" warn_alloc.cold.116+0x7b/0xfb",
		" ixgbe_poll+0x1f9/0x6c0 [ixgbe]",
		" </IRQ>",
		"[c000000000f8bd70] [c0000000008a1e10] dump_stack+0xb0/0xf4 (unreliable)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var frames []Frame
		section := ""
		for _, l := range strings.Split(s, "\n") {
			fr, isFrame, sec, ok := traceLine(l, section)
			if ok {
				section = sec
			}
			if isFrame {
				frames = append(frames, fr)
			}
		}
		_ = Summarize(frames, "x").String()
	})
}

// FuzzGrouper adds failures of a few keys in any order to a Grouper with
// small bounds: every report is counted once, the counts kept are exact,
// and no group counted apart is more frequent than one kept.
func FuzzGrouper(f *testing.F) {
	f.Add([]byte("abbcccdddd"), uint8(2), uint8(3))
	f.Add([]byte("abcdefabcdefaaaaaa"), uint8(3), uint8(1))
	f.Fuzz(func(t *testing.T, keys []byte, maxGroups, maxOther uint8) {
		g := Grouper{maxGroups: int(maxGroups%8) + 1, maxOther: int(maxOther % 8)}
		want := map[string]int{}
		for i, k := range keys {
			comm := string(rune('a' + k%16))
			want[comm]++
			g.Add(Failure{Kind: KindPage, Comm: comm, Stamp: Stamp{Uptime: time.Duration(i), HasUptime: true}})
		}
		groups, other := g.Groups()
		n, least := other.Reports, len(keys)
		for _, x := range groups {
			n += x.Count
			least = min(least, x.Count)
			if x.Count != want[x.Comm] {
				t.Errorf("group %s counted %d, want %d", x.Comm, x.Count, want[x.Comm])
			}
			delete(want, x.Comm)
		}
		if n != len(keys) || len(groups) > g.maxGroups {
			t.Errorf("%d groups hold %d reports, want %d", len(groups), n, len(keys))
		}
		if other.GroupsExact {
			for c, k := range want {
				if k > least {
					t.Errorf("%s (%d reports) not kept, the least kept has %d", c, k, least)
				}
			}
		}
	})
}

func FuzzClip(f *testing.F) {
	f.Add("ünïcode → arrows", uint8(5))
	f.Add("short", uint8(100))
	f.Fuzz(func(t *testing.T, s string, n uint8) {
		max := len("…") + int(n)
		c := clip(s, max)
		switch {
		case len(s) <= max && c != s:
			t.Errorf("clip(%q, %d) = %q: changed a short string", s, max, c)
		case len(c) > max:
			t.Errorf("clip(%q, %d) = %q: too long", s, max, c)
		case utf8.ValidString(s) && !utf8.ValidString(c):
			t.Errorf("clip(%q, %d) = %q: cut a character", s, max, c)
		case !strings.HasPrefix(s, strings.TrimSuffix(c, "…")):
			t.Errorf("clip(%q, %d) = %q: not a prefix", s, max, c)
		}
	})
}
