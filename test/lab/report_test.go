package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The irq-info column of a trace record says the context: 's' serving a
// softirq, 'H' a hard irq inside one; the lab's independent softirq count
// depends on reading it right.
func TestFlagsColumn(t *testing.T) {
	for _, tc := range []struct {
		line    string
		order   string
		softirq bool
	}{
		{"             lab-86      (     86) [000] ..s1.    62.101: mm_page_alloc: page=0000000000000000 pfn=0xffffffffffffffff order=3 migratetype=0 gfp_flags=GFP_ATOMIC|__GFP_NOWARN", "3", true},
		{"     ksoftirqd/0-14      [000] ..H2.    62.2: mm_page_alloc: page=0 pfn=0xffffffffffffffff order=1 migratetype=0 gfp_flags=GFP_ATOMIC", "1", true},
		{"             lab-86      (     86) [000] .....    62.3: mm_page_alloc: page=0 pfn=0xffffffffffffffff order=2 migratetype=0 gfp_flags=GFP_KERNEL", "2", false},
	} {
		m := flagsCol.FindStringSubmatch(tc.line)
		if m == nil {
			t.Fatalf("no match: %q", tc.line)
		}
		f := m[1]
		soft := len(f) > 2 && (f[2] == 's' || f[2] == 'H')
		if m[2] != tc.order || soft != tc.softirq {
			t.Errorf("%q: order %s softirq %v, want %s %v", tc.line, m[2], soft, tc.order, tc.softirq)
		}
	}
}

func TestSummarize(t *testing.T) {
	doc := `{"hooks":[{"signal":"alloc","hook":"fexit/__alloc_pages","attached":true}],
"alloc_failures":[{"pid":1,"comm":"a","context":"softirq","order":3,"count":5},{"pid":2,"comm":"b","context":"process","order":1,"count":2}],
"extfrag":[{"count":4,"fragmenting":3}],
"events":[{"kind":"warn_alloc","context":"softirq","warn_alloc":{"order":3,"logged":false}},
{"kind":"alloc_failure","context":"softirq","time":"2026-12-06T17:00:00Z","alloc_failure":{"order":3,"zone_state":{"verdict":"fragmented","summary":"x"}}}]}`
	p := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := summarize(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.Total != 7 || s.Softirq != 5 || s.Extfrag != 4 || s.Fragmenting != 3 || s.WarnNoWarn != 1 || s.Verdicts["fragmented"] != 1 || s.Example == nil {
		t.Errorf("summary %+v", s)
	}
	if s.ByContextOrder["softirq order 3"] != 5 || s.ByContextOrder["process order 1"] != 2 {
		t.Errorf("by context and order %v", s.ByContextOrder)
	}
}
