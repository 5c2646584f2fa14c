package sysstate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/event"
)

// goldenRequests are judged against each test tree in the golden files.
var goldenRequests = []FailedRequest{
	{Order: 0, HighestZone: "Normal"},                          // GFP_KERNEL
	{Order: 1, HighestZone: "Normal", Reserve: ReserveAtomic},  // GFP_ATOMIC, sk_clone
	{Order: 3, HighestZone: "Normal"},                          // skb_page_frag_refill's try
	{Order: 9, HighestZone: "Movable", Movable: true},          // a THP fault
	{Order: 10, HighestZone: "DMA32", Reserve: ReserveHigh},    // a __GFP_DMA32 driver buffer
	{Order: 2, HighestZone: "HighMem", Reserve: ReserveAtomic}, // no HighMem on 64-bit: Normal
}

// TestZonesGolden reads each tree's zoneinfo and buddyinfo and judges
// goldenRequests against them; testdata/<tree>.zones.golden.json holds
// the result (-update rewrites it).
func TestZonesGolden(t *testing.T) {
	for _, tree := range []string{"host", "numa"} {
		t.Run(tree, func(t *testing.T) {
			zones, err := NewZoneReader(filepath.Join("testdata", tree, "proc")).Read()
			if err != nil {
				t.Fatal(err)
			}
			type judged struct {
				Request FailedRequest   `json:"request"`
				State   event.ZoneState `json:"state"`
			}
			out := struct {
				Zones   []ZoneInfo `json:"zones"`
				Verdict []judged   `json:"verdicts"`
			}{Zones: zones}
			for _, r := range goldenRequests {
				out.Verdict = append(out.Verdict, judged{r, Classify(zones, r)})
			}
			got, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", tree+".zones.golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("zones JSON differs from %s (run with -update if intended):\n%s", golden, got)
			}
		})
	}
}

// TestZoneinfoHost checks the host tree's numbers against the file.
func TestZoneinfoHost(t *testing.T) {
	zones, err := NewZoneReader(filepath.Join("testdata", "host", "proc")).Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(zones) != 5 {
		t.Fatalf("%d zones, want DMA, DMA32, Normal, Movable, Device", len(zones))
	}
	n := zones[2]
	if n.Zone != "Normal" || n.Index != 2 || n.Free != 49112 || n.Min != 7056 || n.Low != 8820 ||
		n.High != 10584 || n.Managed != 557056 || n.PCPPages != 4423+3957 || len(n.Protection) != 5 ||
		n.FreeBlocks[10] != 2 || n.LargestOrder() != 10 {
		t.Errorf("Normal: %+v", n)
	}
	if d := zones[0]; d.Protection[2] != 5195 || d.FreeBlocks[8] != 1 || d.LargestOrder() != 10 {
		t.Errorf("DMA: %+v", d)
	}
	if m := zones[3]; m.Zone != "Movable" || m.Index != 3 || m.FreeBlocks != nil {
		t.Errorf("Movable (unpopulated, not in buddyinfo): %+v", m)
	}
}

// zone is a populated Normal zone with the host's watermarks.
func zone(free uint64, blocks ...uint64) ZoneInfo {
	return ZoneInfo{Node: 0, Zone: "Normal", Index: 2, Free: free, Min: 7056, Low: 8820, High: 10584,
		Managed: 557056, Protection: []uint64{0, 0, 0, 0, 0}, FreeBlocks: blocks}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name  string
		z     ZoneInfo
		req   FailedRequest
		want  event.ZoneVerdict
		mark  uint64
		words string
	}{
		{"below min", zone(7000, 7000), FailedRequest{Order: 0, HighestZone: "Normal"}, event.VerdictBelowMin, 7056, "below the min watermark: Normal free 27 MiB, min 27 MiB"},
		// GFP_ATOMIC may go to 3/8 of min: 7056 - 3528 - 882 = 2646.
		{"atomic above its reserve", zone(7000, 7000), FailedRequest{Order: 0, HighestZone: "Normal", Reserve: ReserveAtomic}, event.VerdictNeither, 2646, "GFP_ATOMIC may go to 10 MiB"},
		{"atomic under its reserve", zone(2646, 2646), FailedRequest{Order: 0, HighestZone: "Normal", Reserve: ReserveAtomic}, event.VerdictBelowMin, 2646, "below the min watermark"},
		{"__GFP_HIGH half", zone(3529, 3529), FailedRequest{Order: 0, HighestZone: "Normal", Reserve: ReserveHigh}, event.VerdictNeither, 3528, "__GFP_HIGH may go to"},
		// Order 2 cannot count 3 of its pages: 7059 - 3 = 7056 <= min.
		{"order counts", zone(7059, 7059), FailedRequest{Order: 2, HighestZone: "Normal"}, event.VerdictBelowMin, 7056, "below"},
		{"fragmented", zone(20000, 20000), FailedRequest{Order: 2, HighestZone: "Normal"}, event.VerdictFragmented, 7056, "fragmented: no free block of order ≥ 2 in Normal (largest order 0)"},
		{"fragmented order 1", zone(20000, 19998, 1), FailedRequest{Order: 2, HighestZone: "Normal"}, event.VerdictFragmented, 7056, "(largest order 1)"},
		{"neither", zone(20000, 19996, 0, 1), FailedRequest{Order: 2, HighestZone: "Normal"}, event.VerdictNeither, 7056, "1 free blocks of order ≥ 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := Classify([]ZoneInfo{tc.z}, tc.req)
			if st.Verdict != tc.want || len(st.Zones) != 1 || st.Zones[0].Mark != tc.mark || !strings.Contains(st.Summary, tc.words) {
				t.Errorf("got %s, mark %d, %q; want %s, mark %d, %q", st.Verdict, st.Zones[0].Mark, st.Summary, tc.want, tc.mark, tc.words)
			}
		})
	}
}

// TestClassifyProtectionAndCMA: lowmem_reserve raises the mark of a lower
// zone for requests that could have used a higher one, and free CMA pages
// count only for movable requests.
func TestClassifyProtectionAndCMA(t *testing.T) {
	// DMA32 is above its min (9790) but not above min + protection.
	dma32 := ZoneInfo{Node: 0, Zone: "DMA32", Index: 1, Free: 11000, Min: 9790, Low: 12237, High: 14684,
		Managed: 772915, Protection: []uint64{0, 0, 2176, 2176, 2176}, FreeBlocks: []uint64{11000}}
	normal := zone(100, 100)
	zones := []ZoneInfo{dma32, normal}
	st := Classify(zones, FailedRequest{Order: 0, HighestZone: "Normal"})
	if st.Verdict != event.VerdictBelowMin || len(st.Zones) != 2 || st.Zones[0].Zone != "Normal" || st.Zones[1].Mark != 9790+2176 {
		t.Errorf("GFP_KERNEL: %+v", st)
	}
	if st := Classify(zones, FailedRequest{Order: 0, HighestZone: "DMA32"}); st.Verdict != event.VerdictNeither || len(st.Zones) != 1 {
		t.Errorf("GFP_DMA32 request, served by DMA32 without protection: %+v", st)
	}
	cma := zone(9000, 9000)
	cma.FreeCMA = 5000
	if st := Classify([]ZoneInfo{cma}, FailedRequest{HighestZone: "Normal"}); st.Verdict != event.VerdictBelowMin || st.Zones[0].Usable != 4000 {
		t.Errorf("unmovable request may not count CMA pages: %+v", st)
	}
	if st := Classify([]ZoneInfo{cma}, FailedRequest{HighestZone: "Movable", Movable: true}); st.Verdict != event.VerdictNeither {
		t.Errorf("movable request counts CMA pages: %+v", st)
	}
}

func TestParseZoneinfoErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "no zones"},
		{"no min", "Node 0, zone Normal\n  pages free 5\n low 1\n high 2\n managed 9\n", `no "min" line`},
		{"order", "Node 0, zone Normal\n  pages free 5\n min 3\n low 1\n high 2\n managed 9\n", "out of order"},
		{"word", "Node 0, zone Normal\n  pages free five\n", "not a page count"},
		{"header", "Node x, zone Normal\n", "want \"Node N, zone NAME\""},
		{"protection", "Node 0, zone Normal\n  protection: 0, 1\n", "protection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseZoneinfo([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := ParseBuddyinfo([]byte("Node 0, zone Normal 1 -2 3\n")); err == nil {
		t.Error("negative count accepted")
	}
	if err := mergeBuddy([]ZoneInfo{{Node: 0, Zone: "DMA"}}, []ZoneInfo{{Node: 1, Zone: "DMA"}}); err == nil {
		t.Error("a buddyinfo zone missing from zoneinfo was accepted")
	}
}

// FuzzParseZoneinfo: /proc/zoneinfo of a copied tree is untrusted input.
// Whatever it holds, the parser returns zones that keep the kernel's
// invariants, or an error; it never panics.
func FuzzParseZoneinfo(f *testing.F) {
	for _, tree := range []string{"host", "numa"} {
		if b, err := os.ReadFile(filepath.Join("testdata", tree, "proc", "zoneinfo")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Node 0, zone Normal\n  pages free 5\n min 1\n low 2\n high 3\n managed 9\n protection: (0, 1)\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		zones, err := ParseZoneinfo(data)
		if err != nil {
			return
		}
		for _, z := range zones {
			if z.Min > z.Low || z.Low > z.High || z.Node < 0 || z.Index < 0 {
				t.Fatalf("zone breaks the invariants: %+v", z)
			}
			// The verdict must not panic on anything the parser accepts.
			for _, r := range goldenRequests {
				Classify(zones, r)
			}
		}
	})
}

func FuzzParseBuddyinfo(f *testing.F) {
	for _, tree := range []string{"host", "numa"} {
		if b, err := os.ReadFile(filepath.Join("testdata", tree, "proc", "buddyinfo")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Node 0, zone Normal 1 2 3\nNode 1, zone DMA 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		zones, err := ParseBuddyinfo(data)
		if err != nil {
			return
		}
		for _, z := range zones {
			if len(z.FreeBlocks) == 0 || len(z.FreeBlocks) > 64 || z.Node < 0 {
				t.Fatalf("zone breaks the invariants: %+v", z)
			}
			if o := z.LargestOrder(); o >= len(z.FreeBlocks) {
				t.Fatalf("largest order %d of %d orders", o, len(z.FreeBlocks))
			}
		}
	})
}
